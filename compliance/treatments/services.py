"""Clients, treatments, the point-of-use gate, overrides, finishing, adverse events, trace and look-back.

Services take ids, the actor and `now`; they flush and never commit. A refused gate check returns a
GateResult holding the stored attempt, so that the edge commits the attempt (who, what, which rule)
while nothing is used.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import LazyString, get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash

from ..audit.services import record_claim, snapshot
from .. import validation as v
from ..labels import field_label
from ..auth.actor import Actor
from ..auth.models import AuthEvent
from ..auth.rules import after_failed_pin, is_pin_locked
from ..auth.services import PinPolicy
from ..devices.models import Device, DeviceType
from ..devices.services import change_device_status
from ..errors import Conflict, Duplicate, Forbidden, Invalid, NotFound
from ..extensions import db
from ..guidelines import Pack as GuidelinePack
from ..guidelines import Requirement, load_pack
from ..guidelines.services import pack_for_site
from ..sites.models import Room, Site, TrainingRecord, User
from ..sterilisation.models import Cycle, Pack, PackItem
from ..sterilisation.services import find_pack
from ..stock.models import ItemType, Lot, Unit
from ..stock.services import resolve_unit
from ..timeutil import local_today
from . import rules
from .forms import ADVERSE_KIND_LABELS, PROCEDURE_LABELS, SEVERITY_LABELS  # the words of a refused choice
from .messages import INSTEAD, instead_key
from ..schedule import services as schedule
from .models import (
    ADVERSE_KINDS,
    PROCEDURES,
    SEVERITIES,
    AdverseEvent,
    Client,
    GateAttempt,
    GateOverride,
    LookBack,
    SharpsContainer,
    Treatment,
    TreatmentPack,
    TreatmentUnit,
)

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
SCREENING_QUESTIONS = ("active_skin_infection", "herpes_history", "metal_allergy", "skin_type", "age_confirmed")


@dataclass
class GateResult:
    accepted: bool
    reasons: list[dict] = field(default_factory=list)
    attempt: GateAttempt | None = None
    usage: TreatmentPack | TreatmentUnit | None = None
    already: bool = False  # the same item scanned again for this treatment (a double read): nothing new stored


# --- clients -----------------------------------------------------------------------------------

def new_client_code() -> str:
    return "C-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))


def create_client(actor: Actor, data: dict, now: datetime) -> Client:
    """A client known by a pseudonymous code; name and phone are optional and for managers only."""
    actor.require("treatments.record")
    site_id = v.ident(data, "site_id")
    actor.require_site(site_id)
    client = Client(organisation_id=actor.organisation_id, site_id=site_id, code=new_client_code(),
                    name=v.text(data, "name", 200, required=False), phone=v.text(data, "phone", 40, required=False),
                    consent_at=now if v.boolean(data, "consent") else None,
                    consent_note=v.text(data, "consent_note", 2000, required=False), created_at=now)
    db.session.add(client)
    db.session.flush()
    return client


def get_client(actor: Actor, client_id: int | None = None, code: str | None = None) -> Client:
    actor.require("treatments.read")
    if code:
        client = db.session.scalar(select(Client).where(Client.organisation_id == actor.organisation_id,
                                                        Client.code == code.strip().upper()))
    else:
        client = db.session.get(Client, client_id) if client_id else None
    if client is None or client.organisation_id != actor.organisation_id or not _client_in_reach(actor, client):
        raise NotFound(_l("no such client"), field="client_id")
    return client


def _client_in_reach(actor: Actor, client: Client) -> bool:
    if client.site_id in actor.site_ids:
        return True
    return db.session.scalar(select(Treatment.id).where(Treatment.client_id == client.id,
                                                        Treatment.site_id.in_(actor.site_ids)).limit(1)) is not None


# --- treatments --------------------------------------------------------------------------------

def method_titles(methods) -> dict:
    """The guideline pack's ways of needling by their titles, each in the language of whoever reads it."""
    return {key: LazyString(lambda m=m: m.title_in(str(get_locale() or "en"))) for key, m in methods.items()}


