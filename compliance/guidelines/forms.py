"""The form that changes one of a site's numbers: the value, a reason, and the confirmation step."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField

from ..sites.forms import choices

# The service checks the value and the reason (their messages name the rule and the range), not the form.
GATE_CHOICES = [("never", _l("never: no manager may override")),
                ("manager", _l("manager: a manager may override, with a reason"))]


class NumberForm(FlaskForm):
    value = StringField(_l("New value"))
    reason = TextAreaField(_l("Reason"), description=_l("Why this site differs, e.g. the local regulation."))
    confirm = HiddenField()


class GateSettingForm(FlaskForm):
    value = SelectField(_l("Who may override"), choices=choices(GATE_CHOICES), validate_choice=False)
    reason = TextAreaField(_l("Reason"), description=_l("Why this site differs, e.g. the local regulation."))
    confirm = HiddenField()
