"""What the single-use stock and treatments API reads and writes.

As in sterilisation_schemas.py: decimals (needle lengths and depths) are JSON strings as stored ("0.50"); inputs
take the same string or a JSON number. Timestamps are ISO 8601 in UTC with their offset; inputs carry an offset.
These refuse malformed input early (types, lengths, choices, unknown fields) and document it; the services stay
the authority on the business rules (reach, GS1 check digits, the point-of-use gate). The gate's reasons are put
into words by compliance/treatments/messages.py, in the reader's language.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from ..stock.models import ITEM_KINDS, LOT_STATUSES
from ..treatments import rules as gate_rules
from ..treatments.messages import reason_text as gate_reason_text
from ..treatments.models import ADVERSE_KINDS, PROCEDURES, SEVERITIES, TREATMENT_STATUSES
from ..treatments.services import LOOK_BACK_DAYS
from .schemas import BoundedSchema, InputSchema, UTCDateTimeField, _text
from .sterilisation_schemas import DecimalString, _choice, _decimal_in, _integer

SKIN_TYPES = ("I", "II", "III", "IV", "V", "VI")

class GateReasonSchema(BoundedSchema):
    """Why the point-of-use gate refused: the guideline rule, a code, its values, and a sentence."""

    rule = fields.String(metadata={"description": "The guideline rule (an id in the guideline pack)"})
    code = fields.String(metadata={"description": "What went wrong, e.g. lot_quarantined, unit_used, "
                                                  "load_not_released, training_missing, screening_missing"})
    values = fields.Dict()
    override = fields.String(metadata={"enum": ["never", "manager"], "description": (
        "Whether a manager may override this reason at this site (the guideline pack's gate section); "
        "absent on refusals stored before 2026-12")})
    message = fields.Function(gate_reason_text, metadata={"type": "string"})


class GateRefusalSchema(BoundedSchema):
    """A 409 from the gate. The refused attempt is stored (attempt_id); nothing was used. A manager may override
    it at POST /gate-attempts/{attempt_id}/override only when `overridable` (every reason is `override: manager`:
    the practitioner's training); an item that may not be sterile, was used, or a client not screened or with a
    contraindication never (409 naming the rule)."""

    code = fields.Integer(metadata={"description": "409"})
    message = fields.String()
    rule = fields.String(metadata={"description": "The first reason's guideline rule"})
    reasons = fields.List(fields.Nested(GateReasonSchema))
    attempt_id = fields.Integer()
    overridable = fields.Boolean(metadata={"description": "A manager may override this refusal"})
    instead = fields.String(metadata={"description": "What to do instead, when no override is possible"})
    errors = fields.Dict(metadata={"description": "Instead of reasons, when the treatment is not open or the "
                                                  "refusal was already overridden: {field: [messages]}"})


# --- outputs: stock ------------------------------------------------------------------------------

class ItemTypeSchema(BoundedSchema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String(metadata={"enum": list(ITEM_KINDS)})
    maker = fields.String()
    product_code = fields.String()
    gtin = fields.String(allow_none=True, metadata={"description": "14 digits, as in a GS1 barcode's (01)"})
    pins = fields.Integer(allow_none=True)
    needle_length_mm = DecimalString(2, allow_none=True)
    is_active = fields.Boolean()
    created_at = UTCDateTimeField()


class LotSchema(BoundedSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    item_type_id = fields.Integer()
    item_type_name = fields.String(attribute="item_type.name")
    lot_number = fields.String()
    expires_on = fields.Date(metadata={"description": "As printed on the box; usable through this date"})
    is_expired = fields.Boolean(metadata={"description": "Past its expiry by the site's local date now"})
    quantity = fields.Integer()
    supplier_ref = fields.String()
    status = fields.String(metadata={"enum": list(LOT_STATUSES)})
    status_reason = fields.String()
    status_changed_at = UTCDateTimeField(allow_none=True)
    units_known = fields.Integer(metadata={"description": "Units scanned by their maker's serial or labelled by us"})
    units_used = fields.Integer()
    received_by_id = fields.Integer(allow_none=True)
    received_at = UTCDateTimeField()


class LotDetailSchema(LotSchema):
    item_type = fields.Nested(ItemTypeSchema)


class UnitLabelsSchema(BoundedSchema):
    lot_id = fields.Integer()
    codes = fields.List(fields.String(), metadata={"description": "The new labels (SU-…), to print with a QR code "
                                                                  "holding the code itself"})


class SharpsContainerSchema(BoundedSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    room_id = fields.Integer(allow_none=True)
    label = fields.String()
    is_open = fields.Function(lambda c: c.closed_at is None, metadata={"type": "boolean"})
    opened_at = UTCDateTimeField()
    opened_by_id = fields.Integer(allow_none=True)
    closed_at = UTCDateTimeField(allow_none=True)
    closed_by_id = fields.Integer(allow_none=True)
    disposal_ref = fields.String()


# --- outputs: clients and treatments -------------------------------------------------------------

class ClientSchema(BoundedSchema):
    """A client by pseudonymous code. name, phone and consent_note are present only for callers allowed
    clients.contact (managers, admins)."""

    id = fields.Integer()
    code = fields.String()
    site_id = fields.Integer(metadata={"description": "Where the client was registered"})
    consent_at = UTCDateTimeField(allow_none=True)
    name = fields.String(metadata={"description": "Managers and admins only"})
    phone = fields.String(metadata={"description": "Managers and admins only"})
    consent_note = fields.String(metadata={"description": "Managers and admins only"})
    created_at = UTCDateTimeField()


class TreatmentPackSchema(BoundedSchema):
    """A sterile pack opened for a treatment."""

    id = fields.Integer()
    treatment_id = fields.Integer()
    pack_id = fields.Integer()
    label_code = fields.String(attribute="pack.label_code")
    cycle_id = fields.Integer(attribute="pack.cycle_id", allow_none=True)
    added_by_id = fields.Integer(allow_none=True)
    added_at = UTCDateTimeField()
    override_id = fields.Integer(allow_none=True, metadata={"description": "Set when a manager overrode a refusal"})
    already_added = fields.Boolean(metadata={"description": "True (with 200, not 201) when this pack was already "
                                                            "added to this treatment: a double scan, nothing stored"})


class TreatmentUnitSchema(BoundedSchema):
    """A single-use unit used in a treatment."""

    id = fields.Integer()
    treatment_id = fields.Integer()
    unit_id = fields.Integer()
    serial = fields.String(attribute="unit.serial")
    lot_id = fields.Integer(attribute="unit.lot_id")
    lot_number = fields.String(attribute="unit.lot.lot_number")
    item_type_name = fields.String(attribute="unit.item_type.name")
    added_by_id = fields.Integer(allow_none=True)
    added_at = UTCDateTimeField()
    sharps_container_id = fields.Integer(allow_none=True)
    override_id = fields.Integer(allow_none=True, metadata={"description": "Set when a manager overrode a refusal"})
    already_added = fields.Boolean(metadata={"description": "True (with 200, not 201) when this unit was already "
                                                            "added to this treatment: a double scan, nothing stored"})


class GateAttemptSchema(BoundedSchema):
    """A refused point-of-use check, kept: who tried what, and why it was refused."""

    id = fields.Integer()
    treatment_id = fields.Integer()
    subject = fields.String(metadata={"enum": ["pack", "unit"]})
    scanned = fields.String()
    pack_id = fields.Integer(allow_none=True)
    unit_id = fields.Integer(allow_none=True)
    reasons = fields.List(fields.Nested(GateReasonSchema))
    by_id = fields.Integer(allow_none=True)
    at = UTCDateTimeField()
    override_id = fields.Integer(allow_none=True)


class GateOverrideSchema(BoundedSchema):
    """A manager's written override of a refusal (a finding on the reports)."""

    id = fields.Integer()
    attempt_id = fields.Integer()
    subject = fields.String(attribute="attempt.subject", metadata={"enum": ["pack", "unit"]})
    reasons = fields.List(fields.Nested(GateReasonSchema), attribute="attempt.reasons",
                          metadata={"description": "What was overridden"})
    manager_id = fields.Integer()
    manager_name = fields.String(attribute="manager.name")
    reason = fields.String()
    at = UTCDateTimeField()


class OverrideResultSchema(BoundedSchema):
    """The override and the usage it let through (a pack or a unit)."""

    override = fields.Nested(GateOverrideSchema)
    pack = fields.Nested(TreatmentPackSchema, allow_none=True)
    unit = fields.Nested(TreatmentUnitSchema, allow_none=True)


class AdverseEventSchema(BoundedSchema):
    id = fields.Integer()
    treatment_id = fields.Integer()
    site_id = fields.Integer()
    kind = fields.String(metadata={"enum": list(ADVERSE_KINDS)})
    severity = fields.String(metadata={"enum": list(SEVERITIES)})
    is_reportable = fields.Boolean(metadata={"description": "Redness, swelling and pain are expected; the rest are "
                                                            "findings"})
    onset_at = UTCDateTimeField()
    description = fields.String()
    follow_up = fields.String()
    recorded_by_id = fields.Integer(allow_none=True)
    recorded_at = UTCDateTimeField()
    look_back_id = fields.Integer(allow_none=True, metadata={"description": "The look-back an infection opened"})


class ProductSchema(BoundedSchema):
    name = fields.String()
    lot = fields.String()


def _needles_checked(treatment) -> bool:
    from ..guidelines.services import pack_for_site
    from ..treatments.services import needle_checklist

    return all(met for _req, met in needle_checklist(treatment, pack_for_site(treatment.site_id)))


class TreatmentSchema(BoundedSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    room_id = fields.Integer()
    client_id = fields.Integer()
    client_code = fields.String(attribute="client.code")
    practitioner_id = fields.Integer()
    practitioner_name = fields.String(attribute="practitioner.name")
    procedure = fields.String(metadata={"enum": list(PROCEDURES)})
    method = fields.String(allow_none=True, metadata={
        "description": "How the needles reach the skin (a method of the guideline pack: pen, roller); null for "
                       "treatments recorded before methods existed"})
    supervised_by_id = fields.Integer(allow_none=True, metadata={
        "description": "The manager who overrode the practitioner's missing training and supervises"})
    needles_checked = fields.Function(_needles_checked, metadata={"type": "boolean",
        "description": "Every needle item its method needs was accepted by the gate; false on a finished treatment "
                       "is a finding (finished before finishing required them)"})
    status = fields.String(metadata={"enum": list(TREATMENT_STATUSES)})
    started_at = UTCDateTimeField()
    ended_at = UTCDateTimeField(allow_none=True)
    needle_depth_mm = DecimalString(2, allow_none=True)
    passes = fields.Integer(allow_none=True)
    passes_confirmed = fields.Boolean()
    screening = fields.Dict(allow_none=True, metadata={"description": "The answers; null until recorded"})
    screening_at = UTCDateTimeField(allow_none=True)
    products = fields.List(fields.Nested(ProductSchema))
    aftercare = fields.String()
    notes = fields.String()
    sharps_container_id = fields.Integer(allow_none=True)
    abandoned_reason = fields.String(metadata={"description": "Why it was abandoned; empty unless abandoned"})
    abandoned_by_id = fields.Integer(allow_none=True)
    created_by_id = fields.Integer(allow_none=True)
    created_at = UTCDateTimeField()


class TreatmentDetailSchema(TreatmentSchema):
    packs = fields.List(fields.Nested(TreatmentPackSchema))
    units = fields.List(fields.Nested(TreatmentUnitSchema))
    attempts = fields.List(fields.Nested(GateAttemptSchema), metadata={"description": "Refusals, oldest first"})
    overrides = fields.List(fields.Nested(GateOverrideSchema))
    adverse_events = fields.List(fields.Nested(AdverseEventSchema))


# --- inputs --------------------------------------------------------------------------------------

class ItemTypeInputSchema(InputSchema):
    name = _text(160)
    kind = _choice(ITEM_KINDS)
    maker = _text(160, required=False)
    product_code = _text(80, required=False)
    gtin = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        r"^\d{8,14}$", error="must be 8 to 14 digits"), metadata={"description": "GTIN-8, -12, -13 or -14"})
    pins = _integer(1, 100, required=False)
    needle_length_mm = _decimal_in("0.1", "3.0", places=2, required=False)


