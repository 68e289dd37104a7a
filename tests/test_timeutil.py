"""Stored times are UTC and never come back naive, on SQLite as on PostgreSQL."""
from datetime import datetime, timedelta, timezone

import pytest

from compliance.auth.models import AuthEvent
from compliance.timeutil import is_valid_timezone, local_today, to_local


def test_aware_time_round_trips_as_utc(db):
    jakarta = timezone(timedelta(hours=7))
    event = AuthEvent(kind="test", at=datetime(2026, 3, 29, 8, 30, tzinfo=jakarta))
    db.session.add(event)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(AuthEvent, event.id).at
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)


def test_naive_time_is_refused(db):
    db.session.add(AuthEvent(kind="test", at=datetime(2026, 1, 1, 9, 0)))
    with pytest.raises(Exception, match="naive datetime"):
        db.session.flush()
    db.session.rollback()


def test_local_date_follows_the_site_zone():
    now = datetime(2026, 11, 25, 20, 0, tzinfo=timezone.utc)  # 03:00 next day in Jakarta
    assert local_today("Asia/Jakarta", now).isoformat() == "2026-11-26"
    assert local_today("Europe/London", now).isoformat() == "2026-11-25"
    assert to_local(now, "Asia/Jakarta").hour == 3


@pytest.mark.parametrize("name,ok", [("Asia/Jakarta", True), ("Europe/London", True), ("UTC", True),
                                     ("Mars/Base", False), ("", False), (" Asia/Jakarta", False)])
def test_timezone_names_are_checked(name, ok):
    assert is_valid_timezone(name) is ok
