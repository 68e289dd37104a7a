"""The guideline pack: rules, their numbers and sources, as data (default.yaml), with per-site overrides."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

DEFAULT_PACK = Path(__file__).with_name("default.yaml")
SEVERITIES = ("critical", "major", "minor")
SUBJECTS = ("steriliser", "site", "sharps_container", "training_record", "pack", "corrective_action")
RESPONSIBLE = ("staff", "manager", "person")
NOTICE_KEYS = ("reminder_lead_minutes", "escalate_after_minutes", "repeat_every_minutes", "digest_local_hour")
NOTICES = "notices"  # the pseudo-rule a site overrides to change when people are told
GATE = "gate"  # the pseudo-rule a site overrides to make a gate reason stricter (key: the reason's code)
GATE_MEANS = ("not-sterile", "used", "client", "person")
OVERRIDE_CHOICES = ("never", "manager")
# Only a person's qualification can be stood in for by a manager's supervision; an item that may not be sterile,
# was used, or must not be used on this client never can (RULES.md, "Overrides").
MAY_BE_OVERRIDDEN = ("person",)
ITEM_KEYS = ("pack", "unit")
LOOSER = ("higher", "lower")  # which way a number relaxes the rule (a longer shelf life, a rarer test)


class PackError(ValueError):
    """The pack file is malformed; the message names the rule and key."""


class NumberRefused(PackError):
    """Why a site's number was refused: kind is "unknown", "fixed", "number", "whole", "range", "order" or
    "gate"; str() is the English sentence naming the rule and key (the services translate by kind)."""

    def __init__(self, kind: str, rule_id: str, key: str, message: str, limit: "Limit | None" = None,
                 other: str | None = None):
        self.kind, self.rule_id, self.key, self.limit, self.other = kind, rule_id, key, limit, other
        super().__init__(message)


@dataclass(frozen=True)
class Limit:
    """The range the pack allows a site's number in (inclusive), and which way is looser, if that matters.
    `at_most`: another number of the same rule this one may not exceed (min_passes ≤ max_passes)."""
    min: int | float
    max: int | float
    whole: bool
    looser: str | None = None
    at_most: str | None = None

    def text(self) -> str:
        return f"{self.min}–{self.max}"


def is_plain_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: Mapping[str, str]
    numbers: Mapping[str, Any]
    sources: tuple[Mapping[str, str], ...]

    def title_in(self, language: str) -> str:
        return self.title.get(language) or self.title["en"]


@dataclass(frozen=True)
class GateReason:
    code: str
    rule: str
    means: str
    override: str  # never, manager


@dataclass(frozen=True)
class Requirement:
    """One needle item a method needs: met by any one of `any_of` ({"pack": "critical"} or {"unit": kind})."""
    title: Mapping[str, str]
    any_of: tuple[Mapping[str, str], ...]

    def title_in(self, language: str) -> str:
        return self.title.get(language) or self.title["en"]


@dataclass(frozen=True)
class Method:
    key: str
    title: Mapping[str, str]
    requires: tuple[Requirement, ...]

    def title_in(self, language: str) -> str:
        return self.title.get(language) or self.title["en"]


@dataclass(frozen=True)
class Pack:
    name: str
    version: str
    rules: Mapping[str, Rule]
    overrides: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    notices: Mapping[str, int] = field(default_factory=dict)
    obligations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    gate: Mapping[str, GateReason] = field(default_factory=dict)
    methods: Mapping[str, Method] = field(default_factory=dict)
    limits: Mapping[tuple[str, str], Limit] = field(default_factory=dict)  # (rule or "notices", key) -> range

    def override_for(self, code: str) -> str:
        """Whether a manager may override a gate reason here ("manager") or not ("never"); unknown codes: never."""
        reason = self.gate.get(code)
        if reason is None:
            return "never"
        return str(self.overrides.get((GATE, code), reason.override))

    def rule(self, rule_id: str) -> Rule:
        try:
            return self.rules[rule_id]
        except KeyError:
            raise PackError(f"no rule {rule_id!r} in pack {self.name} {self.version}") from None

    def number(self, rule_id: str, key: str) -> Any:
        """A rule's number, a site's override first."""
        if (rule_id, key) in self.overrides:
            return self.overrides[(rule_id, key)]
        if rule_id == NOTICES:
            if key not in self.notices:
                raise PackError(f"the pack has no notice setting {key!r}")
            return self.notices[key]
        numbers = self.rule(rule_id).numbers
        if key not in numbers:
            raise PackError(f"rule {rule_id!r} has no number {key!r}")
        return numbers[key]

    def obligation_value(self, key: str, name: str, default: Any = None) -> Any:
        """A setting of an obligation; {number: key} takes the rule's number (a site's override first)."""
        spec = self.obligations[key]
        value = spec.get(name, default)
        return self.resolve(spec["rule"], value)

    def resolve(self, rule_id: str, value: Any) -> Any:
        if isinstance(value, dict) and "number" in value:
            number = self.number(rule_id, value["number"])
            return number * 1440 if value.get("unit") == "days" else number
        if isinstance(value, dict):
            return {k: self.resolve(rule_id, v) for k, v in value.items()}
        return value

    def notice_minutes(self, key: str, name: str) -> int:
        """When people are told about an obligation: its own setting, else the site's, else the pack's."""
        spec = self.obligations[key]
        if name in spec:
            return int(self.resolve(spec["rule"], spec[name]))
        return int(self.number(NOTICES, name))

    def default(self, rule_id: str, key: str) -> Any:
        """A number as the pack gives it, before any site's override."""
        if rule_id == GATE:
            if key not in self.gate:
                raise NumberRefused("unknown", rule_id, key, f"the gate has no reason {key!r}")
            return self.gate[key].override
        if rule_id == NOTICES:
            if key not in self.notices:
                raise NumberRefused("unknown", rule_id, key, f"the pack has no notice setting {key!r}")
            return self.notices[key]
        if rule_id not in self.rules:
            raise NumberRefused("unknown", rule_id, key,
                                f"no rule {rule_id!r} (for a number {key!r}) in pack {self.name} {self.version}")
        numbers = self.rules[rule_id].numbers
        if key not in numbers:
            raise NumberRefused("unknown", rule_id, key, f"rule {rule_id!r} has no number {key!r}")
        return numbers[key]

    def check_number(self, rule_id: str, key: str, value: Any) -> None:
        """Refuse a site's number the pack does not allow: unknown, fixed (no range, a list, a text), not a
        number, not whole where the default is, outside the range, or a gate reason made looser."""
        if rule_id == GATE:
            _check_gate_override(self, key, value)
            return
        self.default(rule_id, key)
        limit = self.limits.get((rule_id, key))
        if limit is None:
            raise NumberRefused("fixed", rule_id, key, f"{rule_id}.{key} is fixed by the guideline pack; "
                                                       "a site may not change it")
        if not is_plain_number(value):
            raise NumberRefused("number", rule_id, key, f"{rule_id}.{key} must be a number", limit)
        if limit.whole and not isinstance(value, int):
            raise NumberRefused("whole", rule_id, key, f"{rule_id}.{key} must be a whole number", limit)
        if not limit.min <= value <= limit.max:
            raise NumberRefused("range", rule_id, key, f"{rule_id}.{key} must be between {limit.min} and "
                                                       f"{limit.max} (the range the guideline pack allows)", limit)

    def with_overrides(self, overrides: Mapping[tuple[str, str], Any]) -> "Pack":
        """The same pack with a site's numbers in force (each checked against the pack's range; a gate reason
        only stricter), and every `at_most` pair still in order."""
        for (rule_id, key), value in overrides.items():
            self.check_number(rule_id, key, value)
        pack = replace(self, overrides=dict(overrides))
        for (rule_id, key), limit in self.limits.items():
            if limit.at_most and ((rule_id, key) in overrides or (rule_id, limit.at_most) in overrides):
                if pack.number(rule_id, key) > pack.number(rule_id, limit.at_most):
                    raise NumberRefused("order", rule_id, key, f"{rule_id}.{key} may not be more than "
                                        f"{rule_id}.{limit.at_most} ({pack.number(rule_id, limit.at_most)})",
                                        limit, limit.at_most)
        return pack