def start_treatment(actor: Actor, data: dict, now: datetime) -> Treatment:
    """Open a treatment for a client in a room; nothing touches skin until the gate accepts it."""
    actor.require("treatments.record")
    room = db.session.get(Room, v.ident(data, "room_id"))
    if room is None or room.site_id not in actor.site_ids or not room.is_active:
        raise NotFound(_l("no such room"), field="room_id")
    client = get_client(actor, client_id=data.get("client_id"), code=data.get("client_code"))
    practitioner_id = int(data.get("practitioner_id") or actor.user_id or 0)
    practitioner = db.session.get(User, practitioner_id)
    if practitioner is None or room.site_id not in practitioner.site_ids or not practitioner.is_active_user:
        raise NotFound(_l("no such practitioner at this site"), field="practitioner_id")
    procedure = v.choice(data, "procedure", PROCEDURES, labels=PROCEDURE_LABELS)
    methods = pack_for_site(room.site_id).methods
    method = v.choice(data, "method", tuple(methods), labels=method_titles(methods))
    treatment = Treatment(site_id=room.site_id, room_id=room.id, client_id=client.id, practitioner_id=practitioner.id,
                          procedure=procedure, method=method, started_at=now, status="open",
                          created_by_id=actor.user_id, created_at=now)
    db.session.add(treatment)
    db.session.flush()
    return treatment


def get_treatment(actor: Actor, treatment_id: int) -> Treatment:
    actor.require("treatments.read")
    treatment = db.session.get(Treatment, treatment_id)
    if treatment is None or treatment.site_id not in actor.site_ids:
        raise NotFound(_l("no such treatment"), field="treatment_id")
    return treatment


def _open_treatment(actor: Actor, treatment_id: int) -> Treatment:
    actor.require("treatments.record")
    treatment = get_treatment(actor, treatment_id)
    if treatment.status != "open":
        raise Conflict(_l("this treatment is %(status)s", status=treatment.status), field="treatment_id")
    return treatment


def record_screening(actor: Actor, treatment_id: int, data: dict, now: datetime) -> Treatment:
    """client-screening: the answers before the client is treated (a correction is a new record of answers)."""
    treatment = _open_treatment(actor, treatment_id)
    from .screening import refuse_api_screening

    refuse_api_screening(treatment)
    answers = {}
    for question in SCREENING_QUESTIONS:
        if question == "skin_type":
            answers[question] = v.choice(data, question, ("I", "II", "III", "IV", "V", "VI"))
        elif data.get(question) in (None, ""):
            raise Invalid(_l("Answer the question “%(field)s”", field=field_label(question)), field=question)
        else:
            answers[question] = v.boolean(data, question)
    answers["notes"] = v.text(data, "notes", 2000, required=False)
    treatment.screening, treatment.screening_at = answers, now
    db.session.flush()
    return treatment


def _valid_courses(user_id: int, today) -> set[str]:
    return set(db.session.scalars(select(TrainingRecord.course).where(
        TrainingRecord.user_id == user_id, TrainingRecord.is_active.is_(True), TrainingRecord.completed_on <= today,
        or_(TrainingRecord.expires_on.is_(None), TrainingRecord.expires_on >= today))))


def _person_and_client_reasons(treatment: Treatment, guideline: GuidelinePack, now: datetime) -> list[rules.Reason]:
    site = db.session.get(Site, treatment.site_id)
    requirements = guideline.number("trained-practitioner", "required_courses")
    reasons = rules.check_practitioner(rules.required_courses(treatment.procedure, requirements),
                                       _valid_courses(treatment.practitioner_id, local_today(site.timezone, now)))
    reasons = rules.without_supervised(reasons, guideline.override_for, treatment.supervised_by_id is not None)
    return reasons + rules.check_screening(treatment.screening)


def _reason_dicts(reasons: list[rules.Reason], guideline: GuidelinePack) -> list[dict]:
    """Reasons as stored and answered: each says whether a manager may override it here ("never"/"manager")."""
    return [{**r.as_dict(), "override": guideline.override_for(r.code)} for r in reasons]


def _refuse(actor: Actor, treatment: Treatment, subject: str, scanned: str, reasons: list[rules.Reason],
            now: datetime, guideline: GuidelinePack, pack_id: int | None = None,
            unit_id: int | None = None) -> GateResult:
    attempt = GateAttempt(treatment_id=treatment.id, site_id=treatment.site_id, subject=subject,
                          scanned=scanned[:200], pack_id=pack_id, unit_id=unit_id,
                          reasons=_reason_dicts(reasons, guideline), by_id=actor.user_id, at=now)
    db.session.add(attempt)
    db.session.flush()
    return GateResult(False, attempt.reasons, attempt)


def _may_pass(reasons: list[rules.Reason], guideline: GuidelinePack, override: GateOverride | None) -> bool:
    """No reason at all; or a manager's override and every reason one that a manager may override here."""
    if not reasons:
        return True
    return override is not None and not rules.never_overridden(reasons, guideline.override_for)


