"""What the devices and sterilisation API reads and writes.

Decimals (temperatures, pressures, leak rates) are JSON strings in every answer, exactly as stored
("134.5", "1.30"), so that no figure of a load's record is rounded by a float. Inputs take the same string, or a
JSON number; more decimal places than the column stores are refused, never rounded. Timestamps are ISO 8601 in
UTC with their offset; inputs must carry an offset (any offset).

As in schemas.py, these refuse malformed input early (types, lengths, choices, plausible ranges, unknown fields)
and document it; the services stay the authority on the business rules (reach, order of the steps, verdicts).
"""
from __future__ import annotations

from decimal import Decimal

from marshmallow import ValidationError, fields, validate

from ..devices.models import DEVICE_STATUSES, SPAULDING_CLASSES, STERILISER_TYPES
from ..devices.services import MANUAL_STATUS_CHANGES
from ..sterilisation import rules, services
from ..sterilisation.messages import reason_text
from ..sterilisation.models import (
    COMPROMISE_REASONS,
    CYCLE_STATUSES,
    PACK_STATUSES,
    PACKAGINGS,
    TEST_KINDS,
    TEST_RESULTS,
)
from ..validation import DecimalRefused, parse_decimal
from .schemas import BoundedSchema, InputSchema, UTCDateTimeField, _text

CLEANING_METHODS = ("washer_disinfector", "ultrasonic", "manual")
CONTROL_RESULTS = ("grew", "no_growth")
MAX_IDS = 500


class DecimalString(fields.Field):
    """A decimal as a JSON string with a fixed number of places ("134.5"); reads a string or a JSON number.

    Read by validation.parse_decimal, as the forms are: more places than the column stores is refused (422), never
    rounded. The document states the places as x-decimal-places and a pattern.
    """

    def __init__(self, places: int = 1, lo=None, hi=None, **kwargs):
        self.places = places
        self.lo, self.hi = (None, None) if lo is None else (Decimal(lo), Decimal(hi))
        metadata = {"type": "string", "format": "decimal", "x-decimal-places": places,
                    "pattern": rf"^-?[0-9]+(\.[0-9]{{1,{places}}})?$",
                    "description": f"A decimal as a string with {places} decimal place(s)"}
        if lo is not None:
            # Bounds in the description, not as Range: OpenAPI's minimum/maximum do not apply to strings.
            metadata.update({"x-minimum": float(lo), "x-maximum": float(hi),
                             "description": f"Between {lo} and {hi}, with at most {places} decimal place(s), as a "
                                            f"string (a JSON number is also read); more places are refused, "
                                            f"not rounded"})
        extra = dict(kwargs.pop("metadata", {}))
        if "description" in extra:
            extra["description"] = f"{extra['description']}. {metadata['description']}"
        metadata.update(extra)
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        number = Decimal(str(value))
        fixed = number.quantize(Decimal(1).scaleb(-self.places))
        return str(fixed if fixed == number else number)  # a stored figure is shown whole, never rounded

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_decimal(value, self.places, self.lo, self.hi, decimal_comma=False)
        except DecimalRefused as exc:
            raise ValidationError(str(exc)) from None


def _decimal_in(lo, hi, places: int = 1, required: bool = True, **kw) -> DecimalString:
    if required:
        return DecimalString(places, lo, hi, required=True, **kw)
    return DecimalString(places, lo, hi, load_default=None, allow_none=True, **kw)


def _integer(lo: int, hi: int, required: bool = True, **kw) -> fields.Integer:
    if required:
        return fields.Integer(required=True, strict=True, validate=validate.Range(lo, hi), **kw)
    return fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(lo, hi), **kw)


def _choice(options, required: bool = True, **kw) -> fields.String:
    if required:
        return fields.String(required=True, validate=validate.OneOf(list(options)), **kw)
    return fields.String(load_default=None, allow_none=True, validate=validate.OneOf(list(options)), **kw)


def _device_ids() -> fields.List:
    return fields.List(fields.Integer(strict=True), required=True, validate=validate.Length(min=1, max=MAX_IDS))


# --- outputs: devices and sterilisers ------------------------------------------------------------

