"""The audit log's stored words (actions, tables, columns, system actors) in the reader's language. The log itself
keeps the codes (they are hashed into the chain); only the page shows these labels, each with its code nearby."""
import re

from flask_babel import lazy_gettext as _l

from ..labels import FIELD_LABELS, ROLE_LABELS

ACTION_LABELS = {"create": _l("created"), "update": _l("changed"), "delete": _l("deleted"),
                 "export": _l("exported"), "resend": _l("sent again")}
# Who acted when no person or key did (stored as these words).
ACTOR_LABELS = {"anonymous": _l("nobody signed in"), "system": _l("the system"), "demo data": _l("demo data"),
                "first run (set-up page)": _l("first run (set-up page)"),
                "first run (command line)": _l("first run (command line)"),
                "tablet-link (command line)": _l("tablet link (command line)"), "scheduler": _l("the scheduler"),
                "scheduler (command line)": _l("the scheduler (command line)"),
                "export (command line)": _l("export (command line)")}
# A person is stored as "Name (role)", an API key as "API key name".
_PERSON = re.compile(r"^(?P<name>.*) \((?P<role>staff|manager|admin|auditor)\)$")
TABLE_LABELS = {
    "steriliser_tests": _l("Steriliser test"), "cycles": _l("Cycle"), "cycle_corrections": _l("Cycle correction"),
    "packs": _l("Pack"), "pack_items": _l("Pack item"), "recalls": _l("Recall"), "recall_loads": _l("Recalled load"),
    "checklist_templates": _l("Checklist template"), "template_versions": _l("Checklist template version"),
    "template_items": _l("Checklist item"), "checklist_runs": _l("Checklist run"), "answers": _l("Answer"),
    "corrective_actions": _l("Corrective action"), "site_rule_overrides": _l("Site number of a rule"),
    "auth_events": _l("Sign-in event"), "tablet_links": _l("Tablet set-up link"), "account_links": _l("Account link"),
    "tablet_devices": _l("Tablet"), "api_keys": _l("API key"), "audit_entries": _l("Audit entry"),
    "audit_heads": _l("Audit chain head"), "audit_pending_entries": _l("Audit entries waiting to be sealed"), "organisations": _l("Organisation"), "organisation": _l("Organisation"),
    "sites": _l("Site"), "user_sites": _l("A person's site"), "site_holidays": _l("Closed day"), "rooms": _l("Room"),
    "users": _l("Person"),
    "training_records": _l("Training record"), "clients": _l("Client"), "sharps_containers": _l("Sharps container"),
    "treatments": _l("Treatment"), "treatment_packs": _l("Pack used in a treatment"),
    "treatment_units": _l("Single-use unit used in a treatment"), "gate_attempts": _l("Point-of-use check"),
    "gate_overrides": _l("Override at the point of use"), "adverse_events": _l("Adverse event"),
    "look_backs": _l("Look-back"), "obligations": _l("Obligation"), "obligation_changes": _l("Obligation change"),
    "occurrences": _l("Occurrence"), "findings": _l("Finding"), "outbox_messages": _l("Email"),
    "device_types": _l("Device type"), "devices": _l("Device"), "device_events": _l("Device event"),
    "sterilisers": _l("Steriliser"), "programmes": _l("Programme"),
    "steriliser_status_changes": _l("Steriliser status change"), "item_types": _l("Item type"), "lots": _l("Lot"),
    "units": _l("Single-use unit"), "report": _l("Report"),
    "curve_files": _l("Cycle record file"), "cycle_curves": _l("Cycle record from the steriliser"),
}
# Columns that are not a form's field: the rest are named as their field (FIELD_LABELS), else by their code.
COLUMN_LABELS = {
    "filename": _l("File name"), "media_type": _l("File type"), "size_bytes": _l("Size (bytes)"),
    "sha256": _l("SHA-256"), "content": _l("File content (logged as its SHA-256)"), "uploaded_by_id": _l("Uploaded by"),
    "programme_text": _l("Programme as the machine names it"), "source_format": _l("Source format"),
    "curve_file_id": _l("Cycle record file"), "sample_count": _l("Samples"),
    "samples": _l("Samples (logged as their SHA-256)"), "samples_sha256": _l("SHA-256 of the curve"),
    "machine_passed": _l("The machine's own verdict"), "machine_log": _l("The machine's log"),
    "is_judged": _l("Judged"), "refusal": _l("Why not judged"), "holding_start_s": _l("Holding time starts (s)"),
    "holding_end_s": _l("Holding time ends (s)"), "equilibration_seconds": _l("Equilibration time"),
    "max_temperature_c": _l("Highest temperature"), "steam_deviation_k": _l("Measured minus saturation temperature"),
    "min_holding_pressure_kpa": _l("Lowest pressure in the holding time"), "imported_by_id": _l("Imported by"),
    "id": _l("Record number"), "created_at": _l("Created at"), "updated_at": _l("Changed at"), "at": _l("At"),
    "by_id": _l("By"), "created_by_id": _l("Created by"), "organisation_id": _l("Organisation"), "owner_site_id": _l("Site it belongs to"),
    "due_at": _l("Due at"), "next_due_at": _l("Next due at"), "from_status": _l("Previous status"),
    "to_status": _l("New status"), "until": _l("Until"), "state": _l("State"), "format": _l("Format"),
    "rows": _l("Rows"), "tables": _l("Tables"),
    "abandoned_by_id": _l("Abandoned by"), "abandoned_reason": _l("Why abandoned"), "action": _l("Action"),
    "action_at": _l("Action at"), "actor_api_key_id": _l("By API key"), "actor_label": _l("Who"),
    "actor_user_id": _l("By person"), "added_at": _l("Added at"), "added_by_id": _l("Added by"),
    "adverse_event_id": _l("Adverse event"), "after": _l("After"), "alert_after": _l("Alert after"),
    "amend_reason": _l("Reason for the correction"), "amends_id": _l("Corrects"), "answered_at": _l("Answered at"),
    "answered_by_id": _l("Answered by"), "api_key_id": _l("API key"), "assigned_to_id": _l("Assigned to"),
    "attempts": _l("Attempts"), "before": _l("Before"), "clients_contacted_at": _l("Clients contacted at"),
    "clients_contacted_by_id": _l("Clients contacted by"),
    "clients_contacted_note": _l("How the clients were contacted"), "close_note": _l("Closing note"),
    "closed_at": _l("Closed at"), "closed_by_id": _l("Closed by"), "completed_at": _l("Completed at"),
    "compromised_at": _l("Compromised at"), "compromised_by_id": _l("Compromised reported by"),
    "compromised_note": _l("Compromise note"), "compromised_reason": _l("Why compromised"),
    "consent_at": _l("Consent at"), "corrected_at": _l("Corrected at"), "corrected_by_id": _l("Corrected by"),
    "day": _l("Day"), "decided_at": _l("Decided at"), "decided_by_id": _l("Decided by"),
    "decision_note": _l("Decision note"), "dedupe_key": _l("Deduplication key"),
    "disposal_ref": _l("Disposal reference"), "done_at": _l("Done at"), "done_by_id": _l("Done by"),
    "due_on": _l("Due on"), "entity_id": _l("Record number"), "entity_type": _l("Record type"),
    "escalated": _l("Escalated"), "expires_at": _l("Expires at"), "file_path": _l("File"),
    "gap_until": _l("Gap until"), "guideline_version": _l("Guideline version"), "hash": _l("Hash"),
    "html_body": _l("HTML text"), "idempotency_fingerprint": _l("What the request meant (fingerprint)"), "indicator_passed": _l("Indicator passed"), "is_active": _l("Active"),
    "is_frozen": _l("Frozen"), "is_generated_label": _l("Label printed by us"), "is_in_service": _l("In service"),
    "is_reportable": _l("Reportable"), "is_required": _l("Required"), "is_verdict_pass": _l("Verdict: pass"),
    "key_hash": _l("Key hash"), "label_code": _l("Label code"), "last_done_at": _l("Last done at"),
    "last_error": _l("Last error"), "last_used_at": _l("Last used at"), "link_id": _l("Link"),
    "loaded_by_id": _l("Loaded by"), "local_day": _l("Local day"), "manager_id": _l("Manager"),
    "max_value": _l("Max"), "min_value": _l("Min"), "name_key": _l("Name (for comparing)"),
    "next_action": _l("Next action"), "next_attempt_at": _l("Next attempt at"), "number": _l("Number"),
    "opened_at": _l("Opened at"), "opened_by_id": _l("Opened by"),
    "out_of_service_reason": _l("Reason for taking it out of service"), "overdue_since": _l("Overdue since"),
    "override_id": _l("Override"), "overrides": _l("Overrides"), "packed_at": _l("Packed at"),
    "packed_by_id": _l("Packed by"), "password_hash": _l("Password hash"), "performed_by_id": _l("Done by"),
    "pin_failed_count": _l("Wrong PINs in a row"), "pin_hash": _l("PIN hash"),
    "pin_locked_until": _l("PIN locked until"), "position": _l("Position"), "prefix": _l("Prefix"),
    "prev_hash": _l("Previous hash"), "previous_status": _l("Previous status"), "purpose": _l("Purpose"),
    "reasons": _l("Reasons"), "received_at": _l("Received at"), "received_by_id": _l("Received by"),
    "recipient": _l("Recipient"), "record": _l("Record"), "recorded_at": _l("Recorded at"),
    "recorded_by_id": _l("Recorded by"), "reminded": _l("Reminded"), "repeats_sent": _l("Repeats sent"),
    "replaced_at": _l("Replaced at"), "replaced_by_id": _l("Replaced by"),
    "reprocessing_count": _l("Times reprocessed"), "resolved_at": _l("Resolved at"), "responsible": _l("Responsible"),
    "responsible_user_id": _l("Responsible person"), "result_at": _l("Result at"), "result_by_id": _l("Result by"),
    "revoked_at": _l("Revoked at"), "revoked_by_id": _l("Revoked by"), "rule_id": _l("Guideline rule"),
    "scanned": _l("Scanned"), "schedule": _l("Schedule"), "screening_at": _l("Screening at"),
    "sent_at": _l("Sent at"), "seq": _l("Entry number"), "session_version": _l("Session version"),
    "set_at": _l("Set at"), "set_by_id": _l("Set by"), "since": _l("Since"), "snoozed_until": _l("Snoozed until"),
    "started_by_id": _l("Started by"), "status_changed_at": _l("Status changed at"),
    "status_reason": _l("Reason for the status"), "subject": _l("Subject"), "subject_id": _l("Subject number"),
    "subject_type": _l("Subject type"), "supervised_by_id": _l("Supervised by"), "text_body": _l("Text"),
    "title": _l("Title"), "token_hash": _l("Token hash"), "trigger_test_id": _l("Test that triggered it"),
    "disagreements": _l("Typed figures that disagree"),
    "limits": _l("Numbers it was judged by"),
    "unit_id": _l("Single-use unit"), "used_at": _l("Used at"), "version_id": _l("Checklist template version"),
    "void_reason": _l("Reason for withdrawing"), "what": _l("What"), "window_days": _l("Window (days)"),
}
# A correction stores the figures before and after it ("temperature_c_before").
_BEFORE, _AFTER = _l("%(field)s (before)"), _l("%(field)s (after)")


def action_label(code: str) -> str:
    return str(ACTION_LABELS.get(code, code))


def actor_label(stored: str) -> str:
    if stored in ACTOR_LABELS:
        return str(ACTOR_LABELS[stored])
    person = _PERSON.match(stored or "")
    if person:
        return f"{person['name']} ({ROLE_LABELS[person['role']]})"
    if (stored or "").startswith("API key "):
        return str(_l("API key %(name)s", name=stored[len("API key "):]))
    return stored


def table_label(code: str) -> str:
    return str(TABLE_LABELS.get(code, code))


def column_label(code: str) -> str:
    label = COLUMN_LABELS.get(code) or FIELD_LABELS.get(code)
    if label is None:
        for suffix, words in (("_before", _BEFORE), ("_after", _AFTER)):
            base = code.removesuffix(suffix)
            if base != code and (COLUMN_LABELS.get(base) or FIELD_LABELS.get(base)) is not None:
                return str(words) % {"field": column_label(base)}
    return str(label) if label is not None else code