def _pack_facts(pack: Pack) -> rules.PackFacts:
    cycle_status = db.session.scalar(select(Cycle.status).where(Cycle.id == pack.cycle_id)) if pack.cycle_id else None
    devices = list(db.session.scalars(select(Device).join(PackItem).where(PackItem.pack_id == pack.id)))
    over = tuple((d.serial, d.reprocessing_count, d.max_cycles) for d in devices
                 if d.max_cycles is not None and d.reprocessing_count > d.max_cycles)
    withdrawn = tuple((d.serial, d.status) for d in devices if d.status in ("quarantined", "retired"))
    return rules.PackFacts(pack.label_code, pack.status, pack.expires_at, cycle_status, over, withdrawn)


def add_pack(actor: Actor, treatment_id: int, raw_code: str, now: datetime,
             override: GateOverride | None = None) -> GateResult:
    """The gate for a reusable device's pack: released load, in date, intact, unused; trained person; screened client."""
    treatment = _open_treatment(actor, treatment_id)
    pack = find_pack(actor, raw_code)
    if pack.site_id != treatment.site_id:
        raise NotFound(_l("no pack with the label %(code)s at this site", code=pack.label_code), field="code")
    same = db.session.scalar(select(TreatmentPack).where(TreatmentPack.pack_id == pack.id))
    if same is not None and same.treatment_id == treatment.id:  # a double read of a pack already opened here
        return GateResult(True, [], None, same, already=True)
    guideline = pack_for_site(treatment.site_id)
    reasons = _person_and_client_reasons(treatment, guideline, now) + rules.check_pack(_pack_facts(pack), now)
    if not _may_pass(reasons, guideline, override):
        return _refuse(actor, treatment, "pack", raw_code, reasons, now, guideline, pack_id=pack.id)
    # Claim the pack with a conditional UPDATE: of two tablets, exactly one changes the row; the unique
    # treatment_packs.pack_id is the backstop.
    before = snapshot(pack, ("status",))
    claimed = db.session.execute(update(Pack).where(Pack.id == pack.id, Pack.status == pack.status,
                                                    Pack.status != "used").values(status="used"))
    usage = TreatmentPack(treatment_id=treatment.id, pack_id=pack.id, added_by_id=actor.user_id, added_at=now,
                          override_id=override.id if override else None)
    used_reason = [rules.Reason("spaulding-critical", "pack_used", {"code": pack.label_code})]
    if claimed.rowcount != 1:
        db.session.expire(pack)
        return _refuse(actor, treatment, "pack", raw_code, used_reason, now, guideline, pack_id=pack.id)
    record_claim(pack, before, {"status": "used"}, actor=actor)
    try:
        with db.session.begin_nested():
            db.session.add(usage)
    except IntegrityError:
        db.session.expire(pack)
        return _refuse(actor, treatment, "pack", raw_code, used_reason, now, guideline, pack_id=pack.id)
    db.session.expire(pack)
    return GateResult(True, _reason_dicts(reasons, guideline), None, usage)


def add_unit(actor: Actor, treatment_id: int, raw_code: str, now: datetime,
             override: GateOverride | None = None) -> GateResult:
    """The gate for a single-use unit: never used before anywhere in the organisation (a unique constraint,
    not a check-then-insert), lot in date and not recalled or quarantined; trained person; screened client."""
    treatment = _open_treatment(actor, treatment_id)
    unit = resolve_unit(actor, treatment.site_id, raw_code, now)
    lot = db.session.get(Lot, unit.lot_id)
    site = db.session.get(Site, treatment.site_id)
    same = db.session.scalar(select(TreatmentUnit).where(TreatmentUnit.unit_id == unit.id))
    if same is not None and same.treatment_id == treatment.id:  # a double read of a unit already used here
        return GateResult(True, [], None, same, already=True)
    facts = rules.UnitFacts(unit.serial, same is not None, lot.lot_number, lot.status, lot.expires_on)
    guideline = pack_for_site(site.id)
    reasons = (_person_and_client_reasons(treatment, guideline, now)
               + rules.check_unit(facts, local_today(site.timezone, now)))
    if not _may_pass(reasons, guideline, override):
        return _refuse(actor, treatment, "unit", raw_code, reasons, now, guideline, unit_id=unit.id)
    usage = TreatmentUnit(treatment_id=treatment.id, unit_id=unit.id, added_by_id=actor.user_id, added_at=now,
                          override_id=override.id if override else None)
    try:
        with db.session.begin_nested():  # two tablets, one unit: the unique unit_id lets exactly one through
            db.session.add(usage)
    except IntegrityError:
        return _refuse(actor, treatment, "unit", raw_code,
                       [rules.Reason("single-use-never-reused", "unit_used", {"serial": unit.serial})], now,
                       guideline, unit_id=unit.id)
    return GateResult(True, _reason_dicts(reasons, guideline), None, usage)


