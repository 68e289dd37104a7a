"""A site's numbers beside the pack's: what the screen and the API show, and how a typed value is read.

Pure: a Pack (with the site's overrides) in, rows out; no database, no request."""
from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from . import GATE, NOTICES, OVERRIDE_CHOICES, Limit, NumberRefused, Pack, is_plain_number

MAX_TEXT = 32  # a typed number longer than this is not a number


@dataclass(frozen=True)
class NumberRow:
    """One number: the pack's default, the value in force at the site, and what a site may set it to."""
    rule_id: str
    key: str
    default: Any
    value: Any
    kind: str  # whole, decimal, choice (a gate reason), fixed (a list, a text, a number without a range)
    limit: Limit | None = None
    choices: tuple[str, ...] = ()
    gate_rule: str | None = None  # a gate reason: the rule it applies

    @property
    def differs(self) -> bool:
        return self.value != self.default

    @property
    def editable(self) -> bool:
        """Whether the screen offers a change: a ranged number, or a gate reason the pack lets a manager
        override (a never-reason can only stay never)."""
        if self.kind == "choice":
            return self.default == "manager"
        return self.kind in ("whole", "decimal")


@dataclass(frozen=True)
class NumberGroup:
    rule_id: str  # a rule id, or "notices" / "gate"
    title: str
    severity: str | None
    numbers: tuple[NumberRow, ...]


def number_row(pack: Pack, rule_id: str, key: str) -> NumberRow:
    """The row of one number (raises NumberRefused "unknown" for a rule or key the pack does not have)."""
    default = pack.default(rule_id, key)
    if rule_id == GATE:
        return NumberRow(GATE, key, default, pack.override_for(key), "choice", choices=OVERRIDE_CHOICES,
                         gate_rule=pack.gate[key].rule)
    limit = pack.limits.get((rule_id, key))
    kind = "fixed" if limit is None else ("whole" if limit.whole else "decimal")
    return NumberRow(rule_id, key, default, pack.number(rule_id, key), kind, limit)


def site_numbers(pack: Pack, language: str, notices_title: str, gate_title: str) -> tuple[NumberGroup, ...]:
    """Every number of the pack grouped by rule (rules without numbers left out), then the notices and the
    gate's reasons, each with the site's value beside the default."""
    groups = [NumberGroup(rule.id, rule.title_in(language), rule.severity,
                          tuple(number_row(pack, rule.id, key) for key in rule.numbers))
              for rule in pack.rules.values() if rule.numbers]
    groups.append(NumberGroup(NOTICES, notices_title, None,
                              tuple(number_row(pack, NOTICES, key) for key in pack.notices)))
    groups.append(NumberGroup(GATE, gate_title, None, tuple(number_row(pack, GATE, code) for code in pack.gate)))
    return tuple(groups)


def parse_value(pack: Pack, rule_id: str, key: str, raw: Any) -> Any:
    """A value as typed in a form or sent as JSON, read for this number: text of a number becomes an int (a
    whole number) or a float ("1,3" as "1.3"); a gate setting stays text. Refuses text that is no number;
    whether the value is allowed is Pack.check_number's to say."""
    row = number_row(pack, rule_id, key)
    if row.kind == "choice":
        return raw.strip() if isinstance(raw, str) else raw
    if row.kind == "fixed" or row.limit is None:
        return raw
    whole = row.limit.whole
    if isinstance(raw, bool):
        raise NumberRefused("number", rule_id, key, f"{rule_id}.{key} must be a number", row.limit)
    if isinstance(raw, str):
        text = raw.strip().replace(",", ".")
        try:
            if not text or len(text) > MAX_TEXT:
                raise InvalidOperation
            number = Decimal(text)
            if not number.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise NumberRefused("number", rule_id, key, f"{rule_id}.{key} must be a number", row.limit) from None
        raw = int(number) if number == number.to_integral_value() else float(number)
    if isinstance(raw, float) and whole and raw.is_integer():
        return int(raw)
    if not is_plain_number(raw):
        raise NumberRefused("number", rule_id, key, f"{rule_id}.{key} must be a number", row.limit)
    return raw


def is_looser(row: NumberRow, new: Any) -> bool:
    """Whether `new` relaxes the rule compared with the pack's default (a rarer test, a longer shelf life)."""
    if row.kind == "choice":
        return new == "manager" and row.default == "never"
    if row.limit is None or row.limit.looser is None or not is_plain_number(new):
        return False
    return new > row.default if row.limit.looser == "higher" else new < row.default


def shown(value: Any) -> str:
    """A value as the screen shows it: numbers and texts as they are, lists joined, tables as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=False)
    return str(value)
