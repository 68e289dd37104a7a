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


@pytest.mark.parametrize("pin, guessable", [("111111", True), ("123456", True), ("987654", True), ("0000", True),
                                            ("135790", False), ("112233", False), ("80264", False)])
def test_guessable_pins(pin, guessable):
    from compliance.auth.rules import is_guessable_pin
    assert is_guessable_pin(pin) is guessable


def test_a_made_pin_has_six_digits_and_is_never_a_guessable_one():
    from compliance.auth.rules import generate_pin, is_guessable_pin, is_valid_pin
    digits = iter([1, 2, 3, 4, 5, 6, 7, 7, 7, 7, 7, 7, 4, 0, 9, 1, 5, 8])  # 123456, 777777, then 409158
    assert generate_pin(randbelow=lambda _n: next(digits)) == "409158"
    for _ in range(200):
        pin = generate_pin()
        assert is_valid_pin(pin) and len(pin) == 6 and not is_guessable_pin(pin)
