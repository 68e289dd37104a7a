"""Forms and words for the decontamination-room and sterilisation screens.

As for the site screens, the forms check only what a browser sends (CSRF, lengths, a date that is a date);
what is allowed (plausible figures, a label that exists, a cycle number not used before) is the services' job,
so the tablet, the API and the data logger are refused the same things with the same messages. The figures
are text fields on purpose: the services read "134,5" as well as "134.5", as people type on an Indonesian tablet.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, DateTimeLocalField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from ..i18n import input_number
from ..sites.forms import MultiCheckboxField, choices, TextLimit

_choice = {"validate_choice": False}
_number = {"inputmode": "decimal", "autocomplete": "off"}
_whole = {"inputmode": "numeric", "autocomplete": "off"}

TEST_KIND_LABELS = {
    "air_removal": _l("Air-removal test (Bowie-Dick / Helix)"),
    "spore": _l("Spore test (biological indicator)"),
    "leak": _l("Leak (vacuum) test"),
    "automatic_control": _l("Automatic control test"),
    "validation": _l("Validation"),
    "calibration": _l("Calibration"),
}
TEST_RESULT_LABELS = {"pass": _l("Pass"), "fail": _l("Fail"), "pending": _l("Incubating: read the result later")}
CONTROL_LABELS = {"grew": _l("The control grew"), "no_growth": _l("The control did not grow")}
CYCLE_STATUS_LABELS = {
    "awaiting_release": _l("Awaiting release"),
    "released": _l("Released"),
    "failed": _l("Failed"),
    "recalled": _l("Recalled"),
}
CYCLE_STATUS_CLASS = {"awaiting_release": "pill-warn", "released": "pill-ok", "failed": "pill-bad",
                      "recalled": "pill-bad"}
PACK_STATE_LABELS = {
    "packed": _l("Packed, not yet sterilised"),
    "loaded": _l("In a load awaiting release"),
    "sterile": _l("Sterile"),
    "expired": _l("Expired: do not use"),
    "failed": _l("Load failed: do not use"),
    "recalled": _l("Recalled: do not use"),
    "compromised": _l("Compromised: do not use"),
    "used": _l("Used"),
}
PACK_STATE_CLASS = {"sterile": "ok", "packed": "warn", "loaded": "warn", "used": "muted"}  # anything else: bad
PACKAGING_LABELS = {"pouch": _l("Pouch"), "wrap": _l("Wrap"), "unwrapped": _l("Unwrapped")}
COMPROMISE_LABELS = {"torn": _l("Torn"), "wet": _l("Wet"), "dropped": _l("Dropped"), "opened": _l("Opened"),
                     "other": _l("Other")}
CLEANING_LABELS = {"ultrasonic": _l("Ultrasonic bath"), "washer_disinfector": _l("Washer-disinfector"),
                   "manual": _l("By hand")}
DEVICE_STATUS_LABELS = {"in_service": _l("Ready"), "dirty": _l("Dirty"), "in_reprocessing": _l("Being reprocessed"),
                        "quarantined": _l("Quarantined"), "retired": _l("Retired")}
EVENT_LABELS = {
    "registered": _l("Registered"),
    "cleaned": _l("Cleaned"),
    "inspected": _l("Inspected: fine"),
    "inspection_failed": _l("Inspected: damaged, quarantined"),
    "packed": _l("Packed"),
    "loaded": _l("Loaded into the steriliser"),
    "load_failed": _l("Load failed"),
    "sterilised": _l("Sterilised (load released)"),
    "recalled": _l("Recalled"),
    "pack_compromised": _l("Pack compromised"),
    "status": _l("Status changed"),
    "used": _l("Used"),
}


def local_to_utc_iso(value: datetime | None, tz_name: str) -> str:
    """A wall-clock time typed on the site's tablet, as an ISO instant the services accept ("" for none)."""
    if value is None:
        return ""
    return value.replace(tzinfo=ZoneInfo(tz_name)).isoformat()


