"""audit_pending_entries: entries committed with their transaction (PostgreSQL) and sealed into their chain
right after, so that no request holds the chain's head through its own commit

Revision ID: 5ea1ed0e0021
Revises: 5e7e0c1d0020
Create Date: 2026-12-03 14:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5ea1ed0e0021'
down_revision = '5e7e0c1d0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'audit_pending_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=True),
        sa.Column('actor_user_id', sa.Integer(), nullable=True),
        sa.Column('actor_api_key_id', sa.Integer(), nullable=True),
        sa.Column('actor_label', sa.String(length=200), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('entity_type', sa.String(length=64), nullable=False),
        sa.Column('entity_id', sa.String(length=64), nullable=False),
        sa.Column('before', sa.JSON(), nullable=True),
        sa.Column('after', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_pending_entries_organisation_id_id', 'audit_pending_entries',
                    ['organisation_id', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_audit_pending_entries_organisation_id_id', table_name='audit_pending_entries')
    op.drop_table('audit_pending_entries')
