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
        db.session.remove()
        db.engine.dispose()
    assert len(before) > 50 and any(state == "missed" for state, _done in before.values())
    assert after == before
    assert rates_after == rates_before
    assert locales == {"London Shoreditch": "en-GB", "Jakarta Kemang": "id-ID"}
