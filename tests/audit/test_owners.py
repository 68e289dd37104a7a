"""Every audit entry knows its site (issue 18, item 1): the owner of a row is declared per table
(compliance/audit/owners.py), the demo's entries of every table that has a site carry it, the log's site filter
lists answers, a reader of one site sees none of another's, and the migration fills the site of entries recorded
before without changing a hash."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from sqlalchemy import func, select

from compliance.audit import owners, services
from compliance.audit.models import AuditEntry
from compliance.checklists.models import Answer, ChecklistRun
from compliance.demo import load_demo
from compliance.extensions import db as _db
from compliance.sites.models import Site, User
from compliance.timeutil import utcnow

MIGRATION = Path(__file__).resolve().parents[2] / "migrations/versions/20261203_5e7e0c1d0020_audit_entries_owner_site.py"


def _audited_tables():
    return [t for t in _db.metadata.sorted_tables if t.name not in services.SKIPPED_TABLES]


def test_every_audited_table_is_declared_with_a_site_or_as_the_organisations(app):
    undeclared, wrong = [], []
    for table in _audited_tables():
        columns = {c.name for c in table.columns}
        if "site_id" in columns or table.name in owners.ORGANISATION_ONLY or table.name == "sites":
            continue  # (a site's own entries are of that site)
        through = owners.SITE_THROUGH.get(table.name)
        if through is None:
            undeclared.append(table.name)
            continue
        fk = [f for f in table.foreign_keys if f.parent.name == through]
        if not fk or "site_id" not in {c.name for c in fk[0].column.table.columns}:
            wrong.append(f"{table.name}.{through}")
    assert undeclared == [] and wrong == []


def _site_of_row(table_name: str, entity_id: str, before, after) -> int | None:
    """The site the row itself says, read from the database (or the entry's own values for a deleted row)."""
    table = _db.metadata.tables[table_name]
    values = {**(before or {}), **(after or {})}
    row = None
    if entity_id.isdigit() and "id" in table.c:
        row = _db.session.execute(select(table).where(table.c.id == int(entity_id))).mappings().first()
    row = dict(row) if row is not None else values
    if "site_id" in table.c:
        return row.get("site_id")
    fk_name = owners.SITE_THROUGH[table_name]
    fk = next(f for f in table.foreign_keys if f.parent.name == fk_name)
    parent = fk.column.table
    if row.get(fk_name) is None:
        return None
    return _db.session.scalar(select(parent.c.site_id).where(parent.c.id == row[fk_name]))


def test_the_demos_entries_carry_the_site_of_their_row_for_every_table_that_has_one(db):
    load_demo(utcnow())
    db.session.commit()
    site_tables = {t.name for t in _audited_tables()
                   if "site_id" in t.c or t.name in owners.SITE_THROUGH}
    checked, wrong = {}, []
    for entry in db.session.scalars(select(AuditEntry).where(AuditEntry.entity_type.in_(site_tables))):
        expected = _site_of_row(entry.entity_type, entry.entity_id, entry.before, entry.after)
        if expected is None:
            continue
        checked[entry.entity_type] = checked.get(entry.entity_type, 0) + 1
        if (entry.site_id, entry.owner_site_id) != (expected, expected):
            wrong.append((entry.entity_type, entry.entity_id, entry.site_id, expected))
    assert wrong == []
    # The tables found through a declared key are among those checked (the demo records each of these).
    assert {"answers", "pack_items", "treatment_packs", "treatment_units", "units", "gate_overrides"} <= set(checked)


def test_the_logs_site_filter_lists_answers_and_another_sites_reader_sees_none(db, client, login_as):
    load_demo(utcnow())
    db.session.commit()
    jakarta = db.session.scalar(select(Site).where(Site.name == "Jakarta Kemang"))
    admin = db.session.scalar(select(User).where(User.email == "admin@demo.clinic"))
    london_manager = db.session.scalar(select(User).where(User.email == "manager.london@demo.clinic"))
    answers = db.session.scalar(select(func.count()).select_from(Answer).join(ChecklistRun)
                                .where(ChecklistRun.site_id == jakarta.id))
    assert answers > 0
    from compliance.auth.actor import actor_for_user

    listed = db.session.scalar(select(func.count()).select_from(
        services.entries_query(actor_for_user(admin), site_id=jakarta.id, entity_type="answers").subquery()))
    assert listed == answers  # each answer was created once (the demo corrects one with a new answer)
    page = login_as(admin).get(f"/audit?site={jakarta.id}&entity=answers")
    assert page.status_code == 200 and "answers" in page.get_data(as_text=True)
    scoped = db.session.scalar(select(func.count()).select_from(
        services.entries_query(actor_for_user(london_manager), entity_type="answers").subquery()))
    london_answers = db.session.scalar(select(func.count()).select_from(Answer).join(ChecklistRun)
                                       .where(ChecklistRun.site_id != jakarta.id))
    assert scoped == london_answers  # none of Jakarta's


def test_the_migration_fills_the_site_of_old_entries_and_every_hash_holds(db, monkeypatch):
    # The demo recorded as before the fix: no declared keys, so an answer's entry found its organisation
    # through the person who gave it, and no site (chained as NULL).
    monkeypatch.setattr(owners, "SITE_THROUGH", {})
    load_demo(utcnow())
    db.session.commit()
    monkeypatch.undo()
    assert set(db.session.scalars(select(AuditEntry.site_id).where(AuditEntry.entity_type == "answers"))) == {None}

    spec = importlib.util.spec_from_file_location("owner_site_migration", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    migration._fill(db.session.connection())
    db.session.commit()
    wrong = []
    for entry in db.session.scalars(select(AuditEntry).where(AuditEntry.entity_type.in_(owners.SITE_THROUGH))):
        expected = _site_of_row(entry.entity_type, entry.entity_id, entry.before, entry.after)
        if entry.owner_site_id != expected:
            wrong.append((entry.entity_type, entry.entity_id, entry.owner_site_id, expected))
    assert wrong == []
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.entity_type == "answers", AuditEntry.owner_site_id.is_(None))) == 0
    assert set(db.session.scalars(select(AuditEntry.site_id).where(AuditEntry.entity_type == "answers"))) == {None}
    assert services.verify() == []  # not one hash changed
