"""The subjects obligations are made for, as each domain registers them: the schedule engine imports no
domain's models. A domain (devices, sites, sterilisation, treatments, checklists) says, for its subject type,
which subjects of a site should have duties now, a short label for each, whether one is still live, and since
when it exists (a record of its duty cannot be older). The app registers them all at start (compliance/__init__.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Callable, Iterable
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from ..guidelines import Pack
    from ..sites.models import Site


@dataclass(frozen=True)
class Wanted:
    """An obligation a site should have: its kind, subject, who answers for it, and a fixed due time for `once`."""
    kind: str
    subject_type: str
    subject_id: int
    paused: bool = False                 # e.g. the steriliser is out of service
    due_at: datetime | None = None       # `once` obligations: the subject's date
    responsible_user_id: int | None = None


@dataclass(frozen=True)
class SubjectType:
    """What the engine needs to know of one kind of subject."""
    name: str
    # (site, pack, the pack's obligation keys for this subject type) -> the obligations the site should have now
    wanted: Callable[["Site", "Pack", list[str]], list[Wanted]]
    # ids -> {id: short label}, in few queries
    labels: Callable[[set[int]], dict[int, str]]
    # id -> whether the subject still has duties (one indexed lookup)
    is_live: Callable[[int], bool]
    # id -> when it was added, or None when that does not bound its records
    started_at: Callable[[int], datetime | None] = lambda _id: None


_TYPES: dict[str, SubjectType] = {}


def register(subject: SubjectType) -> None:
    _TYPES[subject.name] = subject


def subject_type(name: str) -> SubjectType:
    try:
        return _TYPES[name]
    except KeyError:
        raise KeyError(f"no domain registered the subject type {name!r}") from None


def registered() -> Iterable[SubjectType]:
    return _TYPES.values()


def start_of_day_after(day: date, tz_name: str) -> datetime:
    """Midnight local at the end of `day` (a record valid until `day` is due the moment after it), in UTC."""
    local = datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(tz_name))
    return local.astimezone(ZoneInfo("UTC"))