class LotInputSchema(InputSchema):
    """A lot received at a site: scan the box's GS1 barcode (item type from its GTIN, lot and expiry), or give the
    item type, lot number and expiry. A lot number or expiry given next to a barcode wins over the barcode's."""

    site_id = fields.Integer(required=True, strict=True)
    barcode = fields.String(load_default="", validate=validate.Length(max=200),
                            metadata={"description": "As scanned: (01)…(17)…(10)… or raw GS1 with FNC1 as "
                                                     "the group separator"})
    item_type_id = fields.Integer(load_default=None, allow_none=True, strict=True)
    lot_number = _text(40, required=False)
    expires_on = fields.Date(load_default=None, allow_none=True)
    quantity = _integer(1, 100000)
    supplier_ref = _text(120, required=False)

    @validates_schema
    def _barcode_or_item_type(self, data, **kwargs):
        if not data.get("barcode") and data.get("item_type_id") is None:
            raise ValidationError("give a barcode, or an item_type_id with lot_number and expires_on",
                                  field_name="barcode")


class LotStatusInputSchema(InputSchema):
    status = _choice(LOT_STATUSES, metadata={"description": "available releases from quarantine; a recall is final"})
    reason = _text(2000)


class UnitLabelsInputSchema(InputSchema):
    count = _integer(1, 1000)


