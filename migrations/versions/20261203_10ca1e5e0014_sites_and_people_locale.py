"""sites and people: locale (how dates, times and numbers are written), filled for existing sites

Revision ID: 10ca1e5e0014
Revises: 7ab1e75e0013
Create Date: 2026-12-03 07:27:41.566236

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '10ca1e5e0014'
down_revision = '7ab1e75e0013'
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
    # Added in place, never by rebuilding the tables (SQLite's batch mode copies and drops a table, which the
    # rows that point at sites and users refuse): NOT NULL with a default, then each site's own value.
    op.add_column('sites', sa.Column('locale', sa.String(length=16), nullable=False, server_default='en-GB'))
    op.add_column('users', sa.Column('locale', sa.String(length=16), nullable=True))

    # Existing sites: London → en-GB, Jakarta (Indonesian) → id-ID … (people keep None: their site's locale).
    sites = sa.table('sites', sa.column('id', sa.Integer), sa.column('language', sa.String),
                     sa.column('timezone', sa.String), sa.column('locale', sa.String))
    bind = op.get_bind()
    for site_id, language, timezone in bind.execute(sa.select(sites.c.id, sites.c.language, sites.c.timezone)).all():
        bind.execute(sites.update().where(sites.c.id == site_id).values(locale=_default_locale(language, timezone)))
    if bind.dialect.name != 'sqlite':  # SQLite can't drop a default in place; the model sets the value anyway
        op.alter_column('sites', 'locale', server_default=None, existing_type=sa.String(length=16),
                        existing_nullable=False)


def downgrade():
    # Dropped in place (SQLite has ALTER TABLE … DROP COLUMN since 3.35), as in 0cc0e5f00012.
    op.execute("ALTER TABLE users DROP COLUMN locale")
    op.execute("ALTER TABLE sites DROP COLUMN locale")
