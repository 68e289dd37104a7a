"""The guideline pack in force at a site: the default pack with the site's current overrides; a manager sets a
site's own number (checked against the pack's range), and its history is kept."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..auth.actor import Actor
from ..errors import Conflict, Invalid, NotFound, ServiceError
from ..labels import field_label
from ..extensions import db
from ..sites.models import Site, User
from . import GATE, NumberRefused, Pack, load_pack
from .models import SiteRuleOverride
from .numbers import NumberGroup, NumberRow, is_looser, number_row, parse_value, site_numbers

MAX_REASON = 500


def pack_for_site(site_id: int) -> Pack:
    """The default pack with this site's overrides in force."""
    rows = db.session.scalars(select(SiteRuleOverride).where(
        SiteRuleOverride.site_id == site_id, SiteRuleOverride.replaced_at.is_(None)))
    return load_pack().with_overrides({(r.rule_id, r.key): r.value for r in rows})


@dataclass(frozen=True)
class NumberChange:
    """A change as the confirmation shows it, before anything is stored."""
    site_id: int
    row: NumberRow  # the number as it is now
    new: Any
    reason: str

    @property
    def is_default(self) -> bool:
        return self.new == self.row.default

    @property
    def is_looser(self) -> bool:
        return is_looser(self.row, self.new)


@dataclass(frozen=True)
class HistoryRow:
    id: int
    rule_id: str
    key: str
    old_value: Any
    new_value: Any
    reason: str
    set_by_id: int | None
    set_by: str
    set_at: datetime
    replaced_at: datetime | None


@dataclass(frozen=True)
class SiteNumbers:
    site: Site
    pack: Pack
    groups: tuple[NumberGroup, ...]
    history: tuple[HistoryRow, ...]  # newest first


def _refusal(exc: NumberRefused, pack: Pack, value: Any) -> ServiceError:
    """The pack's refusal in the reader's language, naming the rule, the key and the range."""
    name, limit = f"{exc.rule_id}.{exc.key}", exc.limit
    rule = pack.gate[exc.key].rule if exc.rule_id == GATE and exc.key in pack.gate else exc.rule_id
    if exc.kind == "unknown":
        return NotFound(_l("the guideline pack has no number %(name)s", name=name), field="key", rule=exc.rule_id)
    if exc.kind == "fixed":
        message = _l("%(name)s is fixed by the guideline pack; a site may not change it", name=name)
    elif exc.kind == "number":
        message = _l("%(name)s must be a number from %(min)s to %(max)s", name=name, min=limit.min, max=limit.max)
    elif exc.kind == "whole":
        message = _l("%(name)s must be a whole number from %(min)s to %(max)s", name=name, min=limit.min,
                     max=limit.max)
    elif exc.kind == "range":
        message = _l("%(name)s must be from %(min)s to %(max)s, the range the guideline pack allows (not %(value)s)",
                     name=name, min=limit.min, max=limit.max, value=value)
    elif exc.kind == "order":
        message = _l("%(name)s may not be more than %(rule)s.%(other)s (%(value)s)", name=name, rule=exc.rule_id,
                     other=exc.other, value=pack.number(exc.rule_id, exc.other))
    elif exc.kind == "gate":
        message = _l("%(name)s (rule %(rule)s) can never be overridden by a manager: a site may make a rule "
                     "stricter, never looser", name=name, rule=rule)
    else:  # choice
        message = _l("%(name)s must be never or manager", name=name)
    return Invalid(message, field="value", rule=rule)


def _known(pack: Pack, rule_id: str, key: str) -> NumberRow:
    try:
        return number_row(pack, rule_id, key)
    except NumberRefused as exc:
        raise _refusal(exc, pack, None) from None


def get_number(actor: Actor, site_id: int, rule_id: str, key: str) -> tuple[Site, NumberRow]:
    """One number of a site's pack (404 for a site out of reach or a number the pack does not have)."""
    actor.require("guidelines.read")
    actor.require_site(site_id)
    site = db.session.get(Site, site_id)
    return site, _known(pack_for_site(site_id), rule_id, key)


