"""The audit report's choices: a site (or every site in reach) and a range of local days."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField
from wtforms.validators import InputRequired

from .services import MAX_DAYS


def optional_int(value):
    """"" (every site) is None; anything else must be a whole number (a site id)."""
    if value in (None, ""):
        return None
    return int(value)


class AuditReportForm(FlaskForm):
    """Read from the query string (a GET form: nothing changes, so no CSRF token)."""

    class Meta:
        csrf = False

    # Any id is accepted here: the service answers 404 for a site outside the reader's reach.
    site = SelectField(_l("Site"), coerce=optional_int, validate_choice=False)
    date_from = DateField(_l("From"), name="from", validators=[InputRequired()])
    date_to = DateField(_l("To"), name="to", validators=[InputRequired()],
                        description=_l("Each site's local days, both included; at most %(n)s days.", n=MAX_DAYS))
