"""A flush's changes are told when it happens and appended to the chain when the transaction commits, so that the
organisation's chain head (which serialises its writers) is held only from there to the commit. Nothing is lost
or invented by that: a savepoint rolled back takes its entries with it, a rollback all of them, and a read of the
audit log in the transaction sees what it flushed."""
from datetime import datetime, timezone

from sqlalchemy import event, func, select

from compliance.audit import services as audit
from compliance.audit.models import AuditEntry
from compliance.sites.models import Room

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


def _rooms_logged(db) -> list[str]:
    return [e.after["name"] for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.entity_type == "rooms", AuditEntry.action == "create")
        .order_by(AuditEntry.seq))]


def test_the_head_is_locked_at_the_commit_not_at_the_flush(db, site):
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        db.session.add(Room(site_id=site.id, name="Flushed"))
        db.session.flush()
        flushed = len(sent)
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert not any("audit_" in s for s in sent[:flushed])
    assert any("audit_heads" in s for s in sent[flushed:])
    assert "Flushed" in _rooms_logged(db) and audit.verify() == []


def test_a_savepoint_rolled_back_takes_its_entries_and_one_released_keeps_them(db, site):
    db.session.add(Room(site_id=site.id, name="Kept before"))
    db.session.flush()
    try:
        with db.session.begin_nested():
            db.session.add(Room(site_id=site.id, name="Undone"))
            db.session.flush()
            raise RuntimeError("refused")
    except RuntimeError:
        pass
    with db.session.begin_nested():
        db.session.add(Room(site_id=site.id, name="Released"))
    db.session.commit()
    assert _rooms_logged(db)[-2:] == ["Kept before", "Released"]
    assert "Undone" not in _rooms_logged(db)
    assert audit.verify() == []


def test_a_rollback_appends_nothing(db, site):
    before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    db.session.add(Room(site_id=site.id, name="Never"))
    db.session.flush()
    db.session.rollback()
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == before
    assert audit.verify() == []


def test_a_read_of_the_log_in_the_transaction_sees_what_it_flushed_in_order(db, site):
    db.session.add(Room(site_id=site.id, name="First"))
    db.session.flush()
    assert _rooms_logged(db)[-1] == "First"  # appended before the read
    audit.record_event("export", "report", "rooms", organisation_id=site.organisation_id, site_id=site.id,
                       after={"format": "csv"})
    db.session.add(Room(site_id=site.id, name="Second"))
    db.session.commit()
    actions = [(e.action, e.entity_type) for e in db.session.scalars(
        select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(3))][::-1]
    assert actions == [("create", "rooms"), ("export", "report"), ("create", "rooms")]
    assert audit.verify() == []


def test_many_writers_of_one_organisation_at_once_leave_one_chain_without_a_fork(app, db, site):
    """Four threads, each with its own session (as four gunicorn workers), commit rooms of the same organisation
    at once: every entry ends in the one chain, numbered without a gap, verify holds, and nothing waits to be
    sealed (on PostgreSQL the entries are committed unchained and sealed right after; on SQLite appended in
    the transaction)."""
    import threading

    from sqlalchemy.orm import Session as OrmSession

    from compliance.audit.models import AuditPendingEntry

    site_id, per_thread, threads = site.id, 15, 4
    db.session.commit()
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def write(n: int) -> None:
        try:
            with app.app_context():
                start.wait()
                for i in range(per_thread):
                    with OrmSession(db.engine) as session:
                        session.add(Room(site_id=site_id, name=f"Writer {n}-{i}"))
                        session.commit()
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    audit.seal()  # (nothing should be left; a crash between the two commits would leave some)
    names = _rooms_logged(db)
    assert sorted(n for n in names if n.startswith("Writer ")) == sorted(
        f"Writer {n}-{i}" for n in range(threads) for i in range(per_thread))
    seqs = list(db.session.scalars(select(AuditEntry.seq).where(AuditEntry.organisation_id == site.organisation_id)
                                   .order_by(AuditEntry.seq)))
    assert seqs == list(range(1, len(seqs) + 1))
    assert db.session.scalar(select(func.count()).select_from(AuditPendingEntry)) == 0
    assert audit.verify() == []
