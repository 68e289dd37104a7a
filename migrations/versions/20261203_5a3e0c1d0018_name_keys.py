"""names unique in their scope compared by a key (NFC, spaces collapsed, case-folded) under unique indexes:
organisations, sites, rooms, device kinds, sterilisers, programmes

Revision ID: 5a3e0c1d0018
Revises: a0d1be5e0016
Create Date: 2026-12-03 10:20:00.000000

"""
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5a3e0c1d0018'
down_revision = 'a0d1be5e0016'
branch_labels = None
depends_on = None

# (table, scope column or None, name length)
TABLES = (("organisations", None, 200), ("sites", "organisation_id", 200), ("rooms", "site_id", 120),
          ("device_types", "organisation_id", 120), ("sterilisers", "site_id", 120),
          ("programmes", "steriliser_id", 80))


def _key(name):  # a copy of compliance.names.name_key as it was when this ran
    return unicodedata.normalize("NFC", " ".join((name or "").split())).casefold()


def _index(table, scope):
    return f"ux_{table}_{scope}_name_key" if scope else f"ux_{table}_name_key"


def upgrade():
    bind = op.get_bind()
    for table, scope, length in TABLES:
        # In place (SQLite's batch mode would rebuild tables other rows point at): NOT NULL with a default, then
        # each row's key.
        op.add_column(table, sa.Column('name_key', sa.String(length=length), nullable=False, server_default=''))
        t = sa.table(table, sa.column('id', sa.Integer), sa.column('name', sa.String),
                     sa.column('name_key', sa.String), *([sa.column(scope, sa.Integer)] if scope else []))
        columns = [t.c.id, t.c.name] + ([t.c[scope]] if scope else [])
        taken = set()
        for row in bind.execute(sa.select(*columns).order_by(t.c.id)).all():
            key = _key(row.name)
            place = (getattr(row, scope) if scope else None, key)
            if place in taken:
                # Two names that only now count as one ("Ärzte" / "ärzte", allowed while SQLite compared ASCII
                # only): the later keeps its name, its key is told apart so the index can be made.
                key = f"{key}~{row.id}"
                place = (place[0], key)
            taken.add(place)
            bind.execute(t.update().where(t.c.id == row.id).values(name_key=key))
        op.create_index(_index(table, scope), table, [scope, 'name_key'] if scope else ['name_key'], unique=True)
        if bind.dialect.name != 'sqlite':
            op.alter_column(table, 'name_key', server_default=None, existing_type=sa.String(length=length),
                            existing_nullable=False)


def downgrade():
    for table, scope, _length in reversed(TABLES):
        op.drop_index(_index(table, scope), table_name=table)
        op.execute(f"ALTER TABLE {table} DROP COLUMN name_key")
