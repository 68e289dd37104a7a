"""sites and people: locale (how dates, times and numbers are written), filled for existing sites

Revision ID: 10ca1e5e0014
Revises: 0cc0e5f00012
Create Date: 2026-12-03 07:27:41.566236

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '10ca1e5e0014'
down_revision = '0cc0e5f00012'
branch_labels = None
depends_on = None

# A copy of compliance.sites.rules.default_locale as it was when this ran: a migration must not change
# with later code.
_ZONE_PREFIX_LOCALES = (("Australia/", "en-AU"), ("America/", "en-US"), ("US/", "en-US"),
                        ("Pacific/Honolulu", "en-US"))


def _default_locale(language, timezone):
    if language == "id":
        return "id-ID"
    for prefix, locale in _ZONE_PREFIX_LOCALES:
        if (timezone or "").startswith(prefix):
            return locale
    return "en-GB"


def upgrade():
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))

    # Existing sites: London → en-GB, Jakarta → id-ID … (people keep None: their site's locale).
    sites = sa.table('sites', sa.column('id', sa.Integer), sa.column('language', sa.String),
                     sa.column('timezone', sa.String), sa.column('locale', sa.String))
    bind = op.get_bind()
    for site_id, language, timezone in bind.execute(sa.select(sites.c.id, sites.c.language, sites.c.timezone)).all():
        bind.execute(sites.update().where(sites.c.id == site_id).values(locale=_default_locale(language, timezone)))

    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.alter_column('locale', existing_type=sa.String(length=16), nullable=False)


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locale')

    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_column('locale')