def _check_gate_override(pack: Pack, code: str, value: Any) -> None:
    """A site may make a gate reason stricter (manager -> never), never looser."""
    if code not in pack.gate:
        raise NumberRefused("unknown", GATE, code, f"the gate has no reason {code!r} to override")
    if not isinstance(value, str) or value not in OVERRIDE_CHOICES:
        raise NumberRefused("choice", GATE, code, f"gate.{code} must be one of {', '.join(OVERRIDE_CHOICES)}")
    if value == "manager" and pack.gate[code].override == "never":
        raise NumberRefused("gate", GATE, code, f"gate.{code} can never be overridden by a manager: a site may "
                                                "make a rule stricter, never looser")


def parse_pack(data: Mapping[str, Any]) -> Pack:
    """Check and build a pack from its parsed YAML."""
    rules: dict[str, Rule] = {}
    for rule_id, spec in (data.get("rules") or {}).items():
        if spec.get("severity") not in SEVERITIES:
            raise PackError(f"rule {rule_id!r}: severity must be one of {SEVERITIES}")
        title = spec.get("title") or {}
        if not title.get("en") or not title.get("id"):
            raise PackError(f"rule {rule_id!r}: title needs 'en' and 'id'")
        rules[rule_id] = Rule(rule_id, spec["severity"], dict(title), dict(spec.get("numbers") or {}),
                              tuple(spec.get("sources") or ()))
    if not data.get("version"):
        raise PackError("the pack has no version")
    notices = dict(data.get("notices") or {})
    if set(notices) != set(NOTICE_KEYS) or not all(isinstance(v, int) and v >= 0 for v in notices.values()):
        raise PackError(f"notices: give whole numbers ≥ 0 for {', '.join(NOTICE_KEYS)}")
    obligations = dict(data.get("obligations") or {})
    limits = {(rule_id, key): limit for rule_id, spec in (data.get("rules") or {}).items()
              for key, limit in _parse_limits(rule_id, rules[rule_id].numbers, spec.get("limits") or {}).items()}
    limits.update({(NOTICES, key): limit
                   for key, limit in _parse_limits(NOTICES, notices, data.get("notice_limits") or {}).items()})
    pack = Pack(str(data.get("pack", "default")), str(data["version"]), rules, {}, notices, obligations,
                _parse_gate_reasons(rules, (data.get("gate") or {}).get("reasons") or {}),
                _parse_methods((data.get("gate") or {}).get("methods") or {}), limits)
    for key, spec in obligations.items():
        _check_obligation(pack, key, spec)
    return pack


