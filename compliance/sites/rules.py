"""Pure training rules: whether a course is valid, expiring or expired on a local date (trained-practitioner).
The warning period is a number of the guideline pack, passed in."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable


def training_status(expires_on: date | None, today: date, warn_days: int) -> str:
    """valid, expiring (expires within warn_days of today) or expired (today is after the expiry date)."""
    if expires_on is None:
        return "valid"
    if expires_on < today:
        return "expired"
    if expires_on <= today + timedelta(days=warn_days):
        return "expiring"
    return "valid"


def _covers_longer(a: date | None, b: date | None) -> bool:
    """True when expiry a lasts beyond expiry b (None never expires)."""
    return (date.max if a is None else a) > (date.max if b is None else b)


def current_expiries(rows: Iterable[tuple[int, str, date | None]]) -> dict[tuple[int, str], date | None]:
    """For each (person, course), the expiry of the record that covers longest: a renewal supersedes."""
    best: dict[tuple[int, str], date | None] = {}
    for user_id, course, expires_on in rows:
        key = (user_id, course)
        if key not in best or _covers_longer(expires_on, best[key]):
            best[key] = expires_on
    return best


def record_status(record, today: date, best: dict[tuple[int, str], date | None], warn_days: int) -> str:
    """A record's pill: replaced/withdrawn when inactive, renewed when a later record covers longer."""
    if not record.is_active:
        return "replaced" if record.replaced_by_id else "withdrawn"
    status = training_status(record.expires_on, today, warn_days)
    if status != "valid" and _covers_longer(best.get((record.user_id, record.course), record.expires_on),
                                            record.expires_on):
        return "renewed"
    return status


# The language decides first (an Indonesian-speaking site writes 2/12/26 21.33 and 0,50); among English sites the
# zone picks the American or Australian way, and every other one (London, an English clinic in Jakarta) gets the
# British day/month/year and 24-hour clock, never the US order by accident.
_ZONE_PREFIX_LOCALES = (("Australia/", "en-AU"), ("America/", "en-US"), ("US/", "en-US"),
                        ("Pacific/Honolulu", "en-US"))


def default_locale(language: str | None, timezone: str | None) -> str:
    """The formats a site gets when none was chosen: Indonesian-speaking sites id-ID, else by the zone, else en-GB."""
    if language == "id":
        return "id-ID"
    for prefix, locale in _ZONE_PREFIX_LOCALES:
        if (timezone or "").startswith(prefix):
            return locale
    return "en-GB"