class SharpsContainerInputSchema(InputSchema):
    site_id = fields.Integer(required=True, strict=True)
    label = _text(40)
    room_id = fields.Integer(load_default=None, allow_none=True, strict=True)


class CloseContainerInputSchema(InputSchema):
    disposal_ref = _text(120, required=False, metadata={"description": "The waste carrier's consignment number"})


class ClientInputSchema(InputSchema):
    site_id = fields.Integer(required=True, strict=True)
    name = _text(200, required=False)
    phone = _text(40, required=False)
    consent = fields.Boolean(load_default=False, metadata={"description": "The client consented today"})
    consent_note = _text(2000, required=False)


class TreatmentInputSchema(InputSchema):
    """Open a treatment in a room for a client (by id or code); the practitioner defaults to the caller."""

    room_id = fields.Integer(required=True, strict=True)
    client_id = fields.Integer(load_default=None, allow_none=True, strict=True)
    client_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=16))
    practitioner_id = fields.Integer(load_default=None, allow_none=True, strict=True)
    procedure = _choice(PROCEDURES)
    method = fields.String(required=True, validate=validate.Length(min=1, max=24), metadata={
        "description": "How the needles reach the skin: a method of the site's guideline pack (pen, roller); it "
                       "names the needle items the gate must accept before the treatment can be finished"})

    @validates_schema
    def _one_client(self, data, **kwargs):
        if (data.get("client_id") is None) == (data.get("client_code") is None):
            raise ValidationError("give exactly one of client_id and client_code", field_name="client_id")