class DeviceKindSchema(BoundedSchema):
    id = fields.Integer()
    name = fields.String()
    spaulding_class = fields.String(metadata={"enum": list(SPAULDING_CLASSES)})
    is_hollow = fields.Boolean()
    default_max_cycles = fields.Integer(allow_none=True)
    is_active = fields.Boolean()
    created_at = UTCDateTimeField()


class DeviceSchema(BoundedSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    device_type_id = fields.Integer()
    device_type_name = fields.String(attribute="device_type.name")
    serial = fields.String()
    status = fields.String(metadata={"enum": list(DEVICE_STATUSES)})
    max_cycles = fields.Integer(allow_none=True, metadata={"description": "The maker's limit of reprocessing cycles"})
    reprocessing_count = fields.Integer()
    created_at = UTCDateTimeField()


class DeviceEventSchema(BoundedSchema):
    """A step in a device's life (registered, cleaned, inspected, packed, loaded, sterilised, recalled, ...)."""

    id = fields.Integer()
    device_id = fields.Integer()
    kind = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    method = fields.String()
    note = fields.String()
    pack_id = fields.Integer(allow_none=True)
    cycle_id = fields.Integer(allow_none=True)
    by_id = fields.Integer(allow_none=True, metadata={"description": "The person; null for a site's API key"})
    at = UTCDateTimeField()


class DeviceDetailSchema(DeviceSchema):
    history = fields.List(fields.Nested(DeviceEventSchema), metadata={"description": "Newest first"})


class ProgrammeSchema(BoundedSchema):
    id = fields.Integer()
    steriliser_id = fields.Integer()
    name = fields.String()
    temperature_c = DecimalString(1)
    min_holding_seconds = fields.Integer()
    min_pressure_kpa = DecimalString(1, allow_none=True)
    is_active = fields.Boolean()


class SteriliserSchema(BoundedSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    name = fields.String()
    make = fields.String()
    model = fields.String()
    serial = fields.String()
    type = fields.String(metadata={"enum": list(STERILISER_TYPES), "description": "EN 13060 type"})
    is_validated_for_wrapped = fields.Boolean()
    is_in_service = fields.Boolean()
    out_of_service_reason = fields.String()
    validation_due_on = fields.Date(allow_none=True)
    calibration_due_on = fields.Date(allow_none=True)
    is_active = fields.Boolean()
    created_at = UTCDateTimeField()
    programmes = fields.List(fields.Nested(ProgrammeSchema))


# --- outputs: tests, cycles, packs, recalls ------------------------------------------------------

class SteriliserTestSchema(BoundedSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    steriliser_id = fields.Integer()
    kind = fields.String(metadata={"enum": list(TEST_KINDS)})
    performed_at = UTCDateTimeField()
    performed_by_id = fields.Integer(allow_none=True)
    performed_by_name = fields.String()
    result = fields.String(metadata={"enum": list(TEST_RESULTS)})
    result_at = UTCDateTimeField(allow_none=True)
    result_by_id = fields.Integer(allow_none=True)
    indicator_lot = fields.String()
    control_result = fields.String(allow_none=True, metadata={"enum": list(CONTROL_RESULTS)})
    measured_value = DecimalString(2, allow_none=True)
    certificate_ref = fields.String()
    notes = fields.String()
    created_at = UTCDateTimeField()
    idempotency_key = fields.String(allow_none=True, metadata={"description": "The key it was posted with, if any"})


class ReasonSchema(BoundedSchema):
    """Why the rules failed a load: the guideline rule, a code, its figures, and a sentence in the reader's language."""

    rule = fields.String()
    code = fields.String()
    values = fields.Dict()
    message = fields.Function(reason_text, metadata={"type": "string"})


class PackBriefSchema(BoundedSchema):
    id = fields.Integer()
    label_code = fields.String()
    packaging = fields.String(metadata={"enum": list(PACKAGINGS)})
    status = fields.String(metadata={"enum": list(PACK_STATUSES)})
    expires_at = UTCDateTimeField(allow_none=True)


class CycleSchema(BoundedSchema):
    """A load with the rules' verdict: awaiting_release when every rule passed, failed otherwise (with reasons)."""

    id = fields.Integer()
    site_id = fields.Integer()
    steriliser_id = fields.Integer()
    programme_id = fields.Integer()
    cycle_number = fields.Integer()
    started_at = UTCDateTimeField()
    temperature_c = DecimalString(1)
    pressure_kpa = DecimalString(1, allow_none=True)
    holding_seconds = fields.Integer()
    printout_ref = fields.String()
    indicator_class = fields.Integer(allow_none=True)
    indicator_result = fields.Function(lambda c: "pass" if c.indicator_passed else "fail",
                                       metadata={"type": "string", "enum": ["pass", "fail"]})
    status = fields.String(metadata={"enum": list(CYCLE_STATUSES)})
    is_verdict_pass = fields.Boolean()
    reasons = fields.List(fields.Nested(ReasonSchema))
    loaded_by_id = fields.Integer(allow_none=True, metadata={"description": "The person; null for a site's API key"})
    decided_by_id = fields.Integer(allow_none=True)
    decided_at = UTCDateTimeField(allow_none=True)
    decision_note = fields.String()
    guideline_version = fields.String()
    created_at = UTCDateTimeField()
    idempotency_key = fields.String(allow_none=True, metadata={"description": "The key it was posted with, if any"})
    packs = fields.List(fields.Nested(PackBriefSchema))


class CycleCorrectionSchema(BoundedSchema):
    """A change of a load's figures (a manager's correction, or the steriliser's own record imported): the figures,
    verdict and status before and after, and why."""

    id = fields.Integer()
    cycle_id = fields.Integer()
    temperature_c_before = DecimalString(1)
    temperature_c_after = DecimalString(1)
    pressure_kpa_before = DecimalString(1, allow_none=True)
    pressure_kpa_after = DecimalString(1, allow_none=True)
    holding_seconds_before = fields.Integer()
    holding_seconds_after = fields.Integer()
    indicator_result_before = fields.Function(lambda c: "pass" if c.indicator_passed_before else "fail",
                                              metadata={"type": "string", "enum": ["pass", "fail"]})
    indicator_result_after = fields.Function(lambda c: "pass" if c.indicator_passed_after else "fail",
                                             metadata={"type": "string", "enum": ["pass", "fail"]})
    indicator_class_before = fields.Integer(allow_none=True)
    indicator_class_after = fields.Integer(allow_none=True)
    printout_ref_before = fields.String()
    printout_ref_after = fields.String()
    is_verdict_pass_before = fields.Boolean()
    is_verdict_pass_after = fields.Boolean()
    reasons_before = fields.List(fields.Nested(ReasonSchema))
    reasons_after = fields.List(fields.Nested(ReasonSchema))
    status_before = fields.String(metadata={"enum": list(CYCLE_STATUSES)})
    status_after = fields.String(metadata={"enum": list(CYCLE_STATUSES)})
    reason = fields.String()
    corrected_by_id = fields.Integer(allow_none=True)
    corrected_at = UTCDateTimeField()
    guideline_version = fields.String(metadata={"description": "The guideline pack version that judged the "
                                                               "corrected figures"})
    kind = fields.String(metadata={"enum": ["person", "machine_record"], "description": (
        "person: a manager corrected typed figures; machine_record: the steriliser's own record of the cycle was "
        "imported and its figures replaced the typed ones (the *_before figures are the typed ones)")})
    api_key_id = fields.Integer(allow_none=True, metadata={"description": "The key that imported the record"})
    curve_id = fields.Integer(allow_none=True, metadata={"description": "The steriliser's record (cycle-records)"})
    disagreements = fields.List(fields.Dict(), metadata={"description": (
        "machine_record: each typed figure off the machine's by more than the pack's tolerance, as "
        "{figure, typed, machine_low, machine_high}")})


class CycleDetailSchema(CycleSchema):
    """A load with its verdict, its packs and every correction of its figures (oldest first); the load's own
    figures are the corrected ones, the first correction's *_before figures the ones first recorded."""

    corrections = fields.List(fields.Nested(CycleCorrectionSchema))


class CycleBriefSchema(BoundedSchema):
    id = fields.Integer()
    steriliser_id = fields.Integer()
    cycle_number = fields.Integer()
    started_at = UTCDateTimeField()
    status = fields.String(metadata={"enum": list(CYCLE_STATUSES)})
    is_verdict_pass = fields.Boolean()
    decided_at = UTCDateTimeField(allow_none=True)


class PackDeviceSchema(BoundedSchema):
    id = fields.Integer()
    serial = fields.String()
    device_type_name = fields.String(attribute="device_type.name")
    status = fields.String(metadata={"enum": list(DEVICE_STATUSES)})


class PackSchema(BoundedSchema):
    id = fields.Integer()
    label_code = fields.String()
    label_url = fields.String(metadata={"description": "The address the label's QR code holds"})
    site_id = fields.Integer()
    packaging = fields.String(metadata={"enum": list(PACKAGINGS)})
    status = fields.String(metadata={"enum": list(PACK_STATUSES), "description": "As stored"})
    state = fields.String(metadata={"enum": [*PACK_STATUSES, "expired"],
                                    "description": "The status now: a sterile pack past its expiry is expired"})
    cycle_id = fields.Integer(allow_none=True)
    expires_at = UTCDateTimeField(allow_none=True)
    packed_at = UTCDateTimeField()
    packed_by_id = fields.Integer(allow_none=True)
    compromised_reason = fields.String(allow_none=True, metadata={"enum": list(COMPROMISE_REASONS)})
    compromised_note = fields.String()
    compromised_at = UTCDateTimeField(allow_none=True)
    devices = fields.List(fields.Nested(PackDeviceSchema))


class PackDetailSchema(PackSchema):
    cycle = fields.Nested(CycleBriefSchema, allow_none=True)
    history = fields.List(fields.Nested(DeviceEventSchema), metadata={"description": "Every event naming this pack, "
                                                                                     "oldest first"})


class RecallLoadSchema(BoundedSchema):
    cycle_id = fields.Integer()
    cycle_number = fields.Integer(attribute="cycle.cycle_number")
    started_at = UTCDateTimeField(attribute="cycle.started_at")
    previous_status = fields.String(metadata={"description": "The load's status before the recall"})
    pack_codes = fields.Function(lambda load: [p.label_code for p in load.cycle.packs],
                                 metadata={"type": "array", "items": {"type": "string"}})


class RecallSchema(BoundedSchema):
    """A failed spore test's recall of every load of the steriliser since its last passing spore test."""

    id = fields.Integer()
    site_id = fields.Integer()
    steriliser_id = fields.Integer()
    trigger_test_id = fields.Integer(allow_none=True)
    trigger_curve_id = fields.Function(
        lambda r: getattr(services.recall_trigger_curve(r), "id", None), allow_none=True,
        metadata={"type": "integer", "description": "The steriliser's record of a released load that failed its "
                                                    "checks (cycle-records), when no test opened the recall"})
    reason = fields.String()
    since = UTCDateTimeField(allow_none=True, metadata={"description": "The last passing spore test (null: none)"})
    opened_at = UTCDateTimeField()
    opened_by_id = fields.Integer(allow_none=True)
    is_open = fields.Function(lambda r: r.closed_at is None, metadata={"type": "boolean"})
    clients_contacted_at = UTCDateTimeField(allow_none=True)
    clients_contacted_by_id = fields.Integer(allow_none=True)
    clients_contacted_note = fields.String()
    closed_at = UTCDateTimeField(allow_none=True)
    closed_by_id = fields.Integer(allow_none=True)
    close_note = fields.String()
    loads = fields.List(fields.Nested(RecallLoadSchema))


class RecallChecklistSchema(BoundedSchema):
    """What must be done before a manager may close the recall."""

    retest = fields.Nested(SteriliserTestSchema, allow_none=True,
                           metadata={"description": "The first spore test read after the recall opened"})
    consecutive_passes = fields.Integer()
    required_passes = fields.Integer()
    passes_done = fields.Boolean()
    in_service = fields.Boolean()
    clients_contacted = fields.Boolean()


class RecallDetailSchema(RecallSchema):
    checklist = fields.Nested(RecallChecklistSchema)


# --- inputs --------------------------------------------------------------------------------------

class DeviceKindInputSchema(InputSchema):
    name = _text(120)
    spaulding_class = _choice(SPAULDING_CLASSES)
    is_hollow = fields.Boolean(load_default=False)
    default_max_cycles = _integer(1, 100000, required=False)


class DeviceInputSchema(InputSchema):
    """A new device; it starts dirty and is reprocessed before first use."""

    site_id = fields.Integer(required=True, strict=True)
    device_type_id = fields.Integer(required=True, strict=True)
    serial = _text(80)
    max_cycles = _integer(1, 100000, required=False, metadata={"description": "Default: the kind's limit"})


class DeviceStatusInputSchema(InputSchema):
    status = _choice(sorted(MANUAL_STATUS_CHANGES))
    reason = _text(2000)


class SteriliserInputSchema(InputSchema):
    """A steriliser; on update every field is replaced."""

    site_id = fields.Integer(required=True, strict=True)
    name = _text(120)
    make = _text(120, required=False)
    model = _text(120, required=False)
    serial = _text(80, required=False)
    type = _choice(STERILISER_TYPES, metadata={"description": "EN 13060 type B, S or N"})
    is_validated_for_wrapped = fields.Boolean(load_default=False, metadata={"description": "Type S only"})
    validation_due_on = fields.Date(load_default=None, allow_none=True)
    calibration_due_on = fields.Date(load_default=None, allow_none=True)


class ProgrammeInputSchema(InputSchema):
    name = _text(80)
    temperature_c = _decimal_in(100, 150)
    min_holding_seconds = _integer(1, 4 * 3600)
    min_pressure_kpa = _decimal_in(0, 600, required=False)


class OutOfServiceInputSchema(InputSchema):
    reason = _text(2000)


def _idempotency_key(what: str) -> fields.String:
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(min=8, max=64), metadata={
        "description": f"Optional, made by the client, one per {what} (8 to 64 characters, as for checklist answers). "
                       f"A retry with the same key, from the same caller, for the same site and with the same values "
                       f"stores nothing new and answers 200 with the {what} stored the first time (as it is now); the "
                       f"key with other values, another site or another caller answers 409 with existing_id"})


class SteriliserTestInputSchema(InputSchema):
    """A test. A spore test may be posted pending and read later (POST /steriliser-tests/{test_id}/result)."""

    steriliser_id = fields.Integer(required=True, strict=True)
    kind = _choice(TEST_KINDS)
    result = _choice(TEST_RESULTS, metadata={"description": "pending: spore tests only"})
    performed_at = fields.AwareDateTime(load_default=None, allow_none=True,
                                        metadata={"description": "With an offset; default: now"})
    performed_by_name = _text(200, required=False, metadata={"description": "An engineer without an account"})
    indicator_lot = _text(80, required=False, metadata={"description": "Needed for a spore test"})
    control_result = _choice(CONTROL_RESULTS, required=False,
                             metadata={"description": "Spore test: a pass needs the control to have grown"})
    measured_value = _decimal_in(0, 1000, places=2, required=False,
                                 metadata={"description": "E.g. a leak rate in mbar/min"})
    certificate_ref = _text(200, required=False, metadata={"description": "Needed for validation and calibration"})
    notes = _text(2000, required=False)
    idempotency_key = _idempotency_key("test")


class TestResultInputSchema(InputSchema):
    result = _choice(("pass", "fail"))
    control_result = _choice(CONTROL_RESULTS, required=False)


class CycleInputSchema(InputSchema):
    """A load as the steriliser's data logger (or a person) saw it; the rules give the verdict."""

    steriliser_id = fields.Integer(required=True, strict=True)
    programme_id = fields.Integer(load_default=None, allow_none=True, strict=True,
                                  metadata={"description": "Default: the steriliser's first programme"})
    cycle_number = _integer(1, 10**9, required=False,
                            metadata={"description": "The steriliser's counter; default: the next number"})
    started_at = fields.AwareDateTime(required=True, metadata={"description": "ISO 8601 with an offset"})
    temperature_c = _decimal_in(*rules.PLAUSIBLE_TEMPERATURE_C)
    holding_seconds = _integer(*rules.PLAUSIBLE_HOLDING_SECONDS)
    pressure_kpa = _decimal_in(*rules.PLAUSIBLE_PRESSURE_KPA, required=False)
    indicator_result = _choice(("pass", "fail"), metadata={"description": "The chemical indicator"})
    indicator_class = _integer(1, 6, required=False)
    printout_ref = _text(200, required=False, metadata={"description": "Printout or data-logger record reference"})
    pack_codes = fields.List(fields.String(validate=validate.Length(min=1, max=200)), load_default=list,
                             validate=validate.Length(max=MAX_IDS),
                             metadata={"description": "Labels (or the scanned URLs) of the packs in the load"})
    confirm_failure = fields.Boolean(load_default=False, metadata={"description": (
        "A person's figures that fail the rules are stored only with confirm_failure: true; without it the answer is "
        "409 with every reason (reasons), so that a mistyped figure can be corrected before the load fails for good. "
        "A site's API key (a data logger) is stored at once and needs no confirmation")})
    idempotency_key = _idempotency_key("load")


class CycleCorrectionInputSchema(InputSchema):
    """The figures of a load as they are on the printout (all of them, as when recording), and why they change."""

    temperature_c = _decimal_in(*rules.PLAUSIBLE_TEMPERATURE_C)
    holding_seconds = _integer(*rules.PLAUSIBLE_HOLDING_SECONDS)
    pressure_kpa = _decimal_in(*rules.PLAUSIBLE_PRESSURE_KPA, required=False)
    indicator_result = _choice(("pass", "fail"), metadata={"description": "The chemical indicator"})
    indicator_class = _integer(1, 6, required=False)
    printout_ref = _text(200, required=False, metadata={"description": "Printout or data-logger record reference"})
    reason = _text(2000, metadata={"description": "Why the recorded figures were wrong (e.g. 143.6 typed for 134.6)"})
    confirm_failure = fields.Boolean(load_default=False, metadata={"description": (
        "Needed when the corrected figures fail the rules; without it the answer is 409 with every reason")})


class DecisionNoteInputSchema(InputSchema):
    note = _text(2000, required=False)


class FailNoteInputSchema(InputSchema):
    note = _text(2000, metadata={"description": "Why the load fails (wet packs, a fault on the printout, ...)"})


class CleaningInputSchema(InputSchema):
    device_ids = _device_ids()
    method = _choice(CLEANING_METHODS)


class InspectionInputSchema(InputSchema):
    device_ids = _device_ids()
    passed = fields.Boolean(required=True)
    note = _text(2000, required=False, metadata={"description": "Needed when the inspection failed"})


class PackInputSchema(InputSchema):
    device_ids = _device_ids()
    packaging = _choice(PACKAGINGS)


class CompromiseInputSchema(InputSchema):
    reason = _choice(COMPROMISE_REASONS)
    note = _text(2000, required=False, metadata={"description": "Needed when the reason is other"})


class RecallNoteInputSchema(InputSchema):
    note = _text(4000)


# --- list filters (query string) -----------------------------------------------------------------

def _since(name: str, description: str) -> fields.AwareDateTime:
    return fields.AwareDateTime(load_default=None, data_key=name, metadata={"description": description + (
        " (ISO 8601 with an offset; write + as %2B, or use Z)")})


class DeviceKindQuerySchema(BoundedSchema):
    include_inactive = fields.Boolean(load_default=False)


class DeviceQuerySchema(BoundedSchema):
    site_id = fields.Integer(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(DEVICE_STATUSES))
    q = fields.String(load_default="", validate=validate.Length(max=200),
                      metadata={"description": "Part of the serial or of the kind's name"})
    device_type_id = fields.Integer(load_default=None)


class SteriliserQuerySchema(BoundedSchema):
    site_id = fields.Integer(load_default=None)
    include_inactive = fields.Boolean(load_default=False)


class SteriliserTestQuerySchema(BoundedSchema):
    steriliser_id = fields.Integer(load_default=None)
    kind = fields.String(load_default=None, validate=validate.OneOf(TEST_KINDS))
    result = fields.String(load_default=None, validate=validate.OneOf(TEST_RESULTS))
    date_from = _since("from", "Performed at or after")
    date_to = _since("to", "Performed before")


class CycleQuerySchema(BoundedSchema):
    steriliser_id = fields.Integer(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(CYCLE_STATUSES))
    verdict = fields.String(load_default=None, validate=validate.OneOf(("pass", "fail")))
    date_from = _since("from", "Started at or after")
    date_to = _since("to", "Started before")


class PackQuerySchema(BoundedSchema):
    site_id = fields.Integer(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(PACK_STATUSES),
                           metadata={"description": "As stored (an expired pack is still sterile here)"})
    cycle_id = fields.Integer(load_default=None)


class RecallQuerySchema(BoundedSchema):
    open_only = fields.Boolean(load_default=False)


# --- cycle records from the steriliser (docs/curve-format.md) ------------------------------------------------

class CurveCycleInputSchema(InputSchema):
    """One cycle as the steriliser logged it."""

    steriliser_serial = _text(80, metadata={"description": "The machine's serial; one of the caller's sterilisers"})
    cycle_number = _integer(1, 10**9, metadata={"description": "The machine's own cycle counter"})
    programme = _text(80, required=False, metadata={"description": "The programme as the machine names it"})
    started_at = fields.AwareDateTime(required=True, metadata={"description": "ISO 8601 with the machine's offset"})
    samples = fields.List(
        fields.List(fields.Float(allow_nan=False), validate=validate.Length(equal=3)),
        required=True, validate=validate.Length(min=2, max=50_000),
        metadata={"description": "[seconds from the start, chamber °C, chamber kPa absolute], times increasing"})


class CurveImportInputSchema(InputSchema):
    """One or many cycles in the generic curve format (JSON)."""

    format = fields.String(load_default="clinic-curve/1", validate=validate.OneOf(["clinic-curve/1"]))
    cycles = fields.List(fields.Nested(CurveCycleInputSchema), required=True, validate=validate.Length(min=1, max=500))


class CurveOutcomeSchema(BoundedSchema):
    steriliser_serial = fields.String()
    cycle_number = fields.Integer()
    outcome = fields.String(metadata={"enum": ["imported", "unchanged", "conflict", "unknown_steriliser",
                                               "unknown_programme"]})
    curve_id = fields.Integer(allow_none=True)
    verdict = fields.String(allow_none=True, metadata={"enum": ["pass", "fail", "not_judged", None]})
    reasons = fields.List(fields.Nested(ReasonSchema))
    load = fields.Nested(lambda: CurveLoadChangeSchema(), allow_none=True, metadata={"description": (
        "The load typed with this cycle number, which took the steriliser's figures (null: none typed yet, or the "
        "record was not imported or is too sparse to judge)")})


class CurveLoadChangeSchema(BoundedSchema):
    cycle_id = fields.Integer()
    status_before = fields.String(metadata={"enum": list(CYCLE_STATUSES)})
    status_after = fields.String(metadata={"enum": list(CYCLE_STATUSES), "description": (
        "recalled: the load had been released; a recall is open (GET /recalls)")})
    correction_id = fields.Integer()
    disagreements = fields.List(fields.Dict(), metadata={"description": (
        "Typed figures off the machine's by more than the pack's tolerance: {figure, typed, machine_low, "
        "machine_high}")})


class CurveFileQuerySchema(BoundedSchema):
    filename = fields.String(load_default="", validate=validate.Length(max=255), metadata={
        "description": "The file's name as the steriliser wrote it (kept with the file)"})
    steriliser_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1), metadata={
        "description": "The steriliser, for a file that doesn't name its serial (a STATCLAVE G4 cycleData alone)"})