def _parse_limits(rule_id: str, numbers: Mapping[str, Any], specs: Mapping[str, Any]) -> dict[str, Limit]:
    """Each range a site's number may take: a plain number of the rule, min ≤ default ≤ max (a pack whose own
    default lies outside its range is refused), whole bounds for a whole default."""
    limits = {}
    for key, spec in specs.items():
        where = f"rule {rule_id!r}: limits of {key!r}"
        default, spec = numbers.get(key), spec or {}
        if not is_plain_number(default):
            raise PackError(f"{where}: only a plain number of the rule can have a range")
        lo, hi, looser, at_most = spec.get("min"), spec.get("max"), spec.get("looser"), spec.get("at_most")
        whole = isinstance(default, int)
        if not is_plain_number(lo) or not is_plain_number(hi) or lo > hi:
            raise PackError(f"{where}: give numbers min ≤ max")
        if whole and not (isinstance(lo, int) and isinstance(hi, int)):
            raise PackError(f"{where}: the default is a whole number, so min and max must be too")
        if not lo <= default <= hi:
            raise PackError(f"{where}: the default {default} lies outside the pack's own range {lo}–{hi}")
        if looser is not None and looser not in LOOSER:
            raise PackError(f"{where}: looser must be one of {', '.join(LOOSER)}")
        if at_most is not None and (not is_plain_number(numbers.get(at_most)) or numbers[at_most] < default):
            raise PackError(f"{where}: at_most must name a number of the rule not below the default")
        if set(spec) - {"min", "max", "looser", "at_most"}:
            raise PackError(f"{where}: unknown settings {sorted(set(spec) - {'min', 'max', 'looser', 'at_most'})}")
        limits[key] = Limit(lo, hi, whole, looser, at_most)
    return limits


