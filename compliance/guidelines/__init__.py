"""The guideline pack: rules, their numbers and sources, as data (default.yaml), with per-site overrides."""
from __future__ import annotations

from dataclasses import dataclass, field
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
class Pack:
    name: str
    version: str
    rules: Mapping[str, Rule]
    overrides: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    notices: Mapping[str, int] = field(default_factory=dict)
    obligations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

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
            base = self.notices.get(key) if rule_id == NOTICES else self.rule(rule_id).numbers.get(key)
            if base is None:
                raise PackError(f"rule {rule_id!r} has no number {key!r} to override")
            if isinstance(base, (int, float)) and not isinstance(base, bool):
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                    raise PackError(f"{rule_id}.{key} must be a number ≥ 0")
            if rule_id == NOTICES and (not isinstance(value, int) or isinstance(value, bool)):
                raise PackError(f"{rule_id}.{key} must be a whole number ≥ 0")
        return Pack(self.name, self.version, self.rules, dict(overrides), self.notices, self.obligations)


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
    pack = Pack(str(data.get("pack", "default")), str(data["version"]), rules, {}, notices, obligations)
    for key, spec in obligations.items():
        _check_obligation(pack, key, spec)
    return pack


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
