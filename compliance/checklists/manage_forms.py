"""Forms of the manager's checklist screens, and the words for the stored codes.

As elsewhere, the forms check only what a browser sends (CSRF, lengths); which items, keys, limits, choices
and guideline rules are allowed is the service's job, so that the screens and the API refuse the same things.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, FieldList, Form, FormField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from ..guidelines import load_pack
from ..sites.forms import TextLimit, choices

_choice = {"validate_choice": False}
BLANK_ROWS = 3      # empty rows offered under a template's items
MORE_ROWS = 5       # rows added by "More rows"

TEMPLATE_KIND_LABELS = {
    "opening": _l("Opening"),
    "before_client": _l("Before a client"),
    "after_client": _l("After a client"),
    "decontamination": _l("Decontamination room"),
    "closing": _l("Closing"),
    "weekly": _l("Weekly"),
}
ITEM_KIND_LABELS = {
    "tick": _l("Tick"),
    "yes_no": _l("Yes / no"),
    "number": _l("Number"),
    "choice": _l("Choice"),
    "text": _l("Text"),
    "photo": _l("Photo"),
    "signature": _l("Signature"),
    "scan": _l("Scan"),
}
NOTE_WHEN_LABELS = {
    "never": _l("No note needed"),
    "no": _l("Note when “no”"),
    "out_of_limits": _l("Note when out of limits"),
}


def rule_choices(language: str) -> list:
    """The guideline pack's rules for a select box: id and title (a blank first: no rule)."""
    rules = load_pack().rules.values()
    return choices([("", _l("— none —"))] + [(r.id, f"{r.id}: {r.title_in(language)}"[:90]) for r in rules])


class ItemRowForm(Form):
    """One item as a row of the template form (no CSRF of its own: the outer form has it)."""

    key = StringField(_l("Key"), validators=[Length(max=40)])
    kind = SelectField(_l("Kind"), default="yes_no", **_choice)
    en = StringField(_l("Label (English)"), validators=[Length(max=300)])
    id = StringField(_l("Label (Indonesian)"), validators=[Length(max=300)])
    rule = SelectField(_l("Guideline rule"), default="", **_choice)
    required = BooleanField(_l("Required"), default=True)
    note_when = SelectField(_l("Note"), default="never", **_choice)
    min = StringField(_l("Min"), validators=[Length(max=20)], render_kw={"inputmode": "decimal"})
    max = StringField(_l("Max"), validators=[Length(max=20)], render_kw={"inputmode": "decimal"})
    unit = StringField(_l("Unit"), validators=[Length(max=16)])
    choices = StringField(_l("Choices"), validators=[Length(max=2500)])
    remove = BooleanField(_l("Remove"))

    def is_blank(self) -> bool:
        return not any((self.key.data or "").strip() or (self.en.data or "").strip() or (self.id.data or "").strip()
                       or (f.data or "").strip() for f in (self.min, self.max, self.unit, self.choices))

    def values(self) -> dict:
        return {"key": (self.key.data or "").strip(), "kind": self.kind.data, "en": self.en.data,
                "id": self.id.data, "rule": self.rule.data or None, "required": bool(self.required.data),
                "note_when": self.note_when.data or "never", "min": self.min.data, "max": self.max.data,
                "unit": self.unit.data, "choices": self.choices.data}


class TemplateForm(FlaskForm):
    key = StringField(_l("Key"), validators=[Length(max=40)],
                      description=_l("A short code, lower-case letters, digits and _ (for example monthly_audit). "
                                     "It cannot be changed later."))
    kind = SelectField(_l("When it is done"), **_choice)
    title_en = StringField(_l("Title (English)"), validators=[Length(max=200)])
    title_id = StringField(_l("Title (Indonesian)"), validators=[Length(max=200)])
    items = FieldList(FormField(ItemRowForm))

    def __init__(self, *args, language: str = "en", **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = choices(TEMPLATE_KIND_LABELS.items())
        self.setup_rows(language)

    def setup_rows(self, language: str) -> None:
        rules = rule_choices(language)
        for entry in self.items:
            entry.form.kind.choices = choices(ITEM_KIND_LABELS.items())
            entry.form.note_when.choices = choices(NOTE_WHEN_LABELS.items())
            entry.form.rule.choices = rules

    def add_rows(self, n: int, language: str) -> None:
        for _ in range(n):
            self.items.append_entry()
        self.setup_rows(language)

    def values(self) -> tuple[dict, list[int]]:
        """The service's input, and for each item sent the index of its row (to show a refusal at its row)."""
        items, rows = [], []
        for index, entry in enumerate(self.items):
            if entry.form.remove.data or entry.form.is_blank():
                continue
            items.append(entry.form.values())
            rows.append(index)
        data = {"key": (self.key.data or "").strip(), "kind": self.kind.data,
                "title": {"en": self.title_en.data, "id": self.title_id.data}, "items": items}
        return data, rows


class CloseActionForm(FlaskForm):
    note = TextAreaField(_l("What was done"), validators=[TextLimit(2000)], render_kw={"rows": 2},
                         description=_l("Needed to close it. It stays with the corrective action."))