def verify_manager(actor: Actor, manager_email: str, secret: str, now: datetime, policy: PinPolicy) -> User:
    """A manager of the treatment's site confirms with their password or PIN, on the spot. Wrong answers
    count towards the same lock as wrong PINs on the tablet, so a PIN can't be guessed here either."""
    manager = db.session.scalar(select(User).where(User.email == (manager_email or "").strip().lower()))
    if manager is None or manager.role not in ("manager", "admin") or not manager.is_active_user \
            or manager.organisation_id != actor.organisation_id:
        raise Forbidden(_l("a manager must confirm the override"), field="manager_email")
    if is_pin_locked(manager.pin_locked_until, now):
        raise Forbidden(_l("locked after too many wrong PINs; ask a manager or wait"), field="secret")
    hashes = [h for h in (manager.password_hash, manager.pin_hash) if h]
    if not secret or not any(check_password_hash(h, secret) for h in hashes):
        failure = after_failed_pin(manager.pin_failed_count, policy.max_attempts, policy.lock_minutes, now)
        manager.pin_failed_count, manager.pin_locked_until = failure.failed_count, failure.locked_until
        db.session.add(AuthEvent(kind="override_failed", user_id=manager.id, email=manager.email, at=now,
                                 site_id=None))
        if failure.locked_until:
            db.session.add(AuthEvent(kind="pin_locked", user_id=manager.id, email=manager.email, at=now))
        db.session.flush()
        raise WrongSecret(_l("the manager's password or PIN is not right"), field="secret")
    manager.pin_failed_count = 0
    return manager


class WrongSecret(Forbidden):
    """A wrong manager password or PIN: the edge commits the failure count before answering."""

    keep_changes = True


def override_attempt(actor: Actor, attempt_id: int, data: dict, now: datetime,
                     policy: PinPolicy | None = None) -> GateResult:
    """A manager overrides a refusal with a written reason; the usage is then recorded and the override is a finding."""
    attempt = db.session.get(GateAttempt, attempt_id)
    if attempt is None or attempt.site_id not in actor.site_ids:
        raise NotFound(_l("no such refusal"), field="attempt_id")
    # Asked before the manager's secret: no PIN is spent on a refusal nobody may override.
    guideline = pack_for_site(attempt.site_id)
    never = [r for r in attempt.reasons if guideline.override_for(r.get("code", "")) != "manager"]
    if never:
        raise Conflict(INSTEAD[instead_key(attempt.reasons, guideline.override_for)], field="attempt_id",
                       rule=never[0].get("rule"))
    manager = verify_manager(actor, data.get("manager_email") or "", str(data.get("secret") or ""), now,
                             policy or PinPolicy(5, 15))
    if attempt.site_id not in {s.id for s in manager.sites} and manager.role != "admin":
        raise Forbidden(_l("a manager of this site must confirm the override"), field="manager_email")
    if db.session.scalar(select(GateOverride.id).where(GateOverride.attempt_id == attempt.id)):
        raise Conflict(_l("this refusal was already overridden"), field="attempt_id")
    override = GateOverride(attempt_id=attempt.id, manager_id=manager.id, reason=v.text(data, "reason", 2000),
                            at=now)
    db.session.add(override)
    db.session.flush()
    add = add_pack if attempt.subject == "pack" else add_unit
    result = add(actor, attempt.treatment_id, attempt.scanned, now, override=override)
    if not result.accepted:  # e.g. another tablet used the pack in between: no override without a usage
        blocking = [r for r in result.reasons if guideline.override_for(r.get("code", "")) != "manager"] \
            or result.reasons
        raise Conflict(_l("it can no longer be used: %(codes)s", codes=", ".join(r["code"] for r in result.reasons)),
                       field="attempt_id", rule=blocking[0].get("rule") if blocking else None)
    treatment = db.session.get(Treatment, attempt.treatment_id)
    if treatment.supervised_by_id is None and any(r.get("code") == "training_missing" for r in attempt.reasons):
        treatment.supervised_by_id = manager.id  # trained-practitioner: the manager supervises from here on
        db.session.flush()
    return result




