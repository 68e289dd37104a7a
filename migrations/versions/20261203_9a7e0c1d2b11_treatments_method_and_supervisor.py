"""treatments: the needling method and the supervising manager

Revision ID: 9a7e0c1d2b11
Revises: c0cc1a7e0001
Create Date: 2026-12-03 06:10:00

Existing treatments keep no method (NULL): the needle items they are checked against are then "any needle item"
(compliance/treatments/rules.py missing_needle_items). Gate refusals and overrides already stored are not touched:
they stay as history, whatever the guideline pack now says about overriding them.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9a7e0c1d2b11'
down_revision = 'c0cc1a7e0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('treatments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('method', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('supervised_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_treatments_supervised_by_id_users'), 'users',
                                    ['supervised_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('treatments', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_treatments_supervised_by_id_users'), type_='foreignkey')
        batch_op.drop_column('supervised_by_id')
        batch_op.drop_column('method')
