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


class PackError(ValueError):
    """The pack file is malformed; the message names the rule and key."""


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

    def with_overrides(self, overrides: Mapping[tuple[str, str], Any]) -> "Pack":
        """The same pack with a site's numbers in force (checked: same rule, same key, same kind of value)."""
        for (rule_id, key), value in overrides.items():
            if rule_id == GATE:
                _check_gate_override(self, key, value)
                continue
            base = self.notices.get(key) if rule_id == NOTICES else self.rule(rule_id).numbers.get(key)
            if base is None:
                raise PackError(f"rule {rule_id!r} has no number {key!r} to override")
            if isinstance(base, (int, float)) and not isinstance(base, bool):
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                    raise PackError(f"{rule_id}.{key} must be a number ≥ 0")
            if rule_id == NOTICES and (not isinstance(value, int) or isinstance(value, bool)):
                raise PackError(f"{rule_id}.{key} must be a whole number ≥ 0")
        return replace(self, overrides=dict(overrides))


def _check_gate_override(pack: Pack, code: str, value: Any) -> None:
    """A site may make a gate reason stricter (manager -> never), never looser."""
    if code not in pack.gate:
        raise PackError(f"the gate has no reason {code!r} to override")
    if value not in OVERRIDE_CHOICES:
        raise PackError(f"gate.{code} must be one of {', '.join(OVERRIDE_CHOICES)}")
    if value == "manager" and pack.gate[code].override == "never":
        raise PackError(f"gate.{code} can never be overridden by a manager: a site may make a rule stricter, "
                        "never looser")


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
    pack = Pack(str(data.get("pack", "default")), str(data["version"]), rules, {}, notices, obligations,
                _parse_gate_reasons(rules, (data.get("gate") or {}).get("reasons") or {}),
                _parse_methods((data.get("gate") or {}).get("methods") or {}))
    for key, spec in obligations.items():
        _check_obligation(pack, key, spec)
    return pack


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