class CurveImportResultSchema(BoundedSchema):
    """What each cycle of the body became; the body is kept whole as evidence under its SHA-256."""

    sha256 = fields.String()
    imported = fields.Integer()
    unchanged = fields.Integer()
    cycles = fields.List(fields.Nested(CurveOutcomeSchema))


# --- reading cycle records back ------------------------------------------------------------------------------

VERDICTS = ("pass", "fail", "not_judged")


def curve_verdict(curve) -> str:
    """pass or fail from the curve's checks, or not_judged when the curve was too sparse to judge."""
    return "not_judged" if not curve.is_judged else ("pass" if curve.is_verdict_pass else "fail")


class CycleRecordQuerySchema(BoundedSchema):
    steriliser_id = fields.Integer(load_default=None)


class CycleRecordItemQuerySchema(BoundedSchema):
    samples = fields.Boolean(load_default=False, metadata={
        "description": "Also answer the samples, as [[seconds from the start, °C, kPa absolute], …]"})


class CurveFileBriefSchema(BoundedSchema):
    """The file the record was imported from, kept whole: GET /cycle-records/{curve_id}/file answers its bytes."""

    id = fields.Integer()
    filename = fields.String()
    media_type = fields.String()
    size_bytes = fields.Integer()
    sha256 = fields.String()
    created_at = UTCDateTimeField()


