"""API fixtures: a second site of the same organisation, people and records on both, site API keys, and a
snapshot of the domain tables to show that a refused request stored nothing."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from compliance.auth.actor import actor_for_user
from compliance.auth.services import create_api_key, revoke_api_key
from compliance.timeutil import utcnow

# api_keys is left out: reading with a key updates its last_used_at, which is not a change to the data.
DOMAIN_TABLES = ("organisations", "sites", "rooms", "users", "user_sites", "training_records",
                 "device_types", "devices", "device_events", "sterilisers", "programmes", "steriliser_status_changes",
                 "steriliser_tests", "cycles", "packs", "pack_items", "recalls", "recall_loads",
                 "item_types", "lots", "units", "clients", "sharps_containers", "treatments", "treatment_packs",
                 "treatment_units", "gate_attempts", "gate_overrides", "adverse_events", "look_backs",
                 "checklist_templates", "template_versions", "template_items", "checklist_runs", "answers",
                 "corrective_actions", "obligations", "obligation_changes", "findings", "outbox_messages")


@pytest.fixture
def snapshot(db):
    """Every row of the domain tables, as committed (compare two snapshots to show nothing changed)."""

    def take() -> dict[str, list[tuple]]:
        db.session.commit()
        tables = db.metadata.tables
        return {name: [tuple(row) for row in db.session.execute(
            select(tables[name]).order_by(*tables[name].primary_key.columns))] for name in DOMAIN_TABLES}

    return take


@pytest.fixture
def make_key(db):
    """A site API key, created by an admin of the site's organisation (as the admin screen would)."""

    def make(site, by, revoked: bool = False) -> str:
        row, key = create_api_key(actor_for_user(by), site.id, "logger", utcnow())
        if revoked:
            revoke_api_key(actor_for_user(by), row.id, utcnow())
        db.session.commit()
        return key

    return make


@pytest.fixture
def world(db, site, make_site, make_user, make_training, manager, admin, auditor, nurse, outsider, other_site):
    """Site A (the `site` fixture: manager, admin, auditor, nurse), site B of the same organisation, and a
    site of another organisation, each with a room, a person and a training record."""
    site_b = make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta", language="id")
    b_nurse = make_user("staff", [site_b], name="Bayu Bandung", email="bayu@example.test")
    x_nurse = make_user("staff", [other_site], name="Xena Elsewhere", email="xena@example.test")
    w = SimpleNamespace(
        site=site, site_b=site_b, other_site=other_site,
        manager=manager, admin=admin, auditor=auditor, nurse=nurse, outsider=outsider,
        b_nurse=b_nurse, x_nurse=x_nurse,
        room=site.rooms[0], b_room=site_b.rooms[0], x_room=other_site.rooms[0],
        record=make_training(nurse), b_record=make_training(b_nurse), x_record=make_training(x_nurse),
    )
    # Plain ids, so that the tables of cases need no database access.
    for name in ("site", "site_b", "other_site", "manager", "admin", "auditor", "nurse", "outsider",
                 "b_nurse", "x_nurse", "room", "b_room", "x_room", "record", "b_record", "x_record"):
        setattr(w, f"{name}_id", getattr(w, name).id)
    return w
