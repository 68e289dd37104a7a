"""The guideline pack in force at a site: the default pack with the site's current overrides."""
from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..auth.actor import Actor
from ..errors import Invalid
from ..extensions import db
from . import Pack, PackError, load_pack
from .models import SiteRuleOverride


def pack_for_site(site_id: int) -> Pack:
    """The default pack with this site's overrides in force."""
    rows = db.session.scalars(select(SiteRuleOverride).where(
        SiteRuleOverride.site_id == site_id, SiteRuleOverride.replaced_at.is_(None)))
    return load_pack().with_overrides({(r.rule_id, r.key): r.value for r in rows})


def set_site_number(actor: Actor, site_id: int, rule_id: str, key: str, value, reason: str,
                    now: datetime) -> SiteRuleOverride:
    """A manager sets a site's own number for a rule; the previous override is kept, marked replaced."""
    actor.require("guidelines.manage")
    actor.require_site(site_id)
    if not (reason or "").strip():
        raise Invalid(_l("a reason is required (e.g. the local regulation)"), field="reason")
    try:
        pack_for_site(site_id).with_overrides({(rule_id, key): value})
    except PackError as exc:
        raise Invalid(str(exc), field="value") from None
    for old in db.session.scalars(select(SiteRuleOverride).where(
            SiteRuleOverride.site_id == site_id, SiteRuleOverride.rule_id == rule_id,
            SiteRuleOverride.key == key, SiteRuleOverride.replaced_at.is_(None))):
        old.replaced_at = now
    row = SiteRuleOverride(site_id=site_id, rule_id=rule_id, key=key, value=value, reason=reason.strip(),
                           set_by_id=actor.user_id, set_at=now)
    db.session.add(row)
    db.session.flush()
    return row
