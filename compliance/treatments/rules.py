"""The point-of-use gate, pure: facts about a pack, a unit, a practitioner and a client in; reasons out.

Each reason names the guideline it applies (an id in the guideline pack) and a code with values that
compliance/treatments/messages.py turns into words. No Flask here.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Callable, Iterable, Mapping, Sequence

from ..guidelines import Method, Requirement
from ..sterilisation.rules import Reason, pack_state

# Readings outside these are typing mistakes, refused as input (mm, passes).
PLAUSIBLE_DEPTH_MM = (Decimal("0.1"), Decimal("3.0"))
PLAUSIBLE_PASSES = (1, 50)


@dataclass(frozen=True)
class PackFacts:
    label_code: str
    status: str                    # the pack's stored status
    expires_at: datetime | None
    cycle_status: str | None       # its load's status, if loaded
    devices_over_limit: tuple[tuple[str, int, int], ...] = ()   # (serial, count, maker's max)
    devices_withdrawn: tuple[tuple[str, str], ...] = ()          # (serial, status) quarantined or retired


@dataclass(frozen=True)
class UnitFacts:
    serial: str
    used_before: bool
    lot_number: str
    lot_status: str                # available, quarantined, recalled
    lot_expires_on: date


def check_pack(pack: PackFacts, now: datetime) -> list[Reason]:
    """spaulding-critical and sterile-storage: released load, in date, intact, unused since sterilisation."""
    reasons: list[Reason] = []
    state = pack_state(pack.status, pack.expires_at, now)
    if pack.cycle_status != "released" and state not in ("recalled", "used"):
        reasons.append(Reason("spaulding-critical", "load_not_released",
                              {"code": pack.label_code, "status": pack.cycle_status or "not sterilised"}))
    if state == "recalled":
        reasons.append(Reason("failed-test-recall", "pack_recalled", {"code": pack.label_code}))
    elif state == "expired":
        reasons.append(Reason("sterile-storage", "pack_expired", {"code": pack.label_code}))
    elif state == "compromised":
        reasons.append(Reason("sterile-storage", "pack_compromised", {"code": pack.label_code}))
    elif state == "used":
        reasons.append(Reason("spaulding-critical", "pack_used", {"code": pack.label_code}))
    elif state == "failed":
        reasons.append(Reason("cycle-parameters-met", "pack_failed", {"code": pack.label_code}))
    for serial, status in pack.devices_withdrawn:
        reasons.append(Reason("spaulding-critical", "device_withdrawn", {"serial": serial, "status": status}))
    for serial, count, maximum in pack.devices_over_limit:
        reasons.append(Reason("spaulding-critical", "device_over_limit",
                              {"serial": serial, "count": count, "max": maximum}))
    return reasons


def check_unit(unit: UnitFacts, today: date) -> list[Reason]:
    """single-use-never-reused: never used before, anywhere; its lot in date and neither recalled nor quarantined."""
    reasons: list[Reason] = []
    if unit.used_before:
        reasons.append(Reason("single-use-never-reused", "unit_used", {"serial": unit.serial}))
    if unit.lot_status == "recalled":
        reasons.append(Reason("single-use-never-reused", "lot_recalled", {"lot": unit.lot_number}))
    elif unit.lot_status == "quarantined":
        reasons.append(Reason("single-use-never-reused", "lot_quarantined", {"lot": unit.lot_number}))
    if unit.lot_expires_on < today:
        reasons.append(Reason("single-use-never-reused", "lot_expired",
                              {"lot": unit.lot_number, "expired_on": unit.lot_expires_on.isoformat()}))
    return reasons


def check_practitioner(required_courses: Iterable[str], valid_courses: Iterable[str]) -> list[Reason]:
    """trained-practitioner: every course the procedure needs is in date today."""
    missing = sorted(set(required_courses) - set(valid_courses))
    return [Reason("trained-practitioner", "training_missing", {"course": c}) for c in missing]


def required_courses(procedure: str, requirements: Mapping[str, Iterable[str]]) -> list[str]:
    """The courses a procedure needs, from the guideline pack (every micro-needling procedure by default)."""
    return list(requirements.get(procedure) or requirements.get("microneedling") or ())


def check_screening(screening: Mapping | None) -> list[Reason]:
    """client-screening: the before-client screening is recorded, and shows no active skin infection."""
    if not screening:
        return [Reason("client-screening", "screening_missing")]
    if screening.get("active_skin_infection"):
        return [Reason("client-screening", "active_infection")]
    return []


@dataclass(frozen=True)
class ScreeningItem:
    key: str
    rule_id: str | None
    is_required: bool


def screening_from_checklist(items: Sequence[ScreeningItem], answers: Mapping[str, str], complete: bool,
                             contraindicated_when: Mapping[str, str], run_id: int) -> dict | None:
    """client-screening as the before-client checklist run for the client answered it (answers: item key -> the
    answer as "yes"/"no" or its text). None while a question is unanswered; as soon as an answer listed in
    `contraindicated_when` is given, the client must not be treated, whatever is still unanswered."""
    contraindicated = any(answers.get(key) == str(value) for key, value in contraindicated_when.items())
    questions = [i for i in items if i.rule_id == "client-screening"]
    needed = [i.key for i in questions if i.is_required]
    answered = all(key in answers for key in needed) if needed else complete
    if not (answered or contraindicated):
        return None
    return {"active_skin_infection": contraindicated, "checklist_run_id": run_id,
            "answers": {i.key: answers[i.key] for i in questions if i.key in answers}}


def never_overridden(reasons: Iterable[Reason], override_for: Callable[[str], str]) -> list[Reason]:
    """The reasons no manager may override (the pack says `override: never`; an unknown code is never)."""
    return [r for r in reasons if override_for(r.code) != "manager"]


def without_supervised(reasons: Iterable[Reason], override_for: Callable[[str], str],
                       supervised: bool) -> list[Reason]:
    """trained-practitioner: once a manager supervises the treatment, the practitioner's missing training no
    longer refuses its items (the override that made the manager supervise is the finding)."""
    if not supervised:
        return list(reasons)
    return [r for r in reasons if not (r.code == "training_missing" and override_for(r.code) == "manager")]


@dataclass(frozen=True)
class NeedleItem:
    """An item the gate accepted for a treatment: a pack (the Spaulding classes of its devices) or a unit (its kind)."""
    kind: str                       # pack or unit
    classes: frozenset[str] = frozenset()
    unit_kind: str = ""


def _meets(item: NeedleItem, option: Mapping[str, str]) -> bool:
    if "pack" in option:
        return item.kind == "pack" and option["pack"] in item.classes
    return item.kind == "unit" and option.get("unit") == item.unit_kind


# A treatment recorded before methods existed needs at least one needle item of any method.
ANY_NEEDLE_TITLE = {"en": "a sterile pack or a single-use needle item", "id": "kemasan steril atau alat jarum sekali pakai"}


def requirements_for(method: Method | None, methods: Mapping[str, Method]) -> tuple[Requirement, ...]:
    """The needle items a treatment needs: its method's, or (no method) any one needle item of any method."""
    if method is not None:
        return method.requires
    return (Requirement(ANY_NEEDLE_TITLE, tuple(o for m in methods.values() for req in m.requires
                                                for o in req.any_of)),)


def is_met(requirement: Requirement, items: Sequence[NeedleItem]) -> bool:
    return any(_meets(i, o) for i in items for o in requirement.any_of)


def missing_needle_items(method: Method | None, items: Sequence[NeedleItem],
                         methods: Mapping[str, Method]) -> list[Requirement]:
    """spaulding-critical: the needle items the method needs that the gate has not accepted for this treatment."""
    return [req for req in requirements_for(method, methods) if not is_met(req, items)]


def check_passes(passes: int | None, confirmed: bool, low: int, high: int) -> list[Reason]:
    """passes-within-range (minor): outside the range the practitioner must confirm; it is then recorded."""
    if passes is None or low <= passes <= high or confirmed:
        return []
    return [Reason("passes-within-range", "passes_outside", {"passes": passes, "min": low, "max": high})]


def is_reportable(kind: str) -> bool:
    """adverse-event: expected effects (redness, swelling, pain) are not reportable; the rest are."""
    return kind not in ("redness", "swelling", "pain")
