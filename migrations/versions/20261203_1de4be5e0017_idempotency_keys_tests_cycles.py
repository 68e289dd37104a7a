"""steriliser tests and cycles: an optional idempotency key (unique) and the fingerprint of what was posted

Revision ID: 1de4be5e0017
Revises: 5a3e0c1d0018
Create Date: 2026-12-03 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '1de4be5e0017'
down_revision = '5a3e0c1d0018'
branch_labels = None
depends_on = None

TABLES = ('steriliser_tests', 'cycles')


def upgrade():
    # In place: a batch rebuild of these tables would fail the rows pointing at them (packs, recall loads).
    # Existing rows have no key (NULL); a unique index allows many NULLs on SQLite and PostgreSQL alike.
    for table in TABLES:
        op.add_column(table, sa.Column('idempotency_key', sa.String(length=64), nullable=True))
        op.add_column(table, sa.Column('idempotency_fingerprint', sa.String(length=64), nullable=True))
        op.create_index(op.f(f'ix_{table}_idempotency_key'), table, ['idempotency_key'], unique=True)


def downgrade():
    for table in TABLES:
        op.drop_index(op.f(f'ix_{table}_idempotency_key'), table_name=table)
        op.execute(f"ALTER TABLE {table} DROP COLUMN idempotency_fingerprint")
        op.execute(f"ALTER TABLE {table} DROP COLUMN idempotency_key")
