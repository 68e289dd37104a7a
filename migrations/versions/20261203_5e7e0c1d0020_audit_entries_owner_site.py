"""audit entries: the site each belongs to (owner_site_id), filled for the entries recorded before every
audited row knew its site (answers, overrides, pack items … were recorded with none)

Revision ID: 5e7e0c1d0020
Revises: 0ff11e5e0019
Create Date: 2026-12-03 14:00:00.000000

The chained site_id is left as it was recorded: owner_site_id is not part of an entry's hashed content, so
every hash and every anchor holds.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e7e0c1d0020'
down_revision = '0ff11e5e0019'
branch_labels = None
depends_on = None

PAGE = 2000
# A copy of compliance.audit.owners.SITE_THROUGH as it was when this ran (table: (foreign key, parent table)):
# a migration must not change with later code.
THROUGH = {
    'answers': ('run_id', 'checklist_runs'), 'device_events': ('device_id', 'devices'),
    'gate_overrides': ('attempt_id', 'gate_attempts'), 'obligation_changes': ('obligation_id', 'obligations'),
    'pack_items': ('pack_id', 'packs'), 'programmes': ('steriliser_id', 'sterilisers'),
    'recall_loads': ('recall_id', 'recalls'), 'steriliser_status_changes': ('steriliser_id', 'sterilisers'),
    'treatment_packs': ('treatment_id', 'treatments'), 'treatment_units': ('treatment_id', 'treatments'),
    'units': ('lot_id', 'lots'),
}

entries = sa.table('audit_entries', sa.column('id', sa.Integer), sa.column('site_id', sa.Integer),
                   sa.column('owner_site_id', sa.Integer), sa.column('entity_type', sa.String),
                   sa.column('entity_id', sa.String), sa.column('before', sa.JSON), sa.column('after', sa.JSON))


def _fill(bind) -> None:
    bind.execute(entries.update().where(entries.c.site_id.is_not(None)).values(owner_site_id=entries.c.site_id))
    for table, (fk, parent) in THROUGH.items():
        rows_table = sa.table(table, sa.column('id', sa.Integer), sa.column(fk, sa.Integer))
        parents = sa.table(parent, sa.column('id', sa.Integer), sa.column('site_id', sa.Integer))
        site_of, last_id = {}, 0
        while True:
            found = bind.execute(sa.select(entries.c.id, entries.c.entity_id, entries.c.before, entries.c.after)
                                 .where(entries.c.entity_type == table, entries.c.owner_site_id.is_(None),
                                        entries.c.id > last_id).order_by(entries.c.id).limit(PAGE)).all()
            if not found:
                break
            changes = []
            for entry_id, entity_id, before, after in found:
                last_id = entry_id
                # The parent's id from the entry's own values (a deleted row is gone), else from the row.
                parent_id = (after or {}).get(fk) or (before or {}).get(fk)
                if parent_id is None and str(entity_id or '').isdigit():
                    parent_id = bind.execute(sa.select(rows_table.c[fk]).where(
                        rows_table.c.id == int(entity_id))).scalar()
                if parent_id is None:
                    continue
                if parent_id not in site_of:
                    site_of[parent_id] = bind.execute(sa.select(parents.c.site_id).where(
                        parents.c.id == int(parent_id))).scalar()
                if site_of[parent_id] is not None:
                    changes.append({'b_id': entry_id, 'b_site': site_of[parent_id]})
            if changes:
                bind.execute(entries.update().where(entries.c.id == sa.bindparam('b_id'))
                             .values(owner_site_id=sa.bindparam('b_site')), changes)


def upgrade():
    op.add_column('audit_entries', sa.Column('owner_site_id', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_audit_entries_owner_site_id'), 'audit_entries', ['owner_site_id'], unique=False)
    _fill(op.get_bind())


def downgrade():
    op.drop_index(op.f('ix_audit_entries_owner_site_id'), table_name='audit_entries')
    op.execute("ALTER TABLE audit_entries DROP COLUMN owner_site_id")
