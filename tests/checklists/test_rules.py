"""Checklist rules without an app."""
from decimal import Decimal as D

import pytest

from compliance.checklists.rules import AnswerError, ItemSpec, is_complete, needs_attention, progress, read_answer

TEMP = ItemSpec("number", True, "out_of_limits", D("2"), D("8"))


@pytest.mark.parametrize("kind,raw,value", [
    ("tick", "yes", True), ("yes_no", "no", False), ("yes_no", "Ya", True), ("number", "4,5", "4.5"),
    ("number", "7", "7"), ("text", " ok ", "ok"), ("scan", "PK-ABC", "PK-ABC"),
])
def test_answers_are_read_by_kind(kind, raw, value):
    assert read_answer(ItemSpec(kind, True, "never"), raw) == value


@pytest.mark.parametrize("kind,raw,code", [
    ("number", "abc", "number_expected"), ("number", "nan", "number_expected"), ("yes_no", "maybe", "yes_no_expected"),
    ("tick", "", "tick_expected"), ("text", "x" * 2001, "text_too_long"), ("text", "  ", "text_expected"),
])
def test_bad_answers_are_refused(kind, raw, code):
    with pytest.raises(AnswerError) as exc:
        read_answer(ItemSpec(kind, True, "never"), raw)
    assert exc.value.code == code


def test_choice_must_be_one_of_the_choices():
    item = ItemSpec("choice", True, "never", choices=("I", "II"))
    assert read_answer(item, "II") == "II"
    with pytest.raises(AnswerError):
        read_answer(item, "VII")


def test_limits_are_inclusive():
    assert not needs_attention(TEMP, "2") and not needs_attention(TEMP, "8")
    assert needs_attention(TEMP, "1.9") and needs_attention(TEMP, "8.1")


def test_no_needs_attention_only_when_the_item_says_so():
    assert needs_attention(ItemSpec("yes_no", True, "no"), False)
    assert not needs_attention(ItemSpec("yes_no", True, "no"), True)
    assert not needs_attention(ItemSpec("yes_no", True, "never"), False)


def test_run_is_complete_when_every_required_item_is_answered():
    assert not is_complete([1, 2, 3], [1, 2])
    assert is_complete([1, 2], [1, 2, 5])
    assert progress([1, 2, 3, 4], [1, 3]) == (2, 4)
