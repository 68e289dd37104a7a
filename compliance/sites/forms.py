"""Forms for the site, room, people, training and API key screens.

The forms check only what a browser sends (CSRF, lengths, numbers, dates); which values are allowed
(time zones, roles an actor may give, sites in reach, PIN format, unique email) is the services' job,
so that the web, the API and the CLI refuse the same things with the same messages.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, PasswordField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..config import LOCALES
from ..i18n import locale_label
from ..timeutil import timezone_choices
from ..labels import LANGUAGE_LABELS, ROLE_LABELS, ROOM_KIND_LABELS  # noqa: F401  (re-exported)
from .training import COURSES

# Choices are checked by the services; the forms only offer them (validate_choice=False).
_choice = {"validate_choice": False}


class TextLimit(Length):
    """A written text's most characters, checked on the server and said at the field (a textarea's `maxlength` would
    make the browser cut a long paste silently at the limit, the end of a note lost without a word)."""

    def __init__(self, max: int):
        super().__init__(max=max, message=_l("At most %(max)d characters: this text has %(length)d. Shorten it; "
                                             "nothing was saved."))
        # No "maxlength" flag: the field macro says the limit instead (templates/_macros is not extracted by babel,
        # so the sentence is made here).
        self.field_flags = {"textlimit": _l("Up to %(max)s characters.", max=f"{max:,}".replace(",", "\u202f"))}


def choices(pairs) -> list[SelectChoice]:
    """Select options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


class MultiCheckboxField(SelectMultipleField):
    """A set of checkboxes, one per choice."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SiteForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=200)])
    timezone = SelectField(_l("Time zone"), **_choice)
    language = SelectField(_l("Language"), description=_l("The language the tablet uses unless a person chose one."),
                           **_choice)
    locale = SelectField(_l("Dates and numbers"),
                         description=_l("How dates, times and numbers are written at this site (the language "
                                        "stays as chosen above), unless a person chose their own."), **_choice)
    address = TextAreaField(_l("Address"), validators=[Optional(), TextLimit(500)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = choices((z, z) for z in timezone_choices())
        self.language.choices = choices(LANGUAGE_LABELS.items())
        self.locale.choices = choices((tag, locale_label(tag)) for tag in LOCALES)


class RoomForm(FlaskForm):
    site_id = SelectField(_l("Site"), coerce=int, **_choice)
    name = StringField(_l("Name"), validators=[Length(max=120)])
    kind = SelectField(_l("Kind"), choices=choices(ROOM_KIND_LABELS.items()), **_choice)


class UserForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=200)])
    email = EmailField(_l("Email"), validators=[Length(max=254)])
    role = SelectField(_l("Role"), **_choice)
    site_ids = MultiCheckboxField(_l("Sites"), coerce=int, **_choice)
    language = SelectField(_l("Language"), **_choice)
    locale = SelectField(_l("Dates and numbers"), description=_l("How dates, times and numbers are written for "
                                                                 "this person."), **_choice)
    password = PasswordField(_l("Password"), validators=[Length(max=200)],
                             description=_l("Managers, administrators and auditors sign in with a password "
                                            "of at least 10 characters. For someone new, leave it blank and "
                                            "they are invited by email to choose their own; when editing, "
                                            "blank keeps the current one."),
                             render_kw={"autocomplete": "new-password"})
    pin = PasswordField(_l("PIN"),
                        description=_l("Staff sign in on the tablet with a PIN of 4 to 6 digits. "
                                       "Leave blank to keep the current one."),
                        render_kw={"inputmode": "numeric", "maxlength": 6, "autocomplete": "new-password"})

    def __init__(self, *args, roles=(), sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = choices((r, ROLE_LABELS[r]) for r in ROLE_LABELS if r in roles)
        self.site_ids.choices = choices((s.id, s.name) for s in sites)
        self.language.choices = choices([("", _l("The site's language")), *LANGUAGE_LABELS.items()])
        self.locale.choices = choices([("", _l("The site's formats")), *((t, locale_label(t)) for t in LOCALES)])

    def values(self) -> dict:
        return {
            "name": self.name.data,
            "email": self.email.data,
            "role": self.role.data,
            "site_ids": self.site_ids.data or [],
            "language": self.language.data or None,
            "locale": self.locale.data or None,
            "password": self.password.data or "",
            "pin": self.pin.data or "",
        }


class ResetPinForm(FlaskForm):
    pin = PasswordField(_l("New PIN"), description=_l("4 to 6 digits. Leave it empty and a PIN is made for you; "
                                                      "it is shown once."),
                        render_kw={"inputmode": "numeric", "maxlength": 6, "autocomplete": "new-password"})


class TrainingForm(FlaskForm):
    user_id = SelectField(_l("Person"), coerce=int, **_choice)
    course = SelectField(_l("Course"), choices=choices(COURSES.items()), **_choice)
    completed_on = DateField(_l("Completed on"))
    expires_on = DateField(_l("Expires on"), validators=[Optional()],
                           description=_l("Leave blank if this course does not expire."))
    evidence_ref = StringField(_l("Evidence"), validators=[Length(max=300)],
                               description=_l("Certificate number or where the certificate is kept."))

    def __init__(self, *args, people=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.user_id.choices = choices((p.id, p.name) for p in people)

    def values(self) -> dict:
        return {
            "user_id": self.user_id.data,
            "course": self.course.data,
            "completed_on": self.completed_on.data,
            "expires_on": self.expires_on.data,
            "evidence_ref": self.evidence_ref.data or "",
        }


class CorrectTrainingForm(TrainingForm):
    reason = TextAreaField(_l("Reason for the correction"), validators=[TextLimit(2000)])

    def values(self) -> dict:
        return {**super().values(), "reason": self.reason.data}


class WithdrawTrainingForm(FlaskForm):
    reason = TextAreaField(_l("Reason for withdrawing"), validators=[TextLimit(2000)],
                           description=_l("For example: entered for the wrong person."))


class ApiKeyForm(FlaskForm):
    site_id = SelectField(_l("Site"), coerce=int, **_choice)
    name = StringField(_l("Name"), validators=[Length(max=120)],
                       description=_l("Which machine or program will use this key."))
