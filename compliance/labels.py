"""Words for stored codes (roles, room kinds, languages), shown through the reader's language."""
from flask_babel import lazy_gettext as _l

ROLE_LABELS = {
    "staff": _l("Staff"),
    "manager": _l("Manager"),
    "admin": _l("Administrator"),
    "auditor": _l("Auditor"),
}
ROOM_KIND_LABELS = {
    "treatment": _l("Treatment room"),
    "decontamination": _l("Decontamination room"),
    "storage": _l("Storage"),
    "reception": _l("Reception"),
}
LANGUAGE_LABELS = {"en": _l("English"), "id": _l("Bahasa Indonesia")}  # one per config.LANGUAGES

# The words for an input's name in a message ("Passes must be a whole number"): services name the field by its key
# (the API's `errors` stay keyed by it); the sentence a person reads shows this label, in their language.
# Each is the label of the form field that sends it, where there is one.
FIELD_LABELS = {
    "curve_id": _l("Cycle record"), "cycles": _l("Cycles"), "file_id": _l("File"),
    "action_id": _l("Corrective action"), "address": _l("Address"), "admin_email": _l("Your email"),
    "admin_password": _l("Password"), "aftercare": _l("Aftercare"), "answer_id": _l("Answer"),
    "attempt_id": _l("Attempt"), "barcode": _l("Barcode"), "calibration_due_on": _l("Next calibration due"),
    "certificate_ref": _l("Certificate or report number"), "choices": _l("Choices"), "client_id": _l("Client"),
    "closed_days": _l("Closed every week on"), "closed_weekdays": _l("Closed every week on"),
    "closing_hour": _l("Closing checks due by (hour)"), "code": _l("Code"), "completed_on": _l("Completed on"),
    "confirm_failure": _l("Confirmation"), "consent": _l("Consent"), "consent_note": _l("Consent note"),
    "container_id": _l("Sharps container"), "control_result": _l("Control from the same lot"),
    "course": _l("Course"), "cycle_id": _l("Cycle"), "cycle_number": _l("Cycle number"),
    "default_max_cycles": _l("Maker's maximum reprocessing cycles"), "description": _l("Description"),
    "device_id": _l("Device"), "device_ids": _l("Devices"), "device_type_id": _l("Kind"), "email": _l("Email"),
    "en": _l("Label (English)"), "ended_at": _l("Ended at"), "given_at": _l("Given at"), "evidence_ref": _l("Evidence"),
    "expires_on": _l("Expiry date"), "file": _l("File"), "follow_up": _l("Follow-up"), "gtin": _l("GTIN"),
    "holding_seconds": _l("Holding time (seconds)"), "holidays": _l("Holidays and other closed days"),
    "hours": _l("Hours"), "id": _l("Label (Indonesian)"), "idempotency_key": _l("Idempotency key"),
    "indicator_class": _l("Indicator class"), "indicator_lot": _l("Indicator lot"),
    "indicator_result": _l("Chemical indicator"), "is_hollow": _l("Hollow (has a lumen or a channel)"),
    "is_validated_for_wrapped": _l("Validated for wrapped loads"), "item_id": _l("Item"),
    "item_type_id": _l("Item type"),
    "items": _l("Items"), "key": _l("Key"), "key_id": _l("API key"), "kind": _l("Kind"), "label": _l("Label"),
    "language": _l("Language"), "locale": _l("Dates and numbers"), "lot": _l("Lot"), "lot_id": _l("Lot"),
    "lot_number": _l("Lot number"), "make": _l("Make"), "maker": _l("Maker"), "manager_email": _l("Manager's email"),
    "max": _l("Max"), "max_cycles": _l("Maker's maximum reprocessing cycles"), "measured_value": _l("Measured value"),
    "method": _l("Method"), "min": _l("Min"), "min_holding_seconds": _l("Minimum holding time"),
    "min_pressure_kpa": _l("Minimum pressure (kPa)"), "model": _l("Model"), "name": _l("Name"),
    "needle_depth_mm": _l("Needle depth (mm)"), "needle_length_mm": _l("Needle length (mm)"),
    "new_pin": _l("New PIN"), "new_pin_again": _l("The new PIN again"), "note": _l("Note"),
    "note_when": _l("Note"), "notes": _l("Notes"), "obligation_id": _l("Obligation"), "onset_at": _l("Started at"),
    "organisation": _l("Organisation"), "pack_codes": _l("Pack labels"), "pack_id": _l("Pack"),
    "packaging": _l("Packaging"), "passed": _l("Inspection under magnification"), "passes": _l("Passes"),
    "passes_confirmed": _l("I confirm this number of passes"), "password": _l("Password"),
    "password_again": _l("The same password again"), "performed_at": _l("Done at"),
    "performed_by_name": _l("Done by (engineer without an account)"), "phone": _l("Phone"), "pin": _l("PIN"),
    "pins": _l("Pins"), "practitioner_id": _l("Practitioner"), "pressure_kpa": _l("Pressure reached (kPa)"),
    "printout_ref": _l("Printout or data-logger reference"), "procedure": _l("Procedure"),
    "product_code": _l("Maker's product code"), "products": _l("Products"), "programme_id": _l("Programme"),
    "quantity": _l("Quantity"), "reason": _l("Reason"), "recall_id": _l("Recall"), "record_id": _l("Training record"),
    "result": _l("Result"), "role": _l("Role"), "room_id": _l("Room"), "rule": _l("Guideline rule"),
    "run_id": _l("Checklist run"), "screening": _l("Screening"), "secret": _l("Manager's password or PIN"),
    "serial": _l("Serial number"), "severity": _l("Severity"), "sharps_container_id": _l("Sharps container"),
    "signature": _l("Signature"), "site": _l("Site"), "site_id": _l("Site"), "site_ids": _l("Sites"),
    "spaulding_class": _l("Spaulding class"), "started_at": _l("Started at"), "status": _l("Status"),
    "steriliser_id": _l("Steriliser"), "supplier_ref": _l("Supplier reference"),
    "temperature_c": _l("Temperature (°C)"),
    "template_id": _l("Checklist template"), "test_id": _l("Steriliser test"), "timezone": _l("Time zone"),
    "to": _l("Recipient"), "token": _l("Link"), "treatment_id": _l("Treatment"), "type": _l("Type (EN 13060)"),
    "type_id": _l("Device type"), "unit": _l("Unit"), "user_id": _l("Person"),
    "validation_due_on": _l("Next validation due"),
    "value": _l("Value"),
    # the screening questions (treatments), asked before a client is treated
    "active_skin_infection": _l("Active skin infection in the area?"),
    "herpes_history": _l("History of cold sores (herpes)?"), "metal_allergy": _l("Allergy to metals (nickel)?"),
    "skin_type": _l("Skin type (Fitzpatrick)"), "age_confirmed": _l("Age checked: an adult?"),
}


def field_label(name: str | None):
    """The field's label in the reader's language (lazy: rendered when the message is read); its key if unknown."""
    return FIELD_LABELS.get(name or "", name)
