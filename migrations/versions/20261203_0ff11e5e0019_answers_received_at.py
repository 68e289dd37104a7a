"""answers: the time each answer reached the server (answered_at stays the time it was given on the tablet)

Revision ID: 0ff11e5e0019
Revises: 1de4be5e0017
Create Date: 2026-12-03 13:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0ff11e5e0019'
down_revision = '1de4be5e0017'
branch_labels = None
depends_on = None


def upgrade():
    # In place (answers are pointed at by corrective actions and by their corrections). Answers stored before
    # were received the moment they were given.
    op.add_column('answers', sa.Column('received_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE answers SET received_at = answered_at")


def downgrade():
    op.execute("ALTER TABLE answers DROP COLUMN received_at")
