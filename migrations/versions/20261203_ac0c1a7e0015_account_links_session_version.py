"""people: emailed links to choose a password (invitations, resets), a session version that ends every
session, and the two new email kinds

Revision ID: ac0c1a7e0015
Revises: 10ca1e5e0014
Create Date: 2026-12-03 09:40:00.000000

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = 'ac0c1a7e0015'
down_revision = '10ca1e5e0014'
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('reminder', 'overdue', 'escalation', 'repeat', 'digest')"
NEW_KINDS = "kind IN ('reminder', 'overdue', 'escalation', 'repeat', 'digest', 'invitation', 'password_reset')"


def upgrade():
    op.create_table('account_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("purpose IN ('invitation', 'password_reset')", name=op.f('ck_account_links_purpose')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_account_links_created_by_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_account_links_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_account_links_token_hash'))
    )
    op.create_index(op.f('ix_account_links_user_id'), 'account_links', ['user_id'], unique=False)

    # In place (a rebuild of users would fail the rows pointing at it): existing sessions are version 0.
    op.add_column('users', sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))

    # outbox_messages: nothing points at it, so SQLite's batch mode may rebuild it (CHECK and type change).
    with op.batch_alter_table('outbox_messages', recreate='auto') as batch_op:
        batch_op.drop_constraint(op.f('ck_outbox_messages_kind'), type_='check')
        batch_op.alter_column('kind', existing_type=sa.String(length=12), type_=sa.String(length=16),
                              existing_nullable=False)
        batch_op.create_check_constraint('kind', NEW_KINDS)


def downgrade():
    op.execute("DELETE FROM outbox_messages WHERE kind IN ('invitation', 'password_reset')")
    with op.batch_alter_table('outbox_messages', recreate='auto') as batch_op:
        batch_op.drop_constraint(op.f('ck_outbox_messages_kind'), type_='check')
        batch_op.alter_column('kind', existing_type=sa.String(length=16), type_=sa.String(length=12),
                              existing_nullable=False)
        batch_op.create_check_constraint('kind', OLD_KINDS)
    op.execute("ALTER TABLE users DROP COLUMN session_version")
    op.drop_index(op.f('ix_account_links_user_id'), table_name='account_links')
    op.drop_table('account_links')