class ScanForm(FlaskForm):
    code = StringField(_l("Check a pack"), validators=[Length(max=300)],
                       render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false",
                                  "placeholder": _l("Scan or type the label, e.g. PK-7KQ2M4XD")})


class SteriliserTestForm(FlaskForm):
    steriliser_id = SelectField(_l("Steriliser"), coerce=int, **_choice)
    kind = RadioField(_l("Test"), choices=choices(TEST_KIND_LABELS.items()), **_choice)
    result = RadioField(_l("Result"), choices=choices(TEST_RESULT_LABELS.items()), **_choice)
    indicator_lot = StringField(_l("Indicator lot"), validators=[Length(max=80)],
                                description=_l("Spore tests: the lot printed on the biological indicator."))
    control_result = RadioField(_l("Control from the same lot"), choices=choices(CONTROL_LABELS.items()),
                                **_choice)
    measured_value = StringField(_l("Leak rate (mbar/min)"), validators=[Length(max=20)], render_kw=_number)
    certificate_ref = StringField(_l("Certificate or report number"), validators=[Length(max=200)],
                                  description=_l("Needed for a validation or a calibration."))
    performed_by_name = StringField(_l("Done by (engineer without an account)"), validators=[Length(max=200)])
    performed_at = DateTimeLocalField(_l("Done at"), validators=[Optional()], format="%Y-%m-%dT%H:%M",
                                      description=_l("Leave empty for now."))
    notes = TextAreaField(_l("Notes"), validators=[TextLimit(2000)])
    # Rendered fresh into each new form: a double tap, or a resend after a lost connection, stores one test.
    idempotency_key = HiddenField(validators=[Length(max=64)])

    def __init__(self, *args, sterilisers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.steriliser_id.choices = choices((s.id, s.name) for s in sterilisers)

    def values(self, tz_name: str) -> dict:
        return {
            "idempotency_key": self.idempotency_key.data or None,
            "steriliser_id": self.steriliser_id.data,
            "kind": self.kind.data,
            "result": self.result.data,
            "indicator_lot": self.indicator_lot.data or "",
            "control_result": self.control_result.data or "",
            "measured_value": self.measured_value.data or "",
            "certificate_ref": self.certificate_ref.data or "",
            "performed_by_name": self.performed_by_name.data or "",
            "performed_at": local_to_utc_iso(self.performed_at.data, tz_name),
            "notes": self.notes.data or "",
        }


class SporeResultForm(FlaskForm):
    result = RadioField(_l("Result"), choices=choices([("pass", _l("Pass: no growth")),
                                                       ("fail", _l("Fail: the test vial grew"))]), **_choice)
    control_result = RadioField(_l("Control from the same lot"), choices=choices(CONTROL_LABELS.items()),
                                **_choice)

    def values(self) -> dict:
        return {"result": self.result.data, "control_result": self.control_result.data or ""}


class CycleForm(FlaskForm):
    # The main form: six fields, read off the printout and the indicator.
    steriliser_id = SelectField(_l("Steriliser"), coerce=int, **_choice)
    temperature_c = StringField(_l("Temperature reached (°C)"), validators=[Length(max=20)], render_kw=_number)
    holding_seconds = StringField(_l("Holding time (seconds)"), validators=[Length(max=20)], render_kw=_whole,
                                  description=_l("For example 210 for 3 min 30 s."))
    indicator_result = RadioField(_l("Chemical indicator"), choices=choices([("pass", _l("Pass")),
                                                                            ("fail", _l("Fail"))]), **_choice)
    printout_ref = StringField(_l("Printout or data-logger reference"), validators=[Length(max=200)],
                               description=_l("Without one, the indicator must be class 5 or 6 (under “More”)."),
                               render_kw={"autocomplete": "off"})
    pack_codes = TextAreaField(_l("Pack labels"), validators=[TextLimit(20000)],
                               description=_l("Scan or type each pack in this load, one per line."),
                               render_kw={"rows": 4, "autocomplete": "off", "autocapitalize": "characters",
                                          "spellcheck": "false"})
    # Under "More": the defaults fit most loads.
    programme_id = SelectField(_l("Programme"), **_choice)
    cycle_number = StringField(_l("Cycle number"), validators=[Length(max=12)], render_kw=_whole)
    pressure_kpa = StringField(_l("Pressure reached (kPa)"), validators=[Length(max=20)], render_kw=_number)
    indicator_class = SelectField(_l("Indicator class"), **_choice)
    started_at = DateTimeLocalField(_l("Started at"), validators=[Optional()], format="%Y-%m-%dT%H:%M",
                                    description=_l("Leave empty for now."))

    idempotency_key = HiddenField(validators=[Length(max=64)])  # as for tests: one load per form

    MORE = ("programme_id", "cycle_number", "pressure_kpa", "indicator_class", "started_at")

    def __init__(self, *args, sterilisers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.steriliser_id.choices = choices((s.id, s.name) for s in sterilisers)
        self.programme_id.choices = [("", _l("The steriliser's first programme"))] + [
            (str(p.id), f"{s.name}: {p.name}") for s in sterilisers for p in s.programmes if p.is_active]
        self.indicator_class.choices = [("", _l("Not recorded"))] + [(str(n), str(n)) for n in range(1, 7)]

    @property
    def more_has_errors(self) -> bool:
        return any(self[name].errors for name in self.MORE)

    def values(self, tz_name: str) -> dict:
        return {
            "idempotency_key": self.idempotency_key.data or None,
            "steriliser_id": self.steriliser_id.data,
            "temperature_c": self.temperature_c.data or "",
            "holding_seconds": self.holding_seconds.data or "",
            "indicator_result": self.indicator_result.data,
            "printout_ref": self.printout_ref.data or "",
            "pack_codes": self.pack_codes.data or "",
            "programme_id": self.programme_id.data or "",
            "cycle_number": self.cycle_number.data or "",
            "pressure_kpa": self.pressure_kpa.data or "",
            "indicator_class": self.indicator_class.data or "",
            "started_at": local_to_utc_iso(self.started_at.data, tz_name),
        }


class CorrectionForm(FlaskForm):
    """A manager's correction of a load's figures: the six figures as on the printout, and why they change."""
    temperature_c = StringField(_l("Temperature reached (°C)"), validators=[Length(max=20)], render_kw=_number)
    holding_seconds = StringField(_l("Holding time (seconds)"), validators=[Length(max=20)], render_kw=_whole)
    pressure_kpa = StringField(_l("Pressure reached (kPa)"), validators=[Length(max=20)], render_kw=_number)
    indicator_result = RadioField(_l("Chemical indicator"), choices=choices([("pass", _l("Pass")),
                                                                            ("fail", _l("Fail"))]), **_choice)
    indicator_class = SelectField(_l("Indicator class"), **_choice)
    printout_ref = StringField(_l("Printout or data-logger reference"), validators=[Length(max=200)],
                               render_kw={"autocomplete": "off"})
    reason = TextAreaField(_l("Why the recorded figures were wrong"), validators=[TextLimit(2000)],
                           description=_l("For example: 143.6 typed for 134.6 (printout checked)."),
                           render_kw={"rows": 2})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.indicator_class.choices = [("", _l("Not recorded"))] + [(str(n), str(n)) for n in range(1, 7)]

    def prefill(self, cycle) -> None:
        """The figures as recorded now, to change the mistyped one (in the locale's decimal sign: it reads back)."""
        self.temperature_c.data = input_number(cycle.temperature_c)
        self.holding_seconds.data = str(cycle.holding_seconds)
        self.pressure_kpa.data = input_number(cycle.pressure_kpa)
        self.indicator_result.data = "pass" if cycle.indicator_passed else "fail"
        self.indicator_class.data = str(cycle.indicator_class or "")
        self.printout_ref.data = cycle.printout_ref

    def values(self) -> dict:
        return {name: self[name].data or "" for name in ("temperature_c", "holding_seconds", "pressure_kpa",
                                                          "indicator_result", "indicator_class", "printout_ref",
                                                          "reason")}


class CleaningForm(FlaskForm):
    device_ids = MultiCheckboxField(_l("Devices"), coerce=int, **_choice)
    method = RadioField(_l("Cleaned with"), choices=choices(CLEANING_LABELS.items()), **_choice)


class InspectionForm(FlaskForm):
    device_ids = MultiCheckboxField(_l("Devices"), coerce=int, **_choice)
    passed = RadioField(_l("Inspection under magnification"),
                        choices=choices([("1", _l("Clean and undamaged")), ("0", _l("Damaged or still soiled"))]),
                        validators=[InputRequired(message=_l("Choose whether the devices are fine or damaged."))],
                        **_choice)
    note = TextAreaField(_l("What is wrong"), validators=[TextLimit(2000)],
                         description=_l("Needed when a device fails: it is quarantined."), render_kw={"rows": 2})


class PackForm(FlaskForm):
    device_ids = MultiCheckboxField(_l("Devices"), coerce=int, **_choice)
    packaging = RadioField(_l("Packaging"), choices=choices(PACKAGING_LABELS.items()), **_choice)
    together = BooleanField(_l("Wrap the ticked devices together in one pack"),
                            description=_l("Otherwise each ticked device gets its own pack and label."))


class ReleaseForm(FlaskForm):
    view = HiddenField()


class FailForm(FlaskForm):
    view = HiddenField()
    note = TextAreaField(_l("Why this load fails"), validators=[TextLimit(2000)], id="fail-note",
                         description=_l("For example: wet packs, a torn pouch, a fault on the printout."),
                         render_kw={"rows": 2})


class CompromiseForm(FlaskForm):
    reason = RadioField(_l("What happened"), choices=choices(COMPROMISE_LABELS.items()), **_choice)
    note = TextAreaField(_l("Note"), validators=[TextLimit(2000)], description=_l("Needed for “Other”."),
                         render_kw={"rows": 2})


class ContactedForm(FlaskForm):
    note = TextAreaField(_l("How the clients were contacted"), validators=[TextLimit(4000)], id="contacted-note",
                         description=_l("Who, how and when; the treatments they had."), render_kw={"rows": 3})


class CloseRecallForm(FlaskForm):
    note = TextAreaField(_l("Closing note"), validators=[TextLimit(4000)], id="close-note", render_kw={"rows": 3})
    confirm = BooleanField(_l("I have checked the items above and the recalled packs are out of use."),
                           validators=[InputRequired(message=_l("Tick the box to confirm."))])


class CurveImportForm(FlaskForm):
    """A file of cycle records from the steriliser (its USB export, or a data logger's file)."""
    file = FileField(_l("Cycle record file (CSV or JSON)"),
                     description=_l("One or many cycles; the formats are described in docs/curve-format.md."))
    steriliser_id = SelectField(_l("Steriliser"), **_choice,
                                description=_l("Only needed when the file does not name the steriliser's serial."))

    def __init__(self, *args, sterilisers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.steriliser_id.choices = [("", _l("As the file says"))] + choices((s.id, s.name) for s in sterilisers)


CURVE_OUTCOME_LABELS = {
    "imported": _l("imported"),
    "unchanged": _l("already on record: nothing changed"),
    "conflict": _l("another record of this cycle number is on record: not imported"),
    "unknown_steriliser": _l("no steriliser of yours has this serial: not imported"),
    "unknown_programme": _l("the programme could not be matched to one of the steriliser's: not imported"),
}
CURVE_SOURCE_LABELS = {
    "generic-csv": _l("imported file (CSV)"),
    "generic-json": _l("imported file (JSON)"),
    "statclave-g4": _l("imported file (SciCan STATCLAVE G4)"),
}
# Where a load's figures come from (the logbook's Source): the steriliser's record once imported, else as posted.
FIGURE_SOURCE_LABELS = {"typed": _l("typed from the printout"), "data_logger": _l("data logger"),
                        **CURVE_SOURCE_LABELS}
