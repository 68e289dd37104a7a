"""Forms and words for the treatment screens: start, screening, the scan box, overrides, finishing, abandoning,
adverse events.

As for the other screens, the forms check only what a browser sends (CSRF, lengths, a time that is a time);
what is allowed (a room at this site, a plausible number of passes, a manager's password) is the services' job,
so that the tablet and the API are refused the same things with the same messages.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateTimeLocalField, FieldList, Form, FormField, PasswordField, RadioField,
                     SelectField, StringField, TextAreaField)
from wtforms.validators import Length, Optional

from ..sites.forms import choices, TextLimit

_choice = {"validate_choice": False}
_number = {"inputmode": "decimal", "autocomplete": "off"}
_whole = {"inputmode": "numeric", "autocomplete": "off"}
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"

PROCEDURE_LABELS = {
    "face": _l("Face"),
    "acne_scars": _l("Acne scars"),
    "surgical_scars": _l("Surgical scars"),
    "stretch_marks": _l("Stretch marks"),
    "scalp": _l("Scalp"),
    "other": _l("Other"),
}
STATUS_LABELS = {"open": _l("In progress"), "finished": _l("Finished"), "abandoned": _l("Abandoned")}
STATUS_CLASS = {"open": "pill-warn", "finished": "pill-ok", "abandoned": "pill-muted"}
SCREENING_LABELS = {
    "active_skin_infection": _l("Active skin infection in the area?"),
    "herpes_history": _l("History of cold sores (herpes)?"),
    "metal_allergy": _l("Allergy to metals (nickel)?"),
    "skin_type": _l("Skin type (Fitzpatrick)"),
    "age_confirmed": _l("Age checked: an adult?"),
}
SKIN_TYPES = ("I", "II", "III", "IV", "V", "VI")
YES_NO = [("yes", _l("Yes")), ("no", _l("No"))]
ADVERSE_KIND_LABELS = {
    "redness": _l("Redness"),
    "swelling": _l("Swelling"),
    "pain": _l("Pain"),
    "infection": _l("Infection"),
    "herpes_flare": _l("Cold sore (herpes) flare"),
    "granuloma": _l("Granuloma"),
    "hyperpigmentation": _l("Hyperpigmentation"),
    "scarring": _l("Scarring"),
    "heavy_bleeding": _l("Heavy bleeding"),
    "bruising": _l("Bruising"),
    "needlestick_injury": _l("Needlestick injury (staff)"),
    "other": _l("Other"),
}
SEVERITY_LABELS = {"mild": _l("Mild"), "moderate": _l("Moderate"), "severe": _l("Severe")}
SUBJECT_LABELS = {"pack": _l("Pack"), "unit": _l("Single-use unit"), "practitioner": _l("Practitioner"),
                  "screening": _l("Screening")}


def minute_to_iso(value: datetime | None, tz_name: str, now: datetime, started_at: datetime) -> str:
    """A wall-clock minute typed on the tablet as an ISO instant ("" for now). The input shows minutes only:
    the minute that holds `now` means now, and the minute that holds the start means the start, so that a
    treatment finished in the minute it began is not "ended before it started"."""
    if value is None:
        return ""
    instant = value.replace(tzinfo=ZoneInfo(tz_name))
    minute = timedelta(minutes=1)
    if instant <= now < instant + minute:
        return ""
    if instant <= started_at < instant + minute:
        return started_at.isoformat()
    return instant.isoformat()


class StartForm(FlaskForm):
    client_choice = RadioField(_l("Client"), choices=choices([("existing", _l("Returning client: type the code")),
                                                              ("new", _l("New client: make a code"))]), **_choice)
    client_code = StringField(_l("Client code"), validators=[Length(max=16)],
                              render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false",
                                         "placeholder": "C-XXXXXX"})
    name = StringField(_l("Name"), validators=[Length(max=200)], render_kw={"autocomplete": "off"})
    phone = StringField(_l("Phone"), validators=[Length(max=40)], render_kw={"autocomplete": "off",
                                                                               "inputmode": "tel"})
    consent = BooleanField(_l("The client consented to being contacted"))
    consent_note = StringField(_l("Consent note"), validators=[Length(max=2000)])
    room_id = RadioField(_l("Room"), coerce=int, **_choice)
    procedure = RadioField(_l("Procedure"), choices=choices(PROCEDURE_LABELS.items()), **_choice)
    method = RadioField(_l("Needles by"), **_choice)
    practitioner_id = SelectField(_l("Practitioner"), coerce=int, **_choice)

    def __init__(self, *args, rooms=(), people=(), methods=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.room_id.choices = choices((r.id, r.name) for r in rooms)
        self.method.choices = choices(methods)  # (key, title) from the guideline pack's gate methods
        self.practitioner_id.choices = choices((p.id, p.name) for p in people)

    def client_values(self, site_id: int, with_contact: bool) -> dict:
        """A new client's values; name, phone and consent only from someone allowed to see them."""
        data = {"site_id": site_id}
        if with_contact:
            data.update(name=self.name.data or "", phone=self.phone.data or "", consent=self.consent.data,
                        consent_note=self.consent_note.data or "")
        return data


