"""Pure checklist rules: read an answer for an item, and say whether it needs a note, opens an action, completes a run."""
from __future__ import annotations

from datetime import datetime, timedelta

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Iterable

YES = ("yes", "true", "1", "on", "y", "ya")
NO = ("no", "false", "0", "off", "n", "tidak")
MAX_TEXT = 2000


class AnswerError(ValueError):
    """The answer does not fit the item (the message says why, in English; codes below for translation)."""

    def __init__(self, code: str, **values):
        super().__init__(code)
        self.code = code
        self.values = values


@dataclass(frozen=True)
class ItemSpec:
    kind: str
    is_required: bool
    note_when: str                  # never, no, out_of_limits
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    choices: tuple[str, ...] = ()


def read_answer(item: ItemSpec, raw) -> object:
    """The stored value of a raw answer, or AnswerError: a tick is True, yes/no a bool, a number a string of digits."""
    text = "" if raw is None else str(raw).strip()
    if item.kind == "tick":
        if text.lower() not in YES:
            raise AnswerError("tick_expected")
        return True
    if item.kind == "yes_no":
        if text.lower() in YES:
            return True
        if text.lower() in NO:
            return False
        raise AnswerError("yes_no_expected")
    if item.kind == "number":
        try:
            number = Decimal(text.replace(",", "."))
        except InvalidOperation:
            raise AnswerError("number_expected") from None
        if not number.is_finite() or abs(number) >= Decimal("1e8"):
            raise AnswerError("number_expected")
        return str(number.normalize()) if number != number.to_integral() else str(number.quantize(Decimal(1)))
    if item.kind == "choice":
        if text not in item.choices:
            raise AnswerError("choice_expected", choices=", ".join(item.choices))
        return text
    if item.kind in ("text", "scan"):
        if not text:
            raise AnswerError("text_expected")
        if len(text) > MAX_TEXT:
            raise AnswerError("text_too_long", max=MAX_TEXT)
        return text
    if item.kind in ("photo", "signature"):
        if not text:
            raise AnswerError("file_expected")
        return text  # the stored file's name; the file itself is checked where it is received
    raise AnswerError("unknown_kind")


def is_out_of_limits(item: ItemSpec, value) -> bool:
    """A number below its minimum or above its maximum (limits inclusive)."""
    if item.kind != "number":
        return False
    number = Decimal(str(value))
    return (item.min_value is not None and number < item.min_value) or \
        (item.max_value is not None and number > item.max_value)


def needs_attention(item: ItemSpec, value) -> bool:
    """A "no" on an item that demands a note for "no", or an out-of-limit number on one that demands it."""
    if item.note_when == "no":
        return item.kind == "yes_no" and value is False
    if item.note_when == "out_of_limits":
        return is_out_of_limits(item, value)
    return False


def is_complete(required_item_ids: Iterable[int], answered_item_ids: Iterable[int]) -> bool:
    """A run is complete when every required item has an answer."""
    return set(required_item_ids) <= set(answered_item_ids)


def progress(item_ids: Iterable[int], answered_item_ids: Iterable[int]) -> tuple[int, int]:
    """(answered, total) for a progress bar."""
    items = set(item_ids)
    return len(items & set(answered_item_ids)), len(items)


# A tablet's clock may run a little ahead of or behind the server's: this much either way is not refused.
CLOCK_SKEW = timedelta(minutes=2)


def given_time_problem(given: datetime, run_started_at: datetime, now: datetime,
                       skew: timedelta = CLOCK_SKEW) -> str | None:
    """The time an answer says it was given (on the tablet, maybe offline and sent later): "future" if it is
    after `now`, "before_run" if before the run started (each beyond the clock skew allowed); else None."""
    if given > now + skew:
        return "future"
    if given < run_started_at - skew:
        return "before_run"
    return None

