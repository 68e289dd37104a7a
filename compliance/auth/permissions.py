"""Who may do what: one table of actions to roles, and the sites each person may see."""
from __future__ import annotations

from typing import Iterable

READ_ROLES = frozenset({"manager", "admin", "auditor"})
# A site's API key ("machine") is a steriliser's data logger: it reads only what it needs of its own site
# (sterilisers with their programmes, steriliser tests, cycles and packs: "sterilisation.read") and posts tests
# and cycles. Never people, training, treatments, checklists, obligations, devices, recalls or the site's numbers.
WRITE_ROLES = frozenset({"manager", "admin"})
STAFF_READ = READ_ROLES | {"staff"}

# action -> roles allowed. Site scoping is applied on top of this, never instead of it.
PERMISSIONS: dict[str, frozenset[str]] = {
    "sites.read": READ_ROLES,
    "sites.write": frozenset({"admin"}),
    "rooms.read": READ_ROLES,
    "rooms.write": WRITE_ROLES,
    "users.read": READ_ROLES,
    "users.write": WRITE_ROLES,
    "training.read": READ_ROLES,
    "training.write": WRITE_ROLES,
    "apikeys.manage": frozenset({"admin"}),
    "organisation.export": frozenset({"admin"}),
    "tablets.manage": WRITE_ROLES,
    "tablet.use": frozenset({"staff", "manager", "admin"}),
    # Devices and sterilisation. Staff work these on the decontamination-room tablet; a site's
    # API key ("machine", an autoclave's data logger) may post tests and cycles.
    "devices.read": STAFF_READ,
    "devices.write": WRITE_ROLES,
    "sterilisation.read": STAFF_READ | {"machine"},
    "reprocess.record": frozenset({"staff", "manager", "admin"}),
    "tests.record": frozenset({"staff", "manager", "admin", "machine"}),
    "cycles.record": frozenset({"staff", "manager", "admin", "machine"}),
    "cycles.decide": frozenset({"staff", "manager", "admin"}),
    "cycles.correct": WRITE_ROLES,  # a mistyped figure of a load, corrected with a reason
    "recalls.read": STAFF_READ,
    "recalls.manage": WRITE_ROLES,
    # A site's own numbers for the guideline pack: read by managers, admins and auditors.
    "guidelines.read": READ_ROLES,
    "guidelines.manage": WRITE_ROLES,
    # Single-use stock and treatments. Client names and phones are for managers (and admins) only.
    "stock.receive": frozenset({"staff", "manager", "admin"}),
    "treatments.read": STAFF_READ,
    "treatments.record": frozenset({"staff", "manager", "admin"}),
    "gate.override": WRITE_ROLES,
    "clients.contact": WRITE_ROLES,
    "adverse.record": frozenset({"staff", "manager", "admin"}),
    "trace.read": READ_ROLES,
    # Checklists: staff answer on the tablet; managers edit templates and close corrective actions.
    "checklists.read": STAFF_READ,
    "checklists.answer": frozenset({"staff", "manager", "admin"}),
    "checklists.manage": WRITE_ROLES,
    # Obligations (what is due when) and the emails they caused. Staff see what is due on the tablet.
    "obligations.read": STAFF_READ,
    "obligations.manage": WRITE_ROLES,
    "outbox.read": READ_ROLES,
    "outbox.resend": frozenset({"admin"}),  # queue failed emails again
    "sites.closing_days": WRITE_ROLES,
    # Reports and the audit trail: read by managers, admins and auditors (auditors see no client names).
    "reports.read": READ_ROLES,
    "audit.read": READ_ROLES,
}

# Roles a manager may give; an admin may give any.
ASSIGNABLE_ROLES = {
    "manager": frozenset({"staff", "manager"}),
    "admin": frozenset({"staff", "manager", "admin", "auditor"}),
}


def role_can(role: str | None, action: str) -> bool:
    """True when the role is allowed the action (unknown actions are refused)."""
    return role is not None and role in PERMISSIONS.get(action, frozenset())


def role_writes(role: str | None) -> bool:
    """False for a read-only role (the auditor): it holds no action that changes anything."""
    return any(role in roles for action, roles in PERMISSIONS.items() if not action.endswith(".read"))


def scoped_site_ids(role: str, own_site_ids: Iterable[int], organisation_site_ids: Iterable[int]) -> set[int]:
    """An admin sees every site of the organisation; everyone else only the sites they belong to."""
    if role == "admin":
        return set(organisation_site_ids)
    return set(own_site_ids) & set(organisation_site_ids)
