"""Sign-in rules, without an app."""
from datetime import datetime, timedelta, timezone

import pytest

from compliance.auth.rules import (
    after_failed_pin,
    is_login_throttled,
    is_pin_locked,
    is_valid_pin,
    password_problem,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("pin,ok", [
    ("1234", True), ("123456", True), ("123", False), ("1234567", False),
    ("12a4", False), ("", False), (" 1234", False), ("١٢٣٤", False),
])
def test_pin_must_be_4_to_6_ascii_digits(pin, ok):
    assert is_valid_pin(pin) is ok


def test_fifth_wrong_pin_locks_for_the_configured_minutes():
    count = 0
    for _ in range(4):
        failure = after_failed_pin(count, max_attempts=5, lock_minutes=15, now=NOW)
        assert failure.locked_until is None
        count = failure.failed_count
    assert count == 4
    failure = after_failed_pin(count, max_attempts=5, lock_minutes=15, now=NOW)
    assert failure.locked_until == NOW + timedelta(minutes=15)
    assert failure.failed_count == 0


def test_pin_lock_ends_exactly_at_its_end():
    until = NOW + timedelta(minutes=15)
    assert is_pin_locked(until, until - timedelta(seconds=1))
    assert not is_pin_locked(until, until)
    assert not is_pin_locked(None, NOW)


def test_login_throttle_per_account_and_per_address():
    assert not is_login_throttled(4, 19, 5, 20)
    assert is_login_throttled(5, 0, 5, 20)
    assert is_login_throttled(0, 20, 5, 20)


def test_password_needs_ten_characters():
    assert password_problem("short") is not None
    assert password_problem("long enough") is None
    assert password_problem("x" * 201) is not None


def test_tries_left_count_down_to_the_lock():
    from compliance.auth.rules import pin_tries_left

    assert [pin_tries_left(n, 5) for n in (0, 1, 4, 5, 6)] == [5, 4, 1, 0, 0]
