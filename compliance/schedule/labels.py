"""Words for obligation kinds, states and actions, in the reader's language (the keys are the pack's)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

KIND_LABELS = {
    "air-removal-test": _l("Air-removal test (Bowie-Dick / Helix)"),
    "automatic-control-test": _l("Automatic control test"),
    "spore-test": _l("Spore test"),
    "leak-test": _l("Air-leakage test"),
    "validation": _l("Steriliser validation"),
    "opening-checklist": _l("Opening checklist"),
    "closing-checklist": _l("Closing checklist"),
    "sharps-container-change": _l("Sharps container change"),
    "training-renewal": _l("Training renewal"),
    "pack-expiry": _l("Sterile pack expiry"),
    "corrective-action": _l("Corrective action"),
}

STATE_LABELS = {
    "ok": _l("in order"),
    "due": _l("due"),
    "overdue": _l("overdue"),
    "paused": _l("paused"),
    "snoozed": _l("snoozed"),
    "ended": _l("ended"),
}

ACTION_LABELS = {
    "reminder": _l("reminder"),
    "overdue": _l("overdue alert"),
    "escalation": _l("escalation to managers"),
    "repeat": _l("repeat"),
    "digest": _l("daily digest"),
    "invitation": _l("invitation"),
    "password_reset": _l("password reset"),
    "done": _l("done"),
}


def kind_label(kind: str) -> str:
    """A kind a newer pack added without a label here still reads as its key."""
    return str(KIND_LABELS.get(kind, kind))


def state_label(state: str) -> str:
    return str(STATE_LABELS.get(state, state))
