"""Pure sign-in rules: PIN format, PIN lockout, password throttling. No Flask here."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

PIN_RE = re.compile(r"^[0-9]{4,6}$")
MIN_PASSWORD_LENGTH = 10


def is_valid_pin(pin: str) -> bool:
    """A PIN is 4 to 6 digits."""
    return bool(pin) and PIN_RE.fullmatch(pin) is not None


def is_guessable_pin(pin: str) -> bool:
    """One digit repeated, or a straight run up or down (111111, 123456, 987654): the first PINs tried."""
    steps = {int(b) - int(a) for a, b in zip(pin, pin[1:])}
    return len(steps) == 1 and steps <= {-1, 0, 1}


def generate_pin(length: int = 6, randbelow=secrets.randbelow) -> str:
    """A random PIN of `length` digits that is not one of the guessable ones."""
    while True:
        pin = "".join(str(randbelow(10)) for _ in range(length))
        if not is_guessable_pin(pin):
            return pin


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None (length only: NIST SP 800-63B advises against composition rules)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > 200:
        return "at most 200 characters"
    return None


def is_pin_locked(locked_until: datetime | None, now: datetime) -> bool:
    """A person stays locked until the lock's end (exclusive)."""
    return locked_until is not None and now < locked_until


@dataclass(frozen=True)
class PinFailure:
    failed_count: int
    locked_until: datetime | None


def after_failed_pin(failed_count: int, max_attempts: int, lock_minutes: int, now: datetime) -> PinFailure:
    """Count a wrong PIN; the max_attempts-th in a row locks the person for lock_minutes and resets the count."""
    failed_count += 1
    if failed_count >= max_attempts:
        return PinFailure(0, now + timedelta(minutes=lock_minutes))
    return PinFailure(failed_count, None)


def pin_tries_left(failed_count: int, max_attempts: int) -> int:
    """Wrong PINs still allowed before the next one locks the person (the last try counts: 1 means one more)."""
    return max(0, max_attempts - failed_count)


def is_login_throttled(failures_for_account: int, failures_for_address: int,
                       max_for_account: int, max_for_address: int) -> bool:
    """Too many recent failed passwords for this account or from this address."""
    return failures_for_account >= max_for_account or failures_for_address >= max_for_address