def plan_site_number(actor: Actor, site_id: int, rule_id: str, key: str, value: Any, reason: str) -> NumberChange:
    """Check a change of a site's number as set_site_number would, storing nothing (the confirmation step)."""
    actor.require("guidelines.manage")
    actor.require_site(site_id)
    pack = pack_for_site(site_id)
    row = _known(pack, rule_id, key)
    try:
        new = parse_value(pack, rule_id, key, value)
        pack.with_overrides({**pack.overrides, (rule_id, key): new})
    except NumberRefused as exc:
        raise _refusal(exc, pack, value) from None
    reason = str(reason or "").strip()
    if not reason:
        raise Invalid(_l("a reason is required (e.g. the local regulation)"), field="reason", rule=row.gate_rule
                      or rule_id)
    if len(reason) > MAX_REASON:
        raise Invalid(_l("%(field)s must be at most %(max)s characters", field=field_label("reason"), max=MAX_REASON),
                      field="reason", rule=row.gate_rule or rule_id)
    if new == row.value:
        raise Conflict(_l("%(name)s is %(value)s at this site already", name=f"{rule_id}.{key}", value=new),
                       field="value", rule=row.gate_rule or rule_id)
    return NumberChange(site_id, row, new, reason)


def set_site_number(actor: Actor, site_id: int, rule_id: str, key: str, value, reason: str,
                    now: datetime) -> SiteRuleOverride:
    """A manager sets a site's own number for a rule, within the pack's range (a gate reason only stricter); the
    previous override is kept, marked replaced, and the site's obligations follow the new number."""
    change = plan_site_number(actor, site_id, rule_id, key, value, reason)
    for old in db.session.scalars(select(SiteRuleOverride).where(
            SiteRuleOverride.site_id == site_id, SiteRuleOverride.rule_id == rule_id,
            SiteRuleOverride.key == key, SiteRuleOverride.replaced_at.is_(None))):
        old.replaced_at = now
    row = SiteRuleOverride(site_id=site_id, rule_id=rule_id, key=key, value=change.new, reason=change.reason,
                           set_by_id=actor.user_id, set_at=now)
    db.session.add(row)
    db.session.flush()
    from ..schedule.services import refresh_site  # the schedule imports this module

    refresh_site(site_id, now)  # e.g. a monthly spore test: the obligation's schedule follows from now
    return row


def reset_site_number(actor: Actor, site_id: int, rule_id: str, key: str, reason: str,
                      now: datetime) -> SiteRuleOverride:
    """Back to the pack's default: a new row holding the default, so the history shows who went back and why."""
    return set_site_number(actor, site_id, rule_id, key, _known(load_pack(), rule_id, key).default, reason, now)


def number_history(site_id: int, rule_id: str | None = None, key: str | None = None) -> tuple[HistoryRow, ...]:
    """Every change of the site's numbers (or of one), newest first, each with the value it replaced (the
    pack's default before the first)."""
    stmt = select(SiteRuleOverride).where(SiteRuleOverride.site_id == site_id)
    if rule_id is not None:
        stmt = stmt.where(SiteRuleOverride.rule_id == rule_id, SiteRuleOverride.key == key)
    rows = list(db.session.scalars(stmt.order_by(SiteRuleOverride.set_at, SiteRuleOverride.id)))
    ids = {r.set_by_id for r in rows if r.set_by_id is not None}
    names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}
    pack, last, out = load_pack(), {}, []
    for r in rows:
        try:
            before = last.get((r.rule_id, r.key), pack.default(r.rule_id, r.key))
        except NumberRefused:  # a number an older pack had
            before = None
        out.append(HistoryRow(r.id, r.rule_id, r.key, before, r.value, r.reason, r.set_by_id,
                              names.get(r.set_by_id, ""), r.set_at, r.replaced_at))
        last[(r.rule_id, r.key)] = r.value
    return tuple(reversed(out))


def numbers_of_site(actor: Actor, site_id: int, language: str) -> SiteNumbers:
    """Every number of the pack with the site's value beside the default, and the history of its changes."""
    actor.require("guidelines.read")
    actor.require_site(site_id)
    site = db.session.get(Site, site_id)
    pack = pack_for_site(site_id)
    groups = site_numbers(pack, language, str(_l("When people are told (every obligation's default)")),
                          str(_l("The point-of-use gate: who may override a refusal")))
    return SiteNumbers(site, pack, groups, number_history(site_id))