class ScreeningForm(FlaskForm):
    active_skin_infection = RadioField(SCREENING_LABELS["active_skin_infection"], choices=choices(YES_NO),
                                       **_choice)
    herpes_history = RadioField(SCREENING_LABELS["herpes_history"], choices=choices(YES_NO), **_choice)
    metal_allergy = RadioField(SCREENING_LABELS["metal_allergy"], choices=choices(YES_NO), **_choice)
    skin_type = RadioField(SCREENING_LABELS["skin_type"], choices=choices((t, t) for t in SKIN_TYPES), **_choice)
    age_confirmed = RadioField(SCREENING_LABELS["age_confirmed"], choices=choices(YES_NO), **_choice)
    notes = TextAreaField(_l("Notes"), validators=[TextLimit(2000)], render_kw={"rows": 2})

    def values(self) -> dict:
        return {name: getattr(self, name).data or "" for name in SCREENING_LABELS} | {"notes": self.notes.data or ""}


class ScanForm(FlaskForm):
    code = StringField(_l("Scan or type a pack label or a single-use unit"), validators=[Length(max=300)],
                       render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false",
                                  "placeholder": _l("PK-…, SU-… or the unit's barcode")})


class OverrideForm(FlaskForm):
    manager_pick = RadioField(_l("Manager"), **_choice)
    manager_email = StringField(_l("Or the manager's email"), validators=[Length(max=254)],
                                render_kw={"autocomplete": "off", "inputmode": "email", "autocapitalize": "none",
                                           "spellcheck": "false"})
    secret = PasswordField(_l("Manager's password or PIN"), validators=[Length(max=200)],
                           render_kw={"autocomplete": "off"})
    reason = TextAreaField(_l("Why use it anyway? (written reason, kept as a finding)"),
                           validators=[Length(max=2000)], render_kw={"rows": 2})

    def __init__(self, *args, managers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.manager_pick.choices = choices((m.email, m.name) for m in managers)

    def values(self) -> dict:
        return {"manager_email": (self.manager_email.data or "").strip() or (self.manager_pick.data or ""),
                "secret": self.secret.data or "", "reason": self.reason.data or ""}


class ProductForm(Form):
    name = StringField(_l("Product"), validators=[Length(max=120)], render_kw={"autocomplete": "off"})
    lot = StringField(_l("Lot"), validators=[Length(max=40)], render_kw={"autocomplete": "off"})


class FinishForm(FlaskForm):
    passes = StringField(_l("Passes"), validators=[Length(max=10)], render_kw=_whole)
    passes_confirmed = BooleanField(_l("I confirm this number of passes"))
    needle_depth_mm = StringField(_l("Needle depth (mm)"), validators=[Length(max=10)], render_kw=_number)
    products = FieldList(FormField(ProductForm), label=_l("Anaesthetic and topical products"), min_entries=3,
                         max_entries=6)
    aftercare = TextAreaField(_l("Aftercare"), validators=[TextLimit(2000)], render_kw={"rows": 2})
    notes = TextAreaField(_l("Notes"), validators=[TextLimit(4000)], render_kw={"rows": 2})
    sharps_container_id = SelectField(_l("Sharps container"), **_choice)
    ended_at = DateTimeLocalField(_l("Ended at"), validators=[Optional()], format=LOCAL_FORMAT,
                                  description=_l("Leave as it is for now."))

    def __init__(self, *args, containers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.sharps_container_id.choices = choices(
            [("", _l("Choose the container the units went into")),
             *((str(c.id), f"{c.label} · {c.room.name}" if c.room else c.label) for c in containers)])

    def values(self, tz_name: str, now: datetime, started_at: datetime) -> dict:
        products = [{"name": (p.form.name.data or "").strip(), "lot": (p.form.lot.data or "").strip()}
                    for p in self.products]
        return {
            "passes": self.passes.data or "",
            "passes_confirmed": self.passes_confirmed.data,
            "needle_depth_mm": self.needle_depth_mm.data or "",
            "products": [p for p in products if p["name"] or p["lot"]],
            "aftercare": self.aftercare.data or "",
            "notes": self.notes.data or "",
            "sharps_container_id": self.sharps_container_id.data or "",
            "ended_at": minute_to_iso(self.ended_at.data, tz_name, now, started_at),
        }


class AbandonForm(FlaskForm):
    # Its own id: the gate page can show the override form's "reason" at the same time.
    reason = TextAreaField(_l("Why is the treatment abandoned?"), id="abandon_reason",
                           validators=[Length(max=2000)], render_kw={"rows": 2},
                           description=_l("For example: the client left, a contraindication at screening, a "
                                          "device dropped."))

    def values(self) -> dict:
        return {"reason": self.reason.data or ""}


class AdverseEventForm(FlaskForm):
    kind = RadioField(_l("What happened"), choices=choices(ADVERSE_KIND_LABELS.items()), **_choice)
    severity = RadioField(_l("Severity"), choices=choices(SEVERITY_LABELS.items()), **_choice)
    onset_at = DateTimeLocalField(_l("Started at"), validators=[Optional()], format=LOCAL_FORMAT,
                                  description=_l("When it began; change it if that was earlier."))
    description = TextAreaField(_l("Description"), validators=[TextLimit(4000)], render_kw={"rows": 3})
    follow_up = TextAreaField(_l("Follow-up"), validators=[TextLimit(4000)], render_kw={"rows": 2},
                              description=_l("What was done or advised, and who follows it up."))

    def values(self, tz_name: str, now: datetime, started_at: datetime) -> dict:
        return {"kind": self.kind.data or "", "severity": self.severity.data or "",
                "onset_at": minute_to_iso(self.onset_at.data, tz_name, now, started_at),
                "description": self.description.data or "", "follow_up": self.follow_up.data or ""}
