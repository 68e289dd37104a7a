"""sterilisation: the steriliser's own record of a cycle wins over the typed figures, appended as a correction
of kind "machine_record" (by a person or an API key), with the typed figures that disagree

Revision ID: d15a9ee00020
Revises: c7a1f3e00019
Create Date: 2026-12-03 15:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd15a9ee00020'
down_revision = 'c7a1f3e00019'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cycle_corrections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='person', nullable=False))
        batch_op.add_column(sa.Column('api_key_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('curve_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('disagreements', sa.JSON(), server_default='[]', nullable=False))
        batch_op.alter_column('corrected_by_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(batch_op.f('ix_cycle_corrections_curve_id'), ['curve_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_cycle_corrections_api_key_id_api_keys'), 'api_keys',
                                    ['api_key_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_cycle_corrections_curve_id_cycle_curves'), 'cycle_curves',
                                    ['curve_id'], ['id'])
        batch_op.create_check_constraint(batch_op.f('ck_cycle_corrections_kind'), "kind IN ('person', 'machine_record')")


def downgrade():
    # the steriliser's records applied to loads can't be told from a manager's corrections once `kind` is gone
    op.execute("DELETE FROM cycle_corrections WHERE kind = 'machine_record'")
    with op.batch_alter_table('cycle_corrections', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_cycle_corrections_kind'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_cycle_corrections_curve_id_cycle_curves'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_cycle_corrections_api_key_id_api_keys'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_cycle_corrections_curve_id'))
        batch_op.alter_column('corrected_by_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('disagreements')
        batch_op.drop_column('curve_id')
        batch_op.drop_column('api_key_id')
        batch_op.drop_column('kind')