def _yes_no(description: str) -> fields.Boolean:
    return fields.Boolean(required=True, metadata={"description": description})


class ScreeningInputSchema(InputSchema):
    """client-screening: the answers before treatment. An active skin infection refuses every pack and unit."""

    active_skin_infection = _yes_no("An active skin infection in the area to be treated")
    herpes_history = _yes_no("A history of cold sores (herpes)")
    metal_allergy = _yes_no("An allergy to metals (nickel)")
    skin_type = _choice(SKIN_TYPES, metadata={"description": "Fitzpatrick skin type"})
    age_confirmed = _yes_no("The client is of age")
    notes = _text(2000, required=False)


class ScanInputSchema(InputSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=200),
                         metadata={"description": "The pack's label (or its scanned URL); the unit's GS1 barcode "
                                                  "with a serial (21), or our SU-… label"})


class OverrideInputSchema(InputSchema):
    """A manager of the site confirms on the spot with their password or PIN, and writes why."""

    manager_email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    secret = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=200),
                           metadata={"description": "The manager's password or PIN"})
    reason = _text(2000)


class ProductInputSchema(InputSchema):
    name = _text(120)
    lot = _text(40, required=False)


class FinishInputSchema(InputSchema):
    passes = _integer(*gate_rules.PLAUSIBLE_PASSES)
    needle_depth_mm = _decimal_in(*(str(x) for x in gate_rules.PLAUSIBLE_DEPTH_MM), places=2)
    passes_confirmed = fields.Boolean(load_default=False, metadata={
        "description": "Needed when the passes are outside the guideline's range"})
    sharps_container_id = fields.Integer(load_default=None, allow_none=True, strict=True,
                                         metadata={"description": "An open container; needed when units were used"})
    ended_at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={"description": "Default: now"})
    aftercare = _text(2000, required=False)
    notes = _text(4000, required=False)
    products = fields.List(fields.Nested(ProductInputSchema), load_default=list,
                           validate=validate.Length(max=20),
                           metadata={"description": "Anaesthetic and topical products with their lots"})


