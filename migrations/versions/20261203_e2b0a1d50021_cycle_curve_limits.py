"""sterilisation: a cycle record keeps the numbers it was judged by (band, steam tolerance, sampling), so its
page and chart show those rather than the numbers in force today

Revision ID: e2b0a1d50021
Revises: d15a9ee00020
Create Date: 2026-12-03 16:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e2b0a1d50021'
down_revision = 'd15a9ee00020'
branch_labels = None
depends_on = None


def upgrade():
    # nothing points at cycle_curves' new column; a plain ADD COLUMN (no table rebuild on SQLite)
    op.add_column('cycle_curves', sa.Column('limits', sa.JSON(), nullable=True))


def downgrade():
    op.drop_column('cycle_curves', 'limits')
