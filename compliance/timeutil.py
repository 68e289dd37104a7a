"""One clock, a UTC column type, and conversion to a site's local time."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, aware, in UTC. Every timestamp the product stores comes from here."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC; never hands back a naive one (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use compliance.timeutil.utcnow()")
        value = value.astimezone(timezone.utc)
        # SQLite stores text; keep it naive UTC there so comparisons stay lexical and correct.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def is_valid_timezone(name: str) -> bool:
    """True when name is an IANA time zone known to zoneinfo (with tzdata)."""
    if not name or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def timezone_choices() -> list[str]:
    """Every IANA zone name, sorted, for select boxes."""
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


def to_local(value: datetime, tz_name: str) -> datetime:
    """The same instant in the given IANA zone."""
    return value.astimezone(ZoneInfo(tz_name))


def local_today(tz_name: str, now: datetime) -> date:
    """The calendar date at `now` in the given zone (training validity is judged by local date)."""
    return to_local(now, tz_name).date()