class AbandonInputSchema(InputSchema):
    reason = _text(2000, metadata={"description": "Why the treatment stops: the client left, a contraindication, "
                                                  "a dropped device…"})


class AdverseEventInputSchema(InputSchema):
    kind = _choice(ADVERSE_KINDS)
    severity = _choice(SEVERITIES)
    onset_at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={"description": "Default: now"})
    description = _text(4000, required=False)
    follow_up = _text(4000, required=False)


# --- list filters (query string) -----------------------------------------------------------------

def _since(name: str, description: str) -> fields.AwareDateTime:
    return fields.AwareDateTime(load_default=None, data_key=name, metadata={"description": description + (
        " (ISO 8601 with an offset; write + as %2B, or use Z)")})


class ItemTypeQuerySchema(BoundedSchema):
    q = fields.String(load_default="", validate=validate.Length(max=200),
                      metadata={"description": "Part of the name, maker, product code or GTIN"})


class LotQuerySchema(BoundedSchema):
    site_id = fields.Integer(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(LOT_STATUSES))
    q = fields.String(load_default="", validate=validate.Length(max=200),
                      metadata={"description": "Part of the lot number or of the item type's name"})


class SharpsContainerQuerySchema(BoundedSchema):
    site_id = fields.Integer(load_default=None)
    state = fields.String(load_default=None, validate=validate.OneOf(("open", "closed")))


class TreatmentQuerySchema(BoundedSchema):
    site_id = fields.Integer(load_default=None)
    client_id = fields.Integer(load_default=None)
    practitioner_id = fields.Integer(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(TREATMENT_STATUSES))
    date_from = _since("from", "Started at or after")
    date_to = _since("to", "Started before")


class LookBackQuerySchema(BoundedSchema):
    """What the treatments were exposed to: at least one of the ids."""

    cycle_id = fields.Integer(load_default=None, metadata={"description": "A load"})
    device_id = fields.Integer(load_default=None, metadata={"description": "A reusable device"})
    lot_id = fields.Integer(load_default=None, metadata={"description": "A single-use lot"})
    steriliser_id = fields.Integer(load_default=None)
    practitioner_id = fields.Integer(load_default=None)
    date_from = _since("from", "Started at or after")
    date_to = _since("to", "Started before")

    @validates_schema
    def _a_subject(self, data, **kwargs):
        if not any(data.get(k) for k in ("cycle_id", "device_id", "lot_id", "steriliser_id", "practitioner_id")):
            raise ValidationError("give cycle_id, device_id, lot_id, steriliser_id or practitioner_id",
                                  field_name="cycle_id")


class WindowQuerySchema(BoundedSchema):
    window_days = fields.Integer(load_default=LOOK_BACK_DAYS, validate=validate.Range(1, 365),
                                 metadata={"description": "Days before and after the treatment"})
