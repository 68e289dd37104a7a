"""Write an obligation's past as the engine would have: occurrences (what the rates count), with the done
changes and findings beside them (what the history pages and the findings tables read)."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from compliance.extensions import db
from compliance.schedule.models import Finding, Obligation, ObligationChange, Occurrence
from compliance.sites.models import Site


def _occurrence(o: Obligation, due_at: datetime, state: str, done_at: datetime | None) -> Occurrence:
    tz = ZoneInfo(db.session.get(Site, o.site_id).timezone)
    row = Occurrence(obligation_id=o.id, site_id=o.site_id, kind=o.kind, due_at=due_at,
                     local_day=due_at.astimezone(tz).date(), state=state, done_at=done_at,
                     created_at=due_at)
    db.session.add(row)
    return row


def add_done(o: Obligation, at: datetime, due_at: datetime | None = None) -> Occurrence:
    """Done on time at `at` for the due time `due_at` (by default the same moment)."""
    due_at = at if due_at is None else due_at
    db.session.add(ObligationChange(obligation_id=o.id, from_status="ok", to_status="ok", due_at=due_at, at=at,
                                    reason="done"))
    return _occurrence(o, due_at, "done_on_time", at)


def add_finding(o: Obligation, due_at: datetime, resolved_at: datetime | None = None,
                severity: str = "major", guideline_version: str = "test") -> Finding:
    """Missed at `due_at`; when `resolved_at` is given, done late then."""
    f = Finding(site_id=o.site_id, obligation_id=o.id, kind=o.kind, rule_id=o.rule_id, severity=severity,
                due_at=due_at, guideline_version=guideline_version, opened_at=due_at + timedelta(hours=1),
                resolved_at=resolved_at)
    db.session.add(f)
    if resolved_at is not None:
        db.session.add(ObligationChange(obligation_id=o.id, from_status="overdue", to_status="ok", due_at=due_at,
                                        at=resolved_at, reason="done"))
        _occurrence(o, due_at, "done_late", resolved_at)
    else:
        _occurrence(o, due_at, "missed", None)
    db.session.flush()
    return f
