"""An empty database upgraded with the migrations matches the models exactly."""
import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from compliance import create_app
from compliance.extensions import db


@pytest.fixture
def empty_database_url(tmp_path):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    server = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(url).set(database=name).render_as_string(hide_password=False)
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    server.dispose()


def test_migrations_upgrade_an_empty_database_to_the_models(empty_database_url, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "SECRET_KEY": "x",
                      "INSTANCE_PATH": str(tmp_path)}, environ={})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert diff == [], f"models and migrations disagree; run `flask db migrate`: {diff}"


@pytest.mark.slow
def test_upgrading_a_database_with_history_keeps_it_as_occurrences(empty_database_url, tmp_path):
    """A clinic's database at the migration before occurrences (made here by loading the demo and going back
    one step) keeps its history through the upgrade: each done change and finding becomes the occurrence of
    its due time, so the rates on the dashboard are the same before and after."""
    from datetime import datetime, timezone

    from flask_migrate import downgrade
    from sqlalchemy import inspect, select

    from compliance.demo import load_demo
    from compliance.reports import metrics
    from compliance.schedule.models import Occurrence
    from compliance.sites.models import Site
    from compliance.timeutil import utcnow

    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "SECRET_KEY": "x",
                      "INSTANCE_PATH": str(tmp_path)}, environ={})
    decided = ("done_on_time", "done_late", "missed")
    span = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))

    def history():
        rows = db.session.execute(select(Occurrence.obligation_id, Occurrence.due_at, Occurrence.state,
                                         Occurrence.done_at).where(Occurrence.state.in_(decided))).all()
        site_ids = list(db.session.scalars(select(Site.id)))
        return {(o, due): (state, done) for o, due, state, done in rows}, metrics.obligation_rates(site_ids, *span)

    with app.app_context():
        upgrade()
        load_demo(utcnow())
        db.session.commit()
        before, rates_before = history()
        db.session.remove()
        downgrade(revision="9a7e0c1d2b11")
        assert "occurrences" not in inspect(db.engine).get_table_names()
        assert "locale" not in {c["name"] for c in inspect(db.engine).get_columns("sites")}
        upgrade()
        after, rates_after = history()
        # The sites that existed get their locale from their language and zone (10ca1e5e0014).
        locales = dict(db.session.execute(select(Site.name, Site.locale)).all())
        from compliance.audit.services import verify

        chain_breaks = verify()  # re-sealed down (SHA-256) and up again (HMAC, a0d1be5e0016): the chain holds
        db.session.remove()
        db.engine.dispose()
    assert len(before) > 50 and any(state == "missed" for state, _done in before.values())
    assert after == before
    assert rates_after == rates_before
    assert locales == {"London Shoreditch": "en-GB", "Jakarta Kemang": "id-ID"}
    assert chain_breaks == []


def test_the_hmac_migration_reseals_plain_chains_once_and_records_it(empty_database_url, tmp_path):
    """a0d1be5e0016: chains sealed with plain SHA-256 (the code before it) are checked, re-sealed with HMAC under
    AUDIT_KEY, and end with an entry naming the old head and whether the old chain held; downgrading seals them
    with SHA-256 again."""
    import hashlib
    from datetime import datetime, timedelta, timezone

    from flask_migrate import downgrade
    from sqlalchemy import insert, select

    from compliance.audit import services as audit
    from compliance.audit.models import AuditEntry, AuditHead
    from compliance.sites.models import Organisation

    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "SECRET_KEY": "x",
                      "INSTANCE_PATH": str(tmp_path)}, environ={})
    at = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)

    def sha256(fields):
        return hashlib.sha256(audit.canonical(fields)).hexdigest()

    def plain_chain_holds(org):
        prev = audit.GENESIS
        # The columns of the entries as they were then (owner_site_id came later).
        old_columns = [c for c in AuditEntry.__table__.c if c.name != "owner_site_id"]
        rows = db.session.execute(select(*old_columns).where(AuditEntry.organisation_id == org)
                                  .order_by(AuditEntry.seq)).mappings().all()
        for row in rows:
            fields = audit._hashed_fields(org, row["seq"], row["at"], None, None, None, row["actor_label"],
                                          row["action"], row["entity_type"], row["entity_id"], row["before"],
                                          row["after"], prev)
            if row["prev_hash"] != prev or sha256(fields) != row["hash"]:
                return False
            prev = row["hash"]
        return db.session.get(AuditHead, org).hash == prev

    with app.app_context():
        upgrade(revision="ac0c1a7e0015")
        heads = {}
        for name, altered_seq in (("Kept clinic", None), ("Tampered clinic", 2)):
            org = db.session.execute(insert(Organisation.__table__).values(name=name)).inserted_primary_key[0]
            prev = audit.GENESIS
            for seq in range(1, 6):
                after = {"name": f"Room {seq}"}
                fields = audit._hashed_fields(org, seq, at + timedelta(minutes=seq), None, None, None, "someone",
                                              "create", "rooms", str(seq), None, after, prev)
                digest = sha256(fields)
                if seq == altered_seq:
                    after = {"name": "Room altered before the upgrade"}
                db.session.execute(insert(AuditEntry.__table__).values(
                    organisation_id=org, seq=seq, at=at + timedelta(minutes=seq), actor_label="someone",
                    action="create", entity_type="rooms", entity_id=str(seq), after=after, prev_hash=prev,
                    hash=digest))
                prev = digest
            db.session.execute(insert(AuditHead.__table__).values(organisation_id=org, seq=5, hash=prev))
            heads[name] = (org, prev)
        db.session.commit()

        upgrade()
        assert audit.verify() == []  # re-sealed: every entry an HMAC under the key, the head on the new last entry
        reseals = {e.organisation_id: e for e in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "reseal"))}
        kept, tampered = heads["Kept clinic"][0], heads["Tampered clinic"][0]
        assert reseals[kept].seq == 6 and db.session.get(AuditHead, kept).seq == 6
        assert reseals[kept].before == {"algorithm": "SHA-256", "head_seq": 5, "head": heads["Kept clinic"][1],
                                        "chain": "intact"}
        assert reseals[kept].after == {"algorithm": "HMAC-SHA-256", "key_id": audit.key_id(), "entries": 5}
        assert reseals[tampered].before["chain"] == "broken: entry 2 differs from its hash"
        assert not plain_chain_holds(kept)
        db.session.remove()

        downgrade(revision="ac0c1a7e0015")
        assert plain_chain_holds(kept) and plain_chain_holds(tampered)
        assert [before["algorithm"] for before in db.session.scalars(
            select(AuditEntry.before).where(AuditEntry.action == "reseal", AuditEntry.organisation_id == kept)
            .order_by(AuditEntry.seq))] == ["SHA-256", "HMAC-SHA-256"]
        db.session.remove()
        upgrade()
        assert audit.verify() == []
        assert db.session.get(AuditHead, kept).seq == 8
        db.session.remove()
        db.engine.dispose()
