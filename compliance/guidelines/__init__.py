"""The guideline pack: rules, their numbers and sources, as data (default.yaml), with per-site overrides."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

DEFAULT_PACK = Path(__file__).with_name("default.yaml")
SEVERITIES = ("critical", "major", "minor")


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

    def rule(self, rule_id: str) -> Rule:
        try:
            return self.rules[rule_id]
        except KeyError:
            raise PackError(f"no rule {rule_id!r} in pack {self.name} {self.version}") from None

    def number(self, rule_id: str, key: str) -> Any:
        """A rule's number, a site's override first."""
        if (rule_id, key) in self.overrides:
            return self.overrides[(rule_id, key)]
        numbers = self.rule(rule_id).numbers
        if key not in numbers:
            raise PackError(f"rule {rule_id!r} has no number {key!r}")
        return numbers[key]

    def with_overrides(self, overrides: Mapping[tuple[str, str], Any]) -> "Pack":
        """The same pack with a site's numbers in force (checked: same rule, same key, same kind of value)."""
        for (rule_id, key), value in overrides.items():
            base = self.rule(rule_id).numbers.get(key)
            if base is None:
                raise PackError(f"rule {rule_id!r} has no number {key!r} to override")
            if isinstance(base, (int, float)) and not isinstance(base, bool):
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                    raise PackError(f"{rule_id}.{key} must be a number ≥ 0")
        return Pack(self.name, self.version, self.rules, dict(overrides))


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
    return Pack(str(data.get("pack", "default")), str(data["version"]), rules)


@lru_cache(maxsize=4)
def load_pack(path: str | None = None) -> Pack:
    """The pack from a YAML file (the default pack unless a path is given); parsed once per process."""
    with open(path or DEFAULT_PACK, encoding="utf-8") as fh:
        return parse_pack(yaml.safe_load(fh))