class CycleRecordSchema(BoundedSchema):
    """One cycle as the steriliser recorded it, judged from its curve: the figures, the verdict and its reasons, the
    file it came from, and the load typed by a person with the same steriliser and cycle number (if any). Seconds
    count from the cycle's start."""

    id = fields.Integer()
    site_id = fields.Integer()
    steriliser_id = fields.Integer()
    steriliser_serial = fields.Function(lambda c: c.steriliser.serial, metadata={"type": "string"})
    cycle_number = fields.Integer(metadata={"description": "The machine's own cycle counter"})
    programme_id = fields.Integer()
    programme = fields.Function(lambda c: c.programme.name, metadata={
        "type": "string", "description": "The steriliser's programme the record was judged against"})
    programme_text = fields.String(metadata={"description": "The programme as the machine names it"})
    started_at = UTCDateTimeField()
    source_format = fields.String(metadata={"description": "The file's format: generic-csv, generic-json or "
                                                           "statclave-g4 (more as adapters are added)"})
    sample_count = fields.Integer()
    holding_seconds = DecimalString(1, allow_none=True, metadata={
        "description": "Holding time in the band [set, set + limit]; null when the curve never stayed in it"})
    holding_start_s = DecimalString(1, allow_none=True)
    holding_end_s = DecimalString(1, allow_none=True)
    equilibration_seconds = DecimalString(1, allow_none=True)
    max_temperature_c = DecimalString(1, allow_none=True)
    steam_deviation_k = DecimalString(2, allow_none=True, metadata={
        "description": "The largest measured minus saturation temperature in the holding time"})
    min_holding_pressure_kpa = DecimalString(1, allow_none=True)
    machine_passed = fields.Boolean(allow_none=True, metadata={"description": "The machine's own verdict, if given"})
    verdict = fields.Function(curve_verdict, metadata={"type": "string", "enum": list(VERDICTS)})
    reasons = fields.List(fields.Nested(ReasonSchema), metadata={"description": "Why the curve fails its checks"})
    refusal = fields.Nested(ReasonSchema, allow_none=True, metadata={
        "description": "Why the curve was not judged (too sparse), else null"})
    guideline_version = fields.String()
    file = fields.Nested(CurveFileBriefSchema, attribute="curve_file")
    load_id = fields.Integer(allow_none=True, metadata={
        "description": "The load typed by a person with this steriliser and cycle number (GET /cycles/{cycle_id})"})
    created_at = UTCDateTimeField(metadata={"description": "When it was imported"})


class CycleRecordDetailSchema(CycleRecordSchema):
    machine_log = fields.String(metadata={"description": "The machine's own log text, if the file had one"})
    # Raw: up to 50,000 samples are answered as stored, not passed through a field each.
    samples = fields.Raw(allow_none=True, metadata={
        "type": "array", "items": {"type": "array", "items": {"type": "number"}, "minItems": 3,
                                                     "maxItems": 3},
        "description": "[[seconds from the start, °C, kPa absolute], …] with ?samples=true, else null"})
