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
    "audit_heads": _l("Audit chain head"), "organisations": _l("Organisation"), "organisation": _l("Organisation"),
    "sites": _l("Site"), "site_holidays": _l("Closed day"), "rooms": _l("Room"), "users": _l("Person"),
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
}
# Columns that are not a form's field: the rest are named as their field (FIELD_LABELS), else by their code.
COLUMN_LABELS = {
    "id": _l("Record number"), "created_at": _l("Created at"), "updated_at": _l("Changed at"), "at": _l("At"),
    "by_id": _l("By"), "created_by_id": _l("Created by"), "organisation_id": _l("Organisation"),
    "due_at": _l("Due at"), "next_due_at": _l("Next due at"), "from_status": _l("Previous status"),
    "to_status": _l("New status"), "until": _l("Until"), "state": _l("State"), "format": _l("Format"),
    "rows": _l("Rows"), "tables": _l("Tables"),
}


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
    return str(label) if label is not None else code
