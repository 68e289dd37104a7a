"""obligations from the pack: kinds, notices, pause and snooze; site closed days and holidays

Revision ID: cd300c0d660a
Revises: c21953020b54
Create Date: 2026-11-25 13:34:42.723372

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'cd300c0d660a'
down_revision = 'c21953020b54'
branch_labels = None
depends_on = None


def upgrade():
    # The obligation tables of the previous revision were never filled (no scheduler ran before this one):
    # they are made again with the new shape rather than altered column by column (SQLite).
    for table in ("outbox_messages", "findings", "obligation_changes"):
        op.drop_table(table)
    with op.batch_alter_table("obligations") as batch_op:
        batch_op.drop_index("ix_obligations_alert_after")
    op.drop_table("obligations")
    op.create_table('obligations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('rule_id', sa.String(length=64), nullable=False),
    sa.Column('subject_type', sa.String(length=24), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('responsible', sa.String(length=8), nullable=False),
    sa.Column('responsible_user_id', sa.Integer(), nullable=True),
    sa.Column('schedule', sa.JSON(), nullable=False),
    sa.Column('next_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('alert_after', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_action', sa.String(length=12), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('reminded', sa.Boolean(), nullable=False),
    sa.Column('overdue_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated', sa.Boolean(), nullable=False),
    sa.Column('repeats_sent', sa.Integer(), nullable=False),
    sa.Column('snoozed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("next_action IS NULL OR next_action IN ('reminder', 'overdue', 'escalation', 'repeat')", name=op.f('ck_obligations_next_action')),
    sa.CheckConstraint("status IN ('ok', 'overdue', 'paused', 'ended')", name=op.f('ck_obligations_status')),
    sa.ForeignKeyConstraint(['responsible_user_id'], ['users.id'], name=op.f('fk_obligations_responsible_user_id_users')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_obligations_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_obligations')),
    sa.UniqueConstraint('kind', 'subject_type', 'subject_id', name=op.f('uq_obligations_kind_subject_type_subject_id'))
    )
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.create_index('ix_obligations_alert_after', ['alert_after'], unique=False)
        batch_op.create_index('ix_obligations_site_id_status', ['site_id', 'status'], unique=False)

    op.create_table('site_holidays',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_site_holidays_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site_holidays')),
    sa.UniqueConstraint('site_id', 'day', name=op.f('uq_site_holidays_site_id_day'))
    )
    with op.batch_alter_table('site_holidays', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_site_holidays_site_id'), ['site_id'], unique=False)

    op.create_table('findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('obligation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('rule_id', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('guideline_version', sa.String(length=40), nullable=False),
    sa.Column('overrides', sa.JSON(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['obligation_id'], ['obligations.id'], name=op.f('fk_findings_obligation_id_obligations')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_findings_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_findings')),
    sa.UniqueConstraint('obligation_id', 'due_at', name=op.f('uq_findings_obligation_id_due_at'))
    )
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_findings_site_id'), ['site_id'], unique=False)

    op.create_table('obligation_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('obligation_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=8), nullable=False),
    sa.Column('to_status', sa.String(length=8), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['by_id'], ['users.id'], name=op.f('fk_obligation_changes_by_id_users')),
    sa.ForeignKeyConstraint(['obligation_id'], ['obligations.id'], name=op.f('fk_obligation_changes_obligation_id_obligations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_obligation_changes'))
    )
    with op.batch_alter_table('obligation_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_obligation_changes_obligation_id'), ['obligation_id'], unique=False)

    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('obligation_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('reminder', 'overdue', 'escalation', 'repeat', 'digest')", name=op.f('ck_outbox_messages_kind')),
    sa.CheckConstraint("state IN ('queued', 'sent', 'failed')", name=op.f('ck_outbox_messages_state')),
    sa.ForeignKeyConstraint(['obligation_id'], ['obligations.id'], name=op.f('fk_outbox_messages_obligation_id_obligations')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_outbox_messages_site_id_sites')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_outbox_messages_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_messages_dedupe_key'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_messages_obligation_id'), ['obligation_id'], unique=False)
        batch_op.create_index('ix_outbox_messages_site_id_created_at', ['site_id', 'created_at'], unique=False)
        batch_op.create_index('ix_outbox_messages_state_next_attempt_at', ['state', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_weekdays', sa.String(length=32), nullable=False, server_default=''))

    # ### end Alembic commands ###


def downgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_column('closed_weekdays')

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_state_next_attempt_at')
        batch_op.drop_index('ix_outbox_messages_site_id_created_at')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_obligation_id'))

    op.drop_table('outbox_messages')
    with op.batch_alter_table('obligation_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_obligation_changes_obligation_id'))

    op.drop_table('obligation_changes')
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_findings_site_id'))

    op.drop_table('findings')
    with op.batch_alter_table('site_holidays', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_site_holidays_site_id'))

    op.drop_table('site_holidays')
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.drop_index('ix_obligations_site_id_status')
        batch_op.drop_index('ix_obligations_alert_after')

    op.drop_table('obligations')
    # ### end Alembic commands ###
    _previous_revision().upgrade()  # the empty obligation tables of c21953020b54 again


def _previous_revision():
    import importlib.util
    from pathlib import Path
    path = next(Path(__file__).parent.glob("*_c21953020b54_*.py"))
    spec = importlib.util.spec_from_file_location("previous_revision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