def finish_treatment(actor: Actor, treatment_id: int, data: dict, now: datetime) -> Treatment:
    """Close a treatment: settings, aftercare; units into a named sharps container; devices become dirty."""
    treatment = _open_treatment(actor, treatment_id)
    guideline = pack_for_site(treatment.site_id)
    refused = rules.check_screening(treatment.screening)
    if refused:  # nothing reached the skin as "done" for a client who was not screened or must not be treated
        raise Conflict(FINISH_SCREENING_MESSAGES[refused[0].code], field="screening", rule=refused[0].rule)
    from .screening import run_for

    before_client = run_for(treatment.id)
    if before_client is not None and before_client.completed_at is None:
        raise Conflict(_l("Not finished: the before-client checklist is not complete. Answer its remaining items "
                          "first."), field="screening")
    missing = rules.missing_needle_items(guideline.methods.get(treatment.method or ""),
                                         needle_items([treatment.id]).get(treatment.id, []), guideline.methods)
    if missing:
        raise Conflict(_l("Not finished: the gate has not accepted %(items)s for this client. Scan it before "
                          "finishing, or abandon the treatment.", items=_Titles(missing)), field="items",
                       rule="spaulding-critical")
    passes = v.integer(data, "passes", *rules.PLAUSIBLE_PASSES)
    depth = v.decimal(data, "needle_depth_mm", *rules.PLAUSIBLE_DEPTH_MM, places=2)
    confirmed = v.boolean(data, "passes_confirmed")
    outside = rules.check_passes(passes, confirmed, int(guideline.number("passes-within-range", "min_passes")),
                                 int(guideline.number("passes-within-range", "max_passes")))
    if outside:
        raise Invalid(_l("%(passes)s passes is outside %(min)s–%(max)s: confirm it to record it", **outside[0].values),
                      field="passes_confirmed", rule="passes-within-range")
    ended_at = now
    if data.get("ended_at"):
        try:
            ended_at = datetime.fromisoformat(str(data["ended_at"]).replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(_l("ended_at must be a date and time (ISO 8601)"), field="ended_at") from None
        if ended_at.tzinfo is None:
            raise Invalid(_l("ended_at needs a time zone offset"), field="ended_at")
        v.check_moment(ended_at, "ended_at", now, not_future=True)
    if ended_at < treatment.started_at:
        raise Invalid(_l("the end is before the start"), field="ended_at")
    container = None
    if treatment.units:
        container = db.session.get(SharpsContainer, v.ident(data, "sharps_container_id"))
        if container is None or container.site_id != treatment.site_id or container.closed_at is not None:
            raise NotFound(_l("no open sharps container with this id at this site"), field="sharps_container_id")
    aftercare = v.text(data, "aftercare", 2000, required=False)
    notes = v.text(data, "notes", 4000, required=False)
    products = _products(data.get("products"))
    # Claim the open treatment (a finish and an abandon from two tablets: exactly one wins).
    before = snapshot(treatment, ("status",))
    claimed = db.session.execute(update(Treatment).where(Treatment.id == treatment.id, Treatment.status == "open")
                                 .values(status="finished"))
    if claimed.rowcount != 1:
        db.session.expire(treatment)
        raise Conflict(_l("this treatment was finished or abandoned a moment ago"), field="treatment_id")
    record_claim(treatment, before, {"status": "finished"}, actor=actor)
    treatment.passes, treatment.needle_depth_mm, treatment.passes_confirmed = passes, depth, confirmed
    treatment.aftercare = aftercare
    treatment.notes, treatment.products = notes, products
    treatment.ended_at, treatment.status = ended_at, "finished"
    treatment.sharps_container_id = container.id if container else None
    for usage in treatment.units:
        usage.sharps_container_id = container.id
    _devices_back_to_dirty(actor, treatment, now)
    db.session.flush()
    return treatment


class _Titles:
    """Requirements' titles, joined in the reader's language when the message is shown (at the edge)."""

    def __init__(self, requirements) -> None:
        self.requirements = requirements

    def __str__(self) -> str:
        language = str(get_locale() or "en")
        return ", ".join(req.title_in(language) for req in self.requirements)


FINISH_SCREENING_MESSAGES = {
    "screening_missing": _l("Not finished: the client's screening is not recorded."),
    "active_infection": _l("Not finished: the client has an active skin infection. Abandon the treatment instead."),
}


def needle_items(treatment_ids: list[int]) -> dict[int, list[rules.NeedleItem]]:
    """What the gate accepted for each treatment: its packs (with their devices' Spaulding classes) and its units
    (with their item kind). Two queries whatever the number of treatments."""
    found: dict[int, list[rules.NeedleItem]] = {}
    if not treatment_ids:
        return found
    classes: dict[tuple[int, int], set[str]] = {}
    for treatment_id, pack_id, spaulding in db.session.execute(
            select(TreatmentPack.treatment_id, TreatmentPack.pack_id, DeviceType.spaulding_class)
            .join(PackItem, PackItem.pack_id == TreatmentPack.pack_id)
            .join(Device, Device.id == PackItem.device_id)
            .join(DeviceType, DeviceType.id == Device.device_type_id)
            .where(TreatmentPack.treatment_id.in_(treatment_ids))):
        classes.setdefault((treatment_id, pack_id), set()).add(spaulding)
    for (treatment_id, _pack_id), seen in classes.items():
        found.setdefault(treatment_id, []).append(rules.NeedleItem("pack", frozenset(seen)))
    for treatment_id, kind in db.session.execute(
            select(TreatmentUnit.treatment_id, ItemType.kind).join(Unit, Unit.id == TreatmentUnit.unit_id)
            .join(ItemType, ItemType.id == Unit.item_type_id).where(TreatmentUnit.treatment_id.in_(treatment_ids))):
        found.setdefault(treatment_id, []).append(rules.NeedleItem("unit", unit_kind=kind))
    return found


def needle_checklist(treatment: Treatment, guideline: GuidelinePack) -> list[tuple[Requirement, bool]]:
    """Each needle item the treatment's method needs, and whether the gate has accepted it for this client."""
    items = needle_items([treatment.id]).get(treatment.id, [])
    return [(req, rules.is_met(req, items))
            for req in rules.requirements_for(guideline.methods.get(treatment.method or ""), guideline.methods)]


def unchecked_clause():
    """SQL: a finished treatment that the gate did not check a needle item for. Since finishing requires every
    needle item of the treatment's method, only treatments finished before methods existed (method NULL) can be
    one: those with no gate-accepted needle item at all (a pack holding a critical device, or a single-use unit
    of a needle kind of the pack's methods). A finding on the lists, the dashboard and the audit report."""
    kinds = sorted({o["unit"] for m in load_pack().methods.values() for req in m.requires for o in req.any_of
                    if "unit" in o})
    critical_pack = (select(TreatmentPack.id).join(PackItem, PackItem.pack_id == TreatmentPack.pack_id)
                     .join(Device, Device.id == PackItem.device_id)
                     .join(DeviceType, DeviceType.id == Device.device_type_id)
                     .where(TreatmentPack.treatment_id == Treatment.id, DeviceType.spaulding_class == "critical"))
    needle_unit = (select(TreatmentUnit.id).join(Unit, Unit.id == TreatmentUnit.unit_id)
                   .join(ItemType, ItemType.id == Unit.item_type_id)
                   .where(TreatmentUnit.treatment_id == Treatment.id, ItemType.kind.in_(kinds)))
    return and_(Treatment.status == "finished", Treatment.method.is_(None), ~critical_pack.exists(),
                ~needle_unit.exists())


def unchecked_finished(treatments: list[Treatment]) -> set[int]:
    """Of these treatments, the ones finished without a gate-checked needle item (see unchecked_clause)."""
    ids = [t.id for t in treatments if t.status == "finished" and t.method is None]
    if not ids:
        return set()
    return set(db.session.scalars(select(Treatment.id).where(Treatment.id.in_(ids), unchecked_clause())))


def _devices_back_to_dirty(actor: Actor, treatment: Treatment, now: datetime) -> None:
    """The devices of every pack opened for the treatment were exposed: they go back to be reprocessed."""
    for usage in treatment.packs:
        for item in usage.pack.items:
            change_device_status(item.device, "dirty", actor.user_id, now, kind="used", pack_id=usage.pack_id,
                                 note=f"treatment {treatment.id}")


def abandon_treatment(actor: Actor, treatment_id: int, data: dict, now: datetime) -> Treatment:
    """Stop an open treatment with a written reason. What was opened for the client stays used (single use);
    the devices of its packs go back to be reprocessed, as after finishing."""
    treatment = _open_treatment(actor, treatment_id)
    reason = v.text(data, "reason", 2000)
    if now < treatment.started_at:  # a clock set back since the start: the row's check would refuse it
        raise Invalid(_l("the end is before the start"), field="ended_at")
    # Claim the treatment with a conditional UPDATE: of a finish and an abandon (or two abandons) from two
    # tablets, exactly one changes the row; the other is told what it has become.
    before = snapshot(treatment, ("status", "ended_at", "abandoned_reason", "abandoned_by_id"))
    after = {"status": "abandoned", "ended_at": now, "abandoned_reason": reason, "abandoned_by_id": actor.user_id}
    claimed = db.session.execute(update(Treatment).where(Treatment.id == treatment.id, Treatment.status == "open")
                                 .values(**after).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        db.session.expire(treatment)
        raise Conflict(_l("this treatment is %(status)s", status=treatment.status), field="treatment_id")
    record_claim(treatment, before, after, actor=actor)
    db.session.expire(treatment, ["status", "ended_at", "abandoned_reason", "abandoned_by_id"])
    _devices_back_to_dirty(actor, treatment, now)
    db.session.flush()
    return treatment


def _products(raw) -> list[dict]:
    """Anaesthetic and topical products with their lots: [{"name", "lot"}]."""
    if raw in (None, "", []):
        return []
    if not isinstance(raw, list) or len(raw) > 20:
        raise Invalid(_l("products must be a list of at most 20 items"), field="products")
    out = []
    for item in raw:
        item = item if isinstance(item, dict) else {}
        out.append({"name": v.text(item, "name", 120), "lot": v.text(item, "lot", 40, required=False)})
    return out


def treatments_query(actor: Actor, site_id: int | None = None, client_id: int | None = None,
                     practitioner_id: int | None = None, status: str | None = None, date_from=None,
                     date_to=None) -> Select:
    actor.require("treatments.read")
    stmt = select(Treatment).where(Treatment.site_id.in_(actor.site_ids))
    for column, value in ((Treatment.site_id, site_id), (Treatment.client_id, client_id),
                          (Treatment.practitioner_id, practitioner_id), (Treatment.status, status)):
        if value:
            stmt = stmt.where(column == value)
    if date_from:
        stmt = stmt.where(Treatment.started_at >= date_from)
    if date_to:
        stmt = stmt.where(Treatment.started_at < date_to)
    return stmt.order_by(Treatment.started_at.desc(), Treatment.id.desc())


def open_sharps_container(actor: Actor, data: dict, now: datetime) -> SharpsContainer:
    """sharps-container: a new container in a room, by its label."""
    actor.require("treatments.record")
    site_id = v.ident(data, "site_id")
    actor.require_site(site_id)
    label = v.text(data, "label", 40)
    if existing := db.session.scalar(select(SharpsContainer.id).where(SharpsContainer.site_id == site_id,
                                                                      SharpsContainer.label == label)):
        raise Duplicate(_l("a sharps container with this label already exists"), existing, field="label")
    room_id = data.get("room_id")
    room = db.session.get(Room, int(room_id)) if str(room_id or "").isdigit() else None
    if room_id and (room is None or room.site_id != site_id):
        raise NotFound(_l("no such room"), field="room_id")
    row = SharpsContainer(site_id=site_id, room_id=room.id if room else None, label=label, opened_at=now,
                          opened_by_id=actor.user_id)
    db.session.add(row)
    db.session.flush()
    schedule.refresh_site(site_id, now)  # its change falls due after the pack's days in use
    return row


def close_sharps_container(actor: Actor, container_id: int, disposal_ref: str, now: datetime) -> SharpsContainer:
    actor.require("treatments.record")
    row = db.session.get(SharpsContainer, container_id)
    if row is None or row.site_id not in actor.site_ids:
        raise NotFound(_l("no such sharps container"), field="container_id")
    if row.closed_at is not None:
        raise Conflict(_l("this container is already closed"), field="container_id")
    row.closed_at, row.closed_by_id = now, actor.user_id
    row.disposal_ref = v.text({"disposal_ref": disposal_ref}, "disposal_ref", 120, required=False)
    db.session.flush()
    schedule.subject_closed("sharps_container", row.id, now)  # changing the container does the duty
    return row


# --- adverse events, trace and look-back ---------------------------------------------------------

def record_adverse_event(actor: Actor, treatment_id: int, data: dict, now: datetime) -> AdverseEvent:
    """adverse-event: an effect after a treatment; an infection opens a look-back."""
    actor.require("adverse.record")
    treatment = get_treatment(actor, treatment_id)
    kind = v.choice(data, "kind", ADVERSE_KINDS, labels=ADVERSE_KIND_LABELS)
    onset = data.get("onset_at")
    try:
        onset_at = datetime.fromisoformat(str(onset).replace("Z", "+00:00")) if onset else now
    except ValueError:
        raise Invalid(_l("onset_at must be a date and time (ISO 8601)"), field="onset_at") from None
    if onset_at.tzinfo is None or onset_at < treatment.started_at or onset_at > now + timedelta(minutes=5):
        raise Invalid(_l("the onset must be after the treatment and not in the future"), field="onset_at")
    event = AdverseEvent(treatment_id=treatment.id, site_id=treatment.site_id, kind=kind,
                         severity=v.choice(data, "severity", SEVERITIES, labels=SEVERITY_LABELS),
                         is_reportable=rules.is_reportable(kind),
                         onset_at=onset_at, description=v.text(data, "description", 4000, required=False),
                         follow_up=v.text(data, "follow_up", 4000, required=False), recorded_by_id=actor.user_id,
                         recorded_at=now)
    db.session.add(event)
    db.session.flush()
    if kind == "infection":
        db.session.add(LookBack(site_id=treatment.site_id, adverse_event_id=event.id, opened_at=now,
                                window_days=LOOK_BACK_DAYS))
        db.session.flush()
    return event


LOOK_BACK_DAYS = 90


def exposed_treatments(actor: Actor, *, cycle_id: int | None = None, device_id: int | None = None,
                       lot_id: int | None = None, steriliser_id: int | None = None,
                       practitioner_id: int | None = None, date_from=None, date_to=None) -> Select:
    """look-back: every treatment exposed to a load, a device, a lot, a steriliser or a practitioner."""
    actor.require("trace.read")
    stmt = select(Treatment).where(Treatment.site_id.in_(actor.site_ids))
    if cycle_id or steriliser_id or device_id:
        packs = select(TreatmentPack.treatment_id).join(Pack, Pack.id == TreatmentPack.pack_id)
        if cycle_id:
            packs = packs.where(Pack.cycle_id == cycle_id)
        if steriliser_id:
            packs = packs.join(Cycle, Cycle.id == Pack.cycle_id).where(Cycle.steriliser_id == steriliser_id)
        if device_id:
            packs = packs.join(PackItem, PackItem.pack_id == Pack.id).where(PackItem.device_id == device_id)
        stmt = stmt.where(Treatment.id.in_(packs))
    if lot_id:
        stmt = stmt.where(Treatment.id.in_(select(TreatmentUnit.treatment_id).join(
            Unit, Unit.id == TreatmentUnit.unit_id).where(Unit.lot_id == lot_id)))
    if practitioner_id:
        stmt = stmt.where(Treatment.practitioner_id == practitioner_id)
    if date_from:
        stmt = stmt.where(Treatment.started_at >= date_from)
    if date_to:
        stmt = stmt.where(Treatment.started_at < date_to)
    return stmt.order_by(Treatment.started_at, Treatment.id)


def look_back(actor: Actor, treatment_id: int, window_days: int = LOOK_BACK_DAYS) -> list[Treatment]:
    """Other treatments that shared a device, a load or a single-use lot with this one, within the window."""
    treatment = get_treatment(actor, treatment_id)
    start = treatment.started_at - timedelta(days=window_days)
    end = treatment.started_at + timedelta(days=window_days)
    found: dict[int, Treatment] = {}
    for usage in treatment.packs:
        queries = [exposed_treatments(actor, cycle_id=usage.pack.cycle_id, date_from=start, date_to=end)]
        queries += [exposed_treatments(actor, device_id=item.device_id, date_from=start, date_to=end)
                    for item in usage.pack.items]
        for query in queries:
            for other in db.session.scalars(query):
                found.setdefault(other.id, other)
    for usage in treatment.units:
        for other in db.session.scalars(exposed_treatments(actor, lot_id=usage.unit.lot_id, date_from=start,
                                                           date_to=end)):
            found.setdefault(other.id, other)
    found.pop(treatment.id, None)
    return sorted(found.values(), key=lambda t: (t.started_at, t.id))


def recall_treatments(actor: Actor, recall_id: int) -> list[Treatment]:
    """The treatments (and so the clients) that a recall's loads reached."""
    from ..sterilisation.services import get_recall

    recall = get_recall(actor, recall_id)
    cycle_ids = [load.cycle_id for load in recall.loads]
    if not cycle_ids:
        return []
    packs = select(TreatmentPack.treatment_id).join(Pack, Pack.id == TreatmentPack.pack_id).where(
        Pack.cycle_id.in_(cycle_ids))
    return list(db.session.scalars(select(Treatment).where(Treatment.id.in_(packs))
                                   .order_by(Treatment.started_at, Treatment.id)))
