"""Forms for the device, device kind and steriliser screens, and the words for their stored codes.

The forms check only what a browser sends (CSRF, lengths, dates); which values are allowed (kinds and
sites in reach, unique serials, temperature and holding-time ranges, status changes) is the services' job,
so that the web, the API and the CLI refuse the same things with the same messages.
"""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from ..sites.forms import TextLimit, choices

# Choices are checked by the services; the forms only offer them (validate_choice=False).
_choice = {"validate_choice": False}

SPAULDING_LABELS = {
    "critical": _l("Critical"),
    "semi-critical": _l("Semi-critical"),
    "non-critical": _l("Non-critical"),
}
SPAULDING_HELP = {
    "critical": _l("Pierces or abrades skin, or enters sterile tissue: must be sterile when used."),
    "semi-critical": _l("Touches mucous membranes or broken skin without piercing it: sterilise it, or at least "
                        "disinfect it to a high level."),
    "non-critical": _l("Touches only intact skin: clean it and disinfect it."),
}
STERILISER_TYPE_LABELS = {"B": _l("Type B"), "S": _l("Type S"), "N": _l("Type N")}
STERILISER_TYPE_HELP = {
    "B": _l("Removes air by vacuum: wrapped, hollow and porous loads."),
    "S": _l("For the loads its maker has validated it for; check the manual."),
    "N": _l("Unwrapped solid instruments only: no pouches, no hollow items."),
}
DEVICE_STATUS_LABELS = {
    "in_service": _l("In service"),
    "dirty": _l("Dirty"),
    "in_reprocessing": _l("In reprocessing"),
    "quarantined": _l("Quarantined"),
    "retired": _l("Retired"),
}
DEVICE_STATUS_PILLS = {
    "in_service": "pill-ok",
    "dirty": "pill-warn",
    "in_reprocessing": "pill-warn",
    "quarantined": "pill-bad",
    "retired": "pill-muted",
}
# The changes a manager makes by hand (devices.services.MANUAL_STATUS_CHANGES), in the order offered.
MANUAL_STATUS_LABELS = {
    "quarantined": _l("Quarantine: keep it out of use until someone has looked at it"),
    "dirty": _l("Send back to dirty: it is cleaned and sterilised again before use"),
    "retired": _l("Retire: it is never used again (this cannot be undone)"),
}
DEVICE_EVENT_LABELS = {
    "registered": _l("Registered"),
    "status": _l("Status changed by hand"),
    "cleaned": _l("Cleaned"),
    "inspected": _l("Inspected"),
    "inspection_failed": _l("Failed inspection"),
    "packed": _l("Packed"),
    "pack_compromised": _l("Pack compromised"),
    "loaded": _l("Loaded into the steriliser"),
    "load_failed": _l("Load failed"),
    "sterilised": _l("Sterilised (load released)"),
    "recalled": _l("Recalled"),
    "used": _l("Used in a treatment"),
}
CLEANING_METHOD_LABELS = {
    "washer_disinfector": _l("Washer-disinfector"),
    "ultrasonic": _l("Ultrasonic cleaner"),
    "manual": _l("By hand"),
}
TEST_KIND_LABELS = {
    "air_removal": _l("air-removal (Bowie-Dick/Helix) test"),
    "automatic_control": _l("automatic control test"),
    "spore": _l("spore test"),
    "leak": _l("leak test"),
    "validation": _l("validation"),
    "calibration": _l("calibration"),
}

_MINUTES_SECONDS = re.compile(r"(\d{1,3}):([0-5]\d)")


def holding_seconds(raw: str | None) -> str:
    """'3:30' (minutes:seconds) as '210'; anything else unchanged, for the service to check and name."""
    raw = (raw or "").strip()
    match = _MINUTES_SECONDS.fullmatch(raw)
    return str(int(match[1]) * 60 + int(match[2])) if match else raw


class DeviceTypeForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=120)],
                       description=_l("For example: roller handle, micro-needling pen tip holder, forceps."))
    spaulding_class = RadioField(_l("Spaulding class"), default="critical", **_choice)
    is_hollow = BooleanField(_l("Hollow (has a lumen or a channel)"),
                             description=_l("Hollow items need a type B steriliser, or a type S validated for them."))
    default_max_cycles = StringField(_l("Maker's maximum reprocessing cycles"), validators=[Length(max=12)],
                                     description=_l("Leave blank if the maker gives no limit. New devices of this "
                                                    "kind start with this limit."),
                                     render_kw={"inputmode": "numeric"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spaulding_class.choices = choices(SPAULDING_LABELS.items())  # the template adds SPAULDING_HELP


class DeviceForm(FlaskForm):
    site_id = SelectField(_l("Site"), coerce=int, **_choice)
    device_type_id = SelectField(_l("Kind"), coerce=int, **_choice)
    serial = StringField(_l("Serial number"), validators=[Length(max=80)],
                         description=_l("As engraved or labelled on the device; unique across your organisation."))
    max_cycles = StringField(_l("Maker's maximum reprocessing cycles"), validators=[Length(max=12)],
                             description=_l("Leave blank to use the kind's default."),
                             render_kw={"inputmode": "numeric"})

    def __init__(self, *args, sites=(), kinds=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.site_id.choices = choices((s.id, s.name) for s in sites)
        self.device_type_id.choices = choices((k.id, k.name) for k in kinds)


class DeviceStatusForm(FlaskForm):
    status = RadioField(_l("New status"), choices=choices(MANUAL_STATUS_LABELS.items()), **_choice)
    reason = TextAreaField(_l("Reason"), validators=[TextLimit(2000)],
                           description=_l("What happened, what you saw. It stays in the device's history."))


class SteriliserForm(FlaskForm):
    site_id = SelectField(_l("Site"), coerce=int, **_choice)
    name = StringField(_l("Name"), validators=[Length(max=120)],
                       description=_l("How people in the clinic call it, for example “Autoclave 1”."))
    make = StringField(_l("Make"), validators=[Length(max=120)])
    model = StringField(_l("Model"), validators=[Length(max=120)])
    serial = StringField(_l("Serial number"), validators=[Length(max=80)])
    type = RadioField(_l("Type (EN 13060)"), **_choice)
    is_validated_for_wrapped = BooleanField(
        _l("Validated by the maker for wrapped and hollow loads"),
        description=_l("Only for type S: tick it if the maker's documents say so. It is ignored for type B "
                       "(always suitable) and type N (never suitable)."))
    validation_due_on = DateField(_l("Next validation due"), validators=[Optional()])
    calibration_due_on = DateField(_l("Next calibration due"), validators=[Optional()])

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.site_id.choices = choices((s.id, s.name) for s in sites)
        self.type.choices = choices(STERILISER_TYPE_LABELS.items())  # the template adds STERILISER_TYPE_HELP


class ProgrammeForm(FlaskForm):
    name = StringField(_l("Programme name"), validators=[Length(max=80)],
                       description=_l("As shown on the steriliser, for example “134 °C wrapped”."))
    temperature_c = StringField(_l("Temperature (°C)"), validators=[Length(max=12)],
                                render_kw={"inputmode": "decimal"})
    min_holding_seconds = StringField(_l("Minimum holding time"), validators=[Length(max=12)],
                                      description=_l("In seconds (180) or minutes:seconds (3:00)."))
    min_pressure_kpa = StringField(_l("Minimum pressure (kPa)"), validators=[Length(max=12)],
                                   description=_l("Optional. Leave blank if the maker gives none."),
                                   render_kw={"inputmode": "decimal"})

    def values(self) -> dict:
        return {
            "name": self.name.data,
            "temperature_c": self.temperature_c.data,
            "min_holding_seconds": holding_seconds(self.min_holding_seconds.data),
            "min_pressure_kpa": self.min_pressure_kpa.data,
        }


class OutOfServiceForm(FlaskForm):
    reason = TextAreaField(_l("Reason for taking it out of service"), validators=[TextLimit(2000)],
                           description=_l("For example: door seal leaking, waiting for the engineer."))