def _parse_gate_reasons(rules: Mapping[str, Rule], specs: Mapping[str, Any]) -> dict[str, GateReason]:
    reasons = {}
    for code, spec in specs.items():
        where = f"gate reason {code!r}"
        spec = spec or {}
        if spec.get("rule") not in rules:
            raise PackError(f"{where}: no rule {spec.get('rule')!r}")
        if spec.get("means") not in GATE_MEANS:
            raise PackError(f"{where}: means must be one of {', '.join(GATE_MEANS)}")
        if spec.get("override") not in OVERRIDE_CHOICES:
            raise PackError(f"{where}: override must be one of {', '.join(OVERRIDE_CHOICES)}")
        if spec["override"] == "manager" and spec["means"] not in MAY_BE_OVERRIDDEN:
            raise PackError(f"{where}: an item that may not be sterile, was used or must not be used on this client "
                            "can never be overridden (override: never)")
        reasons[code] = GateReason(code, spec["rule"], spec["means"], spec["override"])
    return reasons


def _parse_methods(specs: Mapping[str, Any]) -> dict[str, Method]:
    methods = {}
    for key, spec in specs.items():
        where = f"gate method {key!r}"
        spec = spec or {}
        title = spec.get("title") or {}
        if not title.get("en") or not title.get("id"):
            raise PackError(f"{where}: title needs 'en' and 'id'")
        requires = []
        for item in spec.get("requires") or ():
            item_title = (item or {}).get("title") or {}
            options = tuple((item or {}).get("any_of") or ())
            if not item_title.get("en") or not item_title.get("id") or not options:
                raise PackError(f"{where}: each requirement needs a title ('en' and 'id') and any_of")
            for option in options:
                if not isinstance(option, dict) or len(option) != 1 or next(iter(option)) not in ITEM_KEYS:
                    raise PackError(f"{where}: an item is {{pack: critical}} or {{unit: <item kind>}}")
            requires.append(Requirement(dict(item_title), options))
        if not requires:
            raise PackError(f"{where}: requires at least one needle item")
        methods[key] = Method(key, dict(title), tuple(requires))
    return methods


def _check_obligation(pack: Pack, key: str, spec: Mapping[str, Any]) -> None:
    where = f"obligation {key!r}"
    if spec.get("rule") not in pack.rules:
        raise PackError(f"{where}: no rule {spec.get('rule')!r}")
    if spec.get("subject") not in SUBJECTS:
        raise PackError(f"{where}: subject must be one of {SUBJECTS}")
    if spec.get("responsible") not in RESPONSIBLE:
        raise PackError(f"{where}: responsible must be one of {RESPONSIBLE}")
    schedule, once = spec.get("schedule") or {}, spec.get("once")
    if bool(once) == bool(schedule) or (schedule and set(schedule) not in ({"cron"}, {"every_days"})):
        raise PackError(f"{where}: give either schedule (cron or every_days) or once")
    for name in ("grace_minutes", *NOTICE_KEYS[:3]):
        if name in spec:
            value = pack.resolve(spec["rule"], spec[name])
            if not isinstance(value, int) or value < 0:
                raise PackError(f"{where}: {name} must be a whole number ≥ 0")
    if not isinstance(spec.get("rated", True), bool):
        raise PackError(f"{where}: rated must be true or false")
    pack.resolve(spec["rule"], schedule)  # every {number: …} names a number of the rule


@lru_cache(maxsize=4)
def load_pack(path: str | None = None) -> Pack:
    """The pack from a YAML file (the default pack unless a path is given); parsed once per process."""
    with open(path or DEFAULT_PACK, encoding="utf-8") as fh:
        return parse_pack(yaml.safe_load(fh))
