"""The audit trail: every change through the product is appended and chained; verify catches tampering."""
import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select, update

from compliance.audit import services as audit
from compliance.audit.models import AuditEntry, AuditHead
from compliance.auth.actor import actor_for_user
from compliance.sites import services as site_services

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


def _entries(db, **where):
    stmt = select(AuditEntry).order_by(AuditEntry.organisation_id, AuditEntry.seq)
    for key, value in where.items():
        stmt = stmt.where(getattr(AuditEntry, key) == value)
    return list(db.session.scalars(stmt))


@pytest.fixture
def history(db, site, manager, nurse):
    """A few dozen real entries: rooms, training records (one corrected), an export."""
    actor = actor_for_user(manager)
    for i in range(6):
        site_services.create_room(actor, {"site_id": site.id, "name": f"Room {i + 10}", "kind": "treatment"}, NOW)
        db.session.commit()
    for course in ("infection_control", "microneedling", "first_aid"):
        site_services.record_training(actor, {"user_id": nurse.id, "course": course, "completed_on": "2026-01-10",
                                              "expires_on": "2027-01-10"}, NOW)
        db.session.commit()
    audit.record_event("export", "report", "audit", organisation_id=site.organisation_id, site_id=site.id,
                       after={"format": "pdf", "sha256": "ab" * 32}, actor=actor)
    db.session.commit()
    return site.organisation_id


def test_changes_are_appended_with_actor_entity_and_values(db, history, manager, nurse):
    rooms = _entries(db, entity_type="rooms", action="create")
    assert len(rooms) >= 6
    assert rooms[-1].after["name"] == "Room 15" and rooms[-1].before is None
    training = _entries(db, entity_type="training_records")
    assert training and all(e.site_id is None or e.organisation_id == history for e in training)
    export = _entries(db, action="export")[0]
    assert export.actor_user_id == manager.id and "Mira Manager" in export.actor_label
    assert export.after == {"format": "pdf", "sha256": "ab" * 32}


def test_an_update_keeps_before_and_after_and_secrets_stay_out(db, site, manager, nurse):
    actor = actor_for_user(manager)
    site_services.reset_pin(actor, nurse.id, "9753")
    nurse.name = "Nur Perawat"
    db.session.commit()
    change = _entries(db, entity_type="users", action="update")[-1]
    assert change.before["name"] == "Nur Nurse" and change.after["name"] == "Nur Perawat"
    for e in _entries(db, entity_type="users"):
        for values in (e.before or {}, e.after or {}):
            assert not any(str(v).startswith(("scrypt:", "pbkdf2:")) for v in values.values())


def test_the_chain_verifies_and_the_head_matches(db, history):
    assert audit.verify() == []
    entries = _entries(db, organisation_id=history)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:]))
    head = db.session.get(AuditHead, history)
    assert (head.seq, head.hash) == (entries[-1].seq, entries[-1].hash)


def test_entries_cannot_be_changed_or_deleted_through_the_orm(db, history):
    entry = _entries(db)[0]
    entry.action = "nothing happened"
    with pytest.raises(audit.AuditTampering):
        db.session.flush()
    db.session.rollback()
    db.session.delete(_entries(db)[0])
    with pytest.raises(audit.AuditTampering):
        db.session.flush()
    db.session.rollback()


def _tamper(db, rng: random.Random, org: int) -> tuple[str, int]:
    """Alter the log directly in the database in one random way; returns (what, first seq it touched)."""
    table = AuditEntry.__table__
    rows = list(db.session.execute(select(table).where(table.c.organisation_id == org).order_by(table.c.seq))
                .mappings())
    n = len(rows)
    how = rng.choice(["value", "after", "timestamp", "delete", "delete_last", "swap", "actor", "entity",
                      "prev_hash", "hash", "site"])
    row = rows[rng.randrange(n)]
    conn = db.session.connection()
    by_id = table.c.id == row["id"]
    if how == "value":
        conn.execute(update(table).where(by_id).values(action=row["action"] + "x"))
    elif how == "after":
        after = dict(row["after"] or {"x": 1})
        key = rng.choice(sorted(after))
        after[key] = f"{after[key]}-altered"
        conn.execute(update(table).where(by_id).values(after=after))
    elif how == "timestamp":
        conn.execute(update(table).where(by_id).values(at=row["at"] + timedelta(seconds=rng.choice([-60, 1, 3600]))))
    elif how == "delete":
        conn.execute(delete(table).where(by_id))
    elif how == "delete_last":
        row = rows[-1]
        conn.execute(delete(table).where(table.c.id == row["id"]))
    elif how == "swap":
        i, j = sorted(rng.sample(range(n), 2))
        a, b = rows[i], rows[j]
        conn.execute(update(table).where(table.c.id == a["id"]).values(seq=-1))
        conn.execute(update(table).where(table.c.id == b["id"]).values(seq=a["seq"]))
        conn.execute(update(table).where(table.c.id == a["id"]).values(seq=b["seq"]))
        row = a
    elif how == "actor":
        conn.execute(update(table).where(by_id).values(actor_label="Someone Else (manager)"))
    elif how == "entity":
        conn.execute(update(table).where(by_id).values(entity_id=str(row["entity_id"]) + "9"))
    elif how == "prev_hash":
        conn.execute(update(table).where(by_id).values(prev_hash="f" * 64))
    elif how == "hash":
        conn.execute(update(table).where(by_id).values(hash="e" * 64))
    elif how == "site":
        conn.execute(update(table).where(by_id).values(site_id=None if row["site_id"] else row["site_id"]))
        if row["site_id"] is None:  # nothing would change: alter the value instead
            conn.execute(update(table).where(by_id).values(entity_type=row["entity_type"] + "s"))
    return how, row["seq"]


def test_verify_catches_a_hundred_random_alterations(db, history):
    rng = random.Random(20261125)
    seen = set()
    for _ in range(100):
        savepoint = db.session.begin_nested()
        how, seq = _tamper(db, rng, history)
        breaks = audit.verify()
        savepoint.rollback()
        assert breaks, f"{how} at entry {seq} was not caught"
        [found] = breaks
        # The first broken entry is the altered one (for a hash altered, the one after it breaks too,
        # but the altered one is reported first).
        assert found.organisation_id == history
        if how in ("value", "after", "timestamp", "actor", "entity", "prev_hash", "hash"):
            assert found.seq == seq, (how, seq, found)
        seen.add(how)
    assert audit.verify() == []  # every alteration was rolled back
    assert len(seen) >= 10


def test_verify_command_names_the_first_broken_entry(db, runner, history):
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0 and "intact" in ok.output
    db.session.execute(update(AuditEntry).where(AuditEntry.organisation_id == history, AuditEntry.seq == 3)
                       .values(actor_label="nobody"))
    db.session.commit()
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert "entry 3" in broken.output and "content was changed" in broken.output


def test_scheduler_changes_are_chained_as_the_scheduler(db, site, manager, nurse):
    from compliance.schedule import services as schedule
    token = audit.system_actor.set("scheduler")
    try:
        schedule.sync_site(site, NOW)
        db.session.commit()
        schedule.scan(NOW + timedelta(days=1))
        db.session.commit()
    finally:
        audit.system_actor.reset(token)
    findings = _entries(db, entity_type="findings")
    assert findings and all(e.actor_label == "scheduler" and e.site_id == site.id for e in findings)
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.entity_type.in_(("obligations", "outbox_messages")))) == 0
    assert audit.verify() == []
