"""Steriliser tests, reprocessing, packs, cycles, release and recall: actor + values + now in, flushed, never committed."""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..audit.services import record_claim, snapshot
from .. import validation as v
from ..labels import field_label
from ..auth.actor import Actor
from ..devices.models import Device, DeviceEvent, Programme, Steriliser, SteriliserStatusChange
from ..devices.services import change_device_status, get_steriliser, set_steriliser_service
from ..errors import Conflict, Duplicate, Forbidden, Invalid, NotFound
from ..extensions import db
from ..guidelines import Pack as GuidelinePack
from ..guidelines.services import pack_for_site
from ..sites.models import Site, TrainingRecord, User
from ..timeutil import local_today
from . import rules
from ..schedule import services as schedule
from .messages import reason_text
# Words for the codes a refused choice lists (the forms module holds only labels and form classes).
from .forms import (CLEANING_LABELS, COMPROMISE_LABELS, CONTROL_LABELS, PACKAGING_LABELS, TEST_KIND_LABELS,
                    TEST_RESULT_LABELS)
from .models import (
    COMPROMISE_REASONS,
    PACKAGINGS,
    TEST_KINDS,
    Cycle,
    CurveFile,
    CycleCorrection,
    CycleCurve,
    Pack,
    PackItem,
    Recall,
    RecallLoad,
    SteriliserTest,
)

LABEL_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed on a tablet
USABLE_PACK_STATUSES = ("sterile",)


def limits_for(pack: GuidelinePack) -> rules.Limits:
    """The rule numbers in force, from the guideline pack with the site's overrides."""
    return rules.Limits(
        max_temperature_over_set_c=Decimal(str(pack.number("cycle-parameters-met", "max_temperature_over_set_c"))),
        min_indicator_class_without_printout=int(pack.number("per-load-indicators", "min_class_without_printout")),
        spore_overdue_after_days=int(pack.number("spore-test", "overdue_after_days")),
    )


def _check_records(steriliser_id: int, until: datetime) -> list[rules.CheckRecord]:
    """The tests the verdict needs: air-removal tests of the last two days and the recent spore tests."""
    rows = db.session.execute(select(SteriliserTest.kind, SteriliserTest.performed_at, SteriliserTest.result).where(
        SteriliserTest.steriliser_id == steriliser_id, SteriliserTest.performed_at <= until,
        SteriliserTest.kind.in_(("air_removal", "spore")),
        SteriliserTest.performed_at >= until - timedelta(days=90)))
    return [rules.CheckRecord(kind, at, result) for kind, at, result in rows]


# --- steriliser tests --------------------------------------------------------------------------

def tests_query(actor: Actor, steriliser_id: int | None = None, kind: str | None = None,
                result: str | None = None, date_from=None, date_to=None) -> Select:
    actor.require("sterilisation.read")
    stmt = select(SteriliserTest).where(SteriliserTest.site_id.in_(actor.site_ids))
    if steriliser_id:
        stmt = stmt.where(SteriliserTest.steriliser_id == steriliser_id)
    if kind:
        stmt = stmt.where(SteriliserTest.kind == kind)
    if result:
        stmt = stmt.where(SteriliserTest.result == result)
    if date_from:
        stmt = stmt.where(SteriliserTest.performed_at >= date_from)
    if date_to:
        stmt = stmt.where(SteriliserTest.performed_at < date_to)
    return stmt.order_by(SteriliserTest.performed_at.desc(), SteriliserTest.id.desc())


def get_test(actor: Actor, test_id: int) -> SteriliserTest:
    actor.require("sterilisation.read")
    row = db.session.get(SteriliserTest, test_id)
    if row is None or row.site_id not in actor.site_ids:
        raise NotFound(_l("no such steriliser test"), field="test_id")
    return row


def _datetime(data: dict, name: str, now: datetime) -> datetime:
    value = data.get(name)
    if value in (None, ""):
        return now
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(_l("%(field)s must be a date and time (ISO 8601)", field=field_label(name)),
                          field=name) from None
    if moment.tzinfo is None:
        raise Invalid(_l("%(field)s needs a time zone offset", field=field_label(name)), field=name)
    return v.check_moment(moment, name, now, not_future=True)


def _fingerprint(values: dict) -> str:
    """What a request meant, as read by a service (134.5 and "134.5" alike): a replay of its idempotency key must
    mean the same."""
    def plain(value):
        if isinstance(value, datetime):
            return value.astimezone(timezone.utc).isoformat()  # one instant, whatever offset it was sent with
        if isinstance(value, Decimal):
            return format(value.normalize(), "f")  # 0.5 and 0.50 are one reading
        return str(value)

    return hashlib.sha256(json.dumps(values, sort_keys=True, default=plain).encode()).hexdigest()


def _in_reach(actor: Actor, row) -> int | None:
    """The id of an existing record for a 409, when the caller may know of it."""
    return row.id if row.site_id in actor.site_ids else None


def _authored_by(actor: Actor, user_id: int | None, api_key_id: int | None) -> bool:
    return (user_id, api_key_id) == (actor.user_id, actor.api_key_id)


def _replayed_test(actor: Actor, key: str, fingerprint: str, site_id: int) -> SteriliserTest | None:
    """The test stored under this key, when this request is a replay of it (same site, author and values)."""
    existing = db.session.scalar(select(SteriliserTest).where(SteriliserTest.idempotency_key == key))
    if existing is None:
        return None
    if (existing.site_id != site_id or existing.idempotency_fingerprint != fingerprint
            or not _authored_by(actor, existing.performed_by_id, existing.api_key_id)):
        raise Duplicate(_l("this idempotency key was used for another steriliser test"), _in_reach(actor, existing),
                        field="idempotency_key")
    existing.replayed = True
    return existing


def record_test(actor: Actor, data: dict, now: datetime) -> SteriliserTest:
    """Record a steriliser test. A failed test takes the steriliser out of service; a failed spore test recalls.

    With an idempotency key, a replay (same key, site, author and values) stores nothing and returns the test stored
    the first time (`replayed` set); another use of the key is a Duplicate. The same test (steriliser, kind, time
    and result) posted again without the key is a Duplicate too."""
    actor.require("tests.record")
    key = v.idempotency_key(data)
    steriliser = get_steriliser(actor, v.ident(data, "steriliser_id"))
    kind = v.choice(data, "kind", TEST_KINDS, labels=TEST_KIND_LABELS)
    result = v.choice(data, "result", ("pending", "pass", "fail") if kind == "spore" else ("pass", "fail"),
                      labels=TEST_RESULT_LABELS)
    if kind in ("air_removal", "leak") and steriliser.type == "N":
        raise Invalid(_l("a type N steriliser has no air-removal or leak test"), field="kind",
                      rule="air-removal-test-daily")
    performed_at = _datetime(data, "performed_at", now)
    added_on = local_today(db.session.get(Site, steriliser.site_id).timezone, steriliser.created_at)
    if local_today(db.session.get(Site, steriliser.site_id).timezone, performed_at) < added_on:
        raise Invalid(_l("performed_at is before this steriliser was added (%(day)s)", day=added_on.isoformat()),
                      field="performed_at")
    test = SteriliserTest(
        site_id=steriliser.site_id, steriliser_id=steriliser.id, kind=kind,
        performed_at=performed_at, performed_by_id=actor.user_id,
        performed_by_name=v.text(data, "performed_by_name", 200, required=False),
        api_key_id=actor.api_key_id,
        result=result, indicator_lot=v.text(data, "indicator_lot", 80, required=kind == "spore"),
        control_result=v.choice(data, "control_result", ("grew", "no_growth"), required=False,
                                labels=CONTROL_LABELS),
        measured_value=v.decimal(data, "measured_value", Decimal("0"), Decimal("1000"), required=False,
                                 places=2),
        certificate_ref=v.text(data, "certificate_ref", 200, required=kind in ("validation", "calibration")),
        notes=v.text(data, "notes", 2000, required=False), created_at=now)
    if kind == "leak" and test.measured_value is not None:
        limit = Decimal(str(pack_for_site(steriliser.site_id).number("weekly-leak-test",
                                                                   "max_pressure_rise_mbar_per_min")))
        if (test.measured_value > limit) != (result == "fail"):
            raise Invalid(_l("a leak rate of %(value)s mbar/min is a %(verdict)s (limit %(limit)s)",
                             value=test.measured_value, limit=limit,
                             verdict=_l("fail") if test.measured_value > limit else _l("pass")),
                          field="result", rule="weekly-leak-test")
    _check_spore_control(test)
    given_at = None if data.get("performed_at") in (None, "") else performed_at
    test.idempotency_key = key
    test.idempotency_fingerprint = None if key is None else _fingerprint({
        "steriliser_id": steriliser.id, "kind": kind, "result": result, "performed_at": given_at,
        **{name: getattr(test, name) for name in ("performed_by_name", "indicator_lot", "control_result",
                                                  "measured_value", "certificate_ref", "notes")}})
    if key is not None and (replay := _replayed_test(actor, key, test.idempotency_fingerprint,
                                                     steriliser.site_id)) is not None:
        return replay
    if given_at is not None:
        _refuse_same_test(actor, test)
    if result != "pending":
        test.result_at, test.result_by_id = now, actor.user_id
    try:
        with db.session.begin_nested():
            db.session.add(test)
    except IntegrityError:  # the same key arrived twice at once: the first test stands
        if key is None or (winner := _replayed_test(actor, key, test.idempotency_fingerprint,
                                                    steriliser.site_id)) is None:
            raise
        return winner
    _after_result(actor, steriliser, test, now)
    schedule.steriliser_test_recorded(steriliser.site_id, steriliser.id, kind, result, test.performed_at, now,
                                      record=f"steriliser_test:{test.id}", by_id=actor.user_id)
    return test


def _refuse_same_test(actor: Actor, test: SteriliserTest) -> None:
    """One steriliser can't have two tests of one kind with the same result at the same moment: a repost."""
    existing = db.session.scalar(select(SteriliserTest).where(
        SteriliserTest.steriliser_id == test.steriliser_id, SteriliserTest.kind == test.kind,
        SteriliserTest.performed_at == test.performed_at, SteriliserTest.result == test.result).limit(1))
    if existing is not None:
        raise Duplicate(_l("this test is already recorded (the same steriliser, kind, time and result)"),
                        _in_reach(actor, existing), field="performed_at")


def _check_spore_control(test: SteriliserTest) -> None:
    # A spore test only passes when the unprocessed control from the same lot grew (the indicator was alive).
    if test.kind == "spore" and test.result == "pass" and test.control_result != "grew":
        raise Invalid(_l("a spore test passes only when its control from the same lot grew"),
                      field="control_result", rule="spore-test")


def record_test_result(actor: Actor, test_id: int, data: dict, now: datetime) -> SteriliserTest:
    """Read a pending spore test: pass or fail, with the control's result."""
    actor.require("tests.record")
    test = get_test(actor, test_id)
    if test.result != "pending":
        raise Conflict(_l("this test already has its result; record a new test instead"), field="result")
    result = v.choice(data, "result", ("pass", "fail"), labels=TEST_RESULT_LABELS)
    control = v.choice(data, "control_result", ("grew", "no_growth"), required=result == "pass",
                       labels=CONTROL_LABELS)
    if result == "pass" and control != "grew":
        raise Invalid(_l("a spore test passes only when its control from the same lot grew"),
                      field="control_result", rule="spore-test")
    # Claim the pending row: two tablets reading the same indicator store one result.
    values = {"result": result, "control_result": control, "result_at": now, "result_by_id": actor.user_id}
    before = snapshot(test, values)
    claimed = db.session.execute(update(SteriliserTest).where(
        SteriliserTest.id == test.id, SteriliserTest.result == "pending").values(**values))
    if claimed.rowcount != 1:
        raise Conflict(_l("this test already has its result"), field="result")
    record_claim(test, before, values, actor=actor)
    db.session.refresh(test)
    _after_result(actor, get_steriliser(actor, test.steriliser_id), test, now)
    return test


def _after_result(actor: Actor, steriliser: Steriliser, test: SteriliserTest, now: datetime) -> None:
    """failed-test-recall: a fail takes the steriliser out of service (a spore fail recalls loads);
    a pass of the kind that failed returns it, after a spore fail only once enough consecutive passes are in."""
    if test.result == "fail":
        set_steriliser_service(steriliser, False, f"failed {test.kind} test", actor.user_id, now, test.id)
        if test.kind == "spore":
            open_recall(actor, steriliser, test, now)
    elif test.result == "pass" and not steriliser.is_in_service:
        last_out = db.session.scalar(select(SteriliserStatusChange).where(
            SteriliserStatusChange.steriliser_id == steriliser.id, SteriliserStatusChange.is_in_service.is_(False))
            .order_by(SteriliserStatusChange.at.desc(), SteriliserStatusChange.id.desc()))
        cause = db.session.get(SteriliserTest, last_out.test_id) if last_out and last_out.test_id else None
        if cause is None or cause.kind != test.kind:
            return  # taken out by hand or by another test: a manager or that test returns it
        if test.kind == "spore":
            required = int(pack_for_site(steriliser.site_id).number("failed-test-recall",
                                                                    "empty_chamber_cycles_before_return"))
            if not rules.may_return_to_service(consecutive_spore_passes(steriliser.id), required):
                return
        set_steriliser_service(steriliser, True, f"passing {test.kind} test", actor.user_id, now, test.id)
    db.session.flush()


def consecutive_spore_passes(steriliser_id: int) -> int:
    """Passing spore tests since the last failing one."""
    last_fail = db.session.scalar(select(func.max(SteriliserTest.performed_at)).where(
        SteriliserTest.steriliser_id == steriliser_id, SteriliserTest.kind == "spore",
        SteriliserTest.result == "fail"))
    stmt = select(func.count()).select_from(SteriliserTest).where(
        SteriliserTest.steriliser_id == steriliser_id, SteriliserTest.kind == "spore",
        SteriliserTest.result == "pass")
    if last_fail is not None:
        stmt = stmt.where(SteriliserTest.performed_at > last_fail)
    return db.session.scalar(stmt)


# --- reprocessing and packs --------------------------------------------------------------------

def _devices(actor: Actor, data: dict) -> list[Device]:
    raw = data.get("device_ids") or []
    if isinstance(raw, (str, int)):
        raw = [raw]
    try:
        ids = sorted({int(x) for x in raw})
    except (TypeError, ValueError):
        raise Invalid(_l("device_ids must be device numbers"), field="device_ids") from None
    if not ids:
        raise Invalid(_l("choose at least one device"), field="device_ids")
    devices = list(db.session.scalars(select(Device).where(Device.id.in_(ids))))
    if len(devices) != len(ids) or any(d.site_id not in actor.site_ids for d in devices):
        raise NotFound(_l("no such device"), field="device_ids")
    return devices


def record_cleaning(actor: Actor, data: dict, now: datetime) -> list[Device]:
    """clean-before-sterilise, step 1: dirty devices are cleaned (how: washer, ultrasonic, manual)."""
    actor.require("reprocess.record")
    devices = _devices(actor, data)
    method = v.choice(data, "method", ("washer_disinfector", "ultrasonic", "manual"), labels=CLEANING_LABELS)
    for device in devices:
        if device.status not in ("dirty", "in_reprocessing"):
            raise Conflict(_l("%(serial)s is %(status)s, not waiting to be cleaned", serial=device.serial,
                              status=device.status), field="device_ids", rule="clean-before-sterilise")
        change_device_status(device, "in_reprocessing", actor.user_id, now, kind="cleaned", method=method)
    db.session.flush()
    return devices


def record_inspection(actor: Actor, data: dict, now: datetime) -> list[Device]:
    """clean-before-sterilise, step 2: cleaned devices are inspected; a damaged one is quarantined."""
    actor.require("reprocess.record")
    devices = _devices(actor, data)
    passed = v.boolean(data, "passed")
    note = v.text(data, "note", 2000, required=not passed)
    for device in devices:
        if _last_step(device.id) != "cleaned":
            raise Conflict(_l("%(serial)s has not been cleaned since it was last used", serial=device.serial),
                           field="device_ids", rule="clean-before-sterilise")
        change_device_status(device, "in_reprocessing" if passed else "quarantined", actor.user_id, now,
                             kind="inspected" if passed else "inspection_failed", note=note)
    db.session.flush()
    return devices


def _last_step(device_id: int) -> str | None:
    return db.session.scalar(select(DeviceEvent.kind).where(DeviceEvent.device_id == device_id)
                             .order_by(DeviceEvent.at.desc(), DeviceEvent.id.desc()).limit(1))


def new_label_code() -> str:
    return "PK-" + "".join(secrets.choice(LABEL_ALPHABET) for _ in range(8))


def create_pack(actor: Actor, data: dict, now: datetime) -> Pack:
    """clean-before-sterilise, step 3: inspected devices of one site go into a pouch or wrap with a new label."""
    actor.require("reprocess.record")
    devices = _devices(actor, data)
    packaging = v.choice(data, "packaging", PACKAGINGS, labels=PACKAGING_LABELS)
    site_ids = {d.site_id for d in devices}
    if len(site_ids) != 1:
        raise Invalid(_l("a pack holds devices of one site"), field="device_ids")
    for device in devices:
        if _last_step(device.id) != "inspected":
            raise Conflict(_l("%(serial)s must be cleaned and inspected before packing", serial=device.serial),
                           field="device_ids", rule="clean-before-sterilise")
        if device.max_cycles is not None and device.reprocessing_count >= device.max_cycles:
            raise Conflict(_l("%(serial)s has reached its maker's limit of %(max)s reprocessing cycles",
                              serial=device.serial, max=device.max_cycles), field="device_ids")
    pack = Pack(site_id=site_ids.pop(), label_code=new_label_code(), packaging=packaging, status="packed",
                packed_by_id=actor.user_id, packed_at=now)
    db.session.add(pack)
    db.session.flush()
    for device in devices:
        db.session.add(PackItem(pack_id=pack.id, device_id=device.id))
        change_device_status(device, "in_reprocessing", actor.user_id, now, kind="packed", pack_id=pack.id)
    db.session.flush()
    return pack


def create_packs(actor: Actor, data: dict, now: datetime) -> list[Pack]:
    """The pack step: each ticked device in a pack of its own (a label each), unless `together` asks for one pack
    holding them all. All or nothing: one device that may not be packed refuses the lot."""
    if v.boolean(data, "together"):
        return [create_pack(actor, data, now)]
    ids = data.get("device_ids") or []
    ids = [ids] if isinstance(ids, (str, int)) else list(dict.fromkeys(ids))
    if not ids:
        return [create_pack(actor, data, now)]  # refused there, with its message
    return [create_pack(actor, {**data, "device_ids": [device_id]}, now) for device_id in ids]


def label_code_from_scan(raw: str) -> str:
    """A typed code, or the URL in the label's QR code (…/p/PK-XXXXXXXX)."""
    text = (raw or "").strip()
    if "/p/" in text:
        text = text.rsplit("/p/", 1)[1]
    return text.strip("/ ").upper()


def find_pack(actor: Actor, raw_code: str) -> Pack:
    """The pack a label (typed or scanned) belongs to, in the actor's sites."""
    actor.require("sterilisation.read")
    code = label_code_from_scan(raw_code)
    if not code or len(code) > 24:
        raise Invalid(_l("type or scan a pack label"), field="code")
    pack = db.session.scalar(select(Pack).where(Pack.label_code == code))
    if pack is None or pack.site_id not in actor.site_ids:
        raise NotFound(_l("no pack with the label %(code)s", code=code), field="code")
    return pack


def get_pack(actor: Actor, pack_id: int) -> Pack:
    actor.require("sterilisation.read")
    pack = db.session.get(Pack, pack_id)
    if pack is None or pack.site_id not in actor.site_ids:
        raise NotFound(_l("no such pack"), field="pack_id")
    return pack


def packs_query(actor: Actor, site_id: int | None = None, status: str | None = None,
                cycle_id: int | None = None) -> Select:
    actor.require("sterilisation.read")
    stmt = select(Pack).where(Pack.site_id.in_(actor.site_ids))
    if site_id:
        stmt = stmt.where(Pack.site_id == site_id)
    if status:
        stmt = stmt.where(Pack.status == status)
    if cycle_id:
        stmt = stmt.where(Pack.cycle_id == cycle_id)
    return stmt.order_by(Pack.packed_at.desc(), Pack.id.desc())


def pack_history(pack: Pack) -> list[DeviceEvent]:
    """Every event that names this pack (packing, sterilising, compromise, recall, use)."""
    return list(db.session.scalars(select(DeviceEvent).where(DeviceEvent.pack_id == pack.id)
                                   .order_by(DeviceEvent.at, DeviceEvent.id)))


def compromise_pack(actor: Actor, raw_code: str, data: dict, now: datetime) -> Pack:
    """sterile-storage: a torn, wet, dropped or opened pack is not sterile; its devices go back to dirty."""
    actor.require("reprocess.record")
    pack = find_pack(actor, raw_code)
    if pack.status not in ("packed", "loaded", "sterile"):
        raise Conflict(_l("this pack is already %(status)s", status=pack.status), field="code")
    reason = v.choice(data, "reason", COMPROMISE_REASONS, labels=COMPROMISE_LABELS)
    note = v.text(data, "note", 2000, required=reason == "other")
    pack.status, pack.compromised_reason, pack.compromised_note = "compromised", reason, note
    pack.compromised_by_id, pack.compromised_at = actor.user_id, now
    for item in pack.items:
        change_device_status(item.device, "dirty", actor.user_id, now, kind="pack_compromised", pack_id=pack.id,
                             note=reason)
    db.session.flush()
    return pack


def oldest_usable_pack(actor: Actor, site_id: int, device_type_id: int, now: datetime) -> Pack | None:
    """First in, first out: the sterile, in-date pack of this kind that expires soonest."""
    actor.require("sterilisation.read")
    actor.require_site(site_id)
    return db.session.scalar(
        select(Pack).join(PackItem).join(Device).where(
            Pack.site_id == site_id, Pack.status == "sterile", Pack.expires_at > now,
            Device.device_type_id == device_type_id)
        .order_by(Pack.expires_at, Pack.id).limit(1))


# --- cycles ------------------------------------------------------------------------------------

def next_cycle_number(steriliser_id: int) -> int:
    return (db.session.scalar(select(func.max(Cycle.cycle_number)).where(Cycle.steriliser_id == steriliser_id))
            or 0) + 1


def _pack_codes(data: dict) -> list[str]:
    """The labels of a load, as typed, scanned or posted (one per line, or a list), each once."""
    raw = data.get("pack_codes") or []
    if isinstance(raw, str):
        raw = [c for c in raw.replace(",", "\n").splitlines() if c.strip()]
    codes = []
    for code in raw:
        code = label_code_from_scan(str(code))
        if code and code not in codes:
            codes.append(code)
    return codes


def _packs_for_cycle(actor: Actor, steriliser: Steriliser, codes: list[str]) -> list[Pack]:
    packs = []
    for code in codes:
        pack = db.session.scalar(select(Pack).where(Pack.label_code == code))
        if pack is None or pack.site_id not in actor.site_ids:
            raise NotFound(_l("no pack with the label %(code)s", code=code), field="pack_codes")
        if pack.site_id != steriliser.site_id:
            raise Invalid(_l("pack %(code)s belongs to another site", code=code), field="pack_codes")
        if pack.status != "packed" or pack.cycle_id is not None:
            raise Conflict(_l("pack %(code)s is already in a load or not ready (%(status)s)", code=code,
                              status=pack.status), field="pack_codes")
        packs.append(pack)
    return packs


class UnconfirmedFailure(Conflict):
    """The rules would fail a load from figures a person typed: nothing is stored until they confirm them."""

    def __init__(self, verdict: rules.Verdict):
        texts = " ".join(reason_text(r.as_dict()) for r in verdict.reasons)
        super().__init__(_l("The checks would fail this load: %(reasons)s If these are the figures on the printout, "
                            "send them again with confirm_failure set to true to record the load as failed.",
                            reasons=texts), field="confirm_failure")
        self.verdict = verdict

    def details(self) -> dict:
        return {"reasons": [{**r.as_dict(), "message": reason_text(r.as_dict())} for r in self.verdict.reasons]}


def _figures_from(data: dict) -> rules.CycleFigures:
    """The figures read off a printout and the indicator; a reading no steriliser shows is a typing mistake (422)."""
    lo_t, hi_t = rules.PLAUSIBLE_TEMPERATURE_C
    lo_p, hi_p = rules.PLAUSIBLE_PRESSURE_KPA
    return rules.CycleFigures(
        temperature_c=v.decimal(data, "temperature_c", lo_t, hi_t),
        holding_seconds=v.integer(data, "holding_seconds", *rules.PLAUSIBLE_HOLDING_SECONDS),
        pressure_kpa=v.decimal(data, "pressure_kpa", lo_p, hi_p, required=False),
        indicator_passed=v.choice(data, "indicator_result", ("pass", "fail"), labels=TEST_RESULT_LABELS) == "pass",
        indicator_class=v.integer(data, "indicator_class", 1, 6, required=False),
        printout_ref=v.text(data, "printout_ref", 200, required=False))


def figures_of(cycle: Cycle) -> rules.CycleFigures:
    """The figures a load holds now (the corrected ones, once corrected)."""
    return rules.CycleFigures(cycle.temperature_c, cycle.holding_seconds, cycle.pressure_kpa, cycle.indicator_passed,
                              cycle.indicator_class, cycle.printout_ref)


def _judge(site: Site, steriliser: Steriliser, programme: Programme, figures: rules.CycleFigures, packs: list[Pack],
           started_at: datetime, is_in_service: bool,
           machine: CycleCurve | None = None) -> tuple[rules.Verdict, GuidelinePack]:
    """The one place a load is judged (recorded, corrected, or met by the steriliser's own record): the rules with
    the numbers in force at the site. With a judged machine record, the figures' reasons are the curve's (holding
    in the band, saturated steam, pressure), not a check of single figures: the steriliser's record wins."""
    devices = [item.device for pack in packs for item in pack.items]
    load = rules.LoadSpec(has_wrapped=any(p.packaging != "unwrapped" for p in packs),
                          has_hollow=any(d.device_type.is_hollow for d in devices))
    guideline = pack_for_site(site.id)
    verdict = rules.cycle_verdict(
        rules.ProgrammeSpec(programme.temperature_c, programme.min_holding_seconds, programme.min_pressure_kpa),
        figures, rules.SteriliserSpec(steriliser.type, steriliser.is_validated_for_wrapped, is_in_service,
                                      site.timezone),
        load, _check_records(steriliser.id, started_at), started_at, limits_for(guideline))
    if machine is not None and machine.is_judged:
        verdict = rules.with_curve_reasons(verdict, [rules.Reason(r["rule"], r["code"], r.get("values") or {})
                                                     for r in machine.reasons])
    return verdict, guideline


def machine_figures(machine: CycleCurve, typed: rules.CycleFigures) -> rules.CycleFigures:
    """The figures a load holds once the steriliser's record of it is imported: the lowest temperature and pressure
    during the holding stretch and its length (whole seconds), each rounded down so a figure never reads better than
    the curve; the indicator and printout stay as typed (the machine doesn't see them). Without a stretch in the
    band: the highest temperature reached and no holding time."""
    def down(value, places="0.1"):
        return None if value is None else Decimal(str(value)).quantize(Decimal(places), rounding=ROUND_FLOOR)

    if machine.holding_start_s is None:
        return replace(typed, temperature_c=down(machine.max_temperature_c), holding_seconds=0, pressure_kpa=None)
    rows = json.loads(machine.samples)
    start, end = float(machine.holding_start_s), float(machine.holding_end_s)
    inside = [r for r in rows if start <= r[0] <= end]
    return replace(typed, temperature_c=down(min(r[1] for r in inside)),
                   holding_seconds=int(down(machine.holding_seconds, "1")),
                   pressure_kpa=down(min(r[2] for r in inside)))


def _refuse_same_number(actor: Actor, steriliser: Steriliser, number: int) -> None:
    existing = db.session.scalar(select(Cycle).where(Cycle.steriliser_id == steriliser.id,
                                                     Cycle.cycle_number == number))
    if existing is not None:
        raise Duplicate(_l("cycle number %(number)s is already recorded for this steriliser", number=number),
                        _in_reach(actor, existing), field="cycle_number")


def _replayed_cycle(actor: Actor, key: str, fingerprint: str, site_id: int) -> Cycle | None:
    """The load stored under this key, when this request is a replay of it (same site, author and values)."""
    existing = db.session.scalar(select(Cycle).where(Cycle.idempotency_key == key))
    if existing is None:
        return None
    if (existing.site_id != site_id or existing.idempotency_fingerprint != fingerprint
            or not _authored_by(actor, existing.loaded_by_id, existing.api_key_id)):
        raise Duplicate(_l("this idempotency key was used for another load"), _in_reach(actor, existing),
                        field="idempotency_key")
    existing.replayed = True
    return existing


def record_cycle(actor: Actor, data: dict, now: datetime, confirm_failure: bool = False) -> Cycle:
    """Record a load and judge it by the rules: awaiting release when every rule passes, failed otherwise.

    A failing verdict on figures a person typed is stored only with confirm_failure (else UnconfirmedFailure, before
    anything is added): one mistyped digit must not fail a load for good. A data logger's verdict is stored as is.
    An idempotency key works as for tests: a replay returns the load stored the first time (`replayed` set), as it
    is now; another use of the key, or a cycle number used before, is a Duplicate naming the existing load."""
    actor.require("cycles.record")
    key = v.idempotency_key(data)
    steriliser = get_steriliser(actor, v.ident(data, "steriliser_id"))
    programme_id = data.get("programme_id") or (steriliser.programmes[0].id if steriliser.programmes else None)
    programme = db.session.get(Programme, int(programme_id)) if str(programme_id or "").isdigit() else None
    if programme is None or programme.steriliser_id != steriliser.id or not programme.is_active:
        raise NotFound(_l("no such programme on this steriliser"), field="programme_id")
    given_number = v.integer(data, "cycle_number", 1, 10**9, required=False)
    started_at = _datetime(data, "started_at", now)
    figures = _figures_from(data)
    codes = _pack_codes(data)
    fingerprint = None if key is None else _fingerprint({
        "steriliser_id": steriliser.id, "programme_id": programme.id, "cycle_number": given_number,
        "started_at": None if data.get("started_at") in (None, "") else started_at,
        "figures": asdict(figures), "pack_codes": sorted(codes)})
    if key is not None and (replay := _replayed_cycle(actor, key, fingerprint, steriliser.site_id)) is not None:
        return replay
    number = given_number or next_cycle_number(steriliser.id)
    _refuse_same_number(actor, steriliser, number)
    packs = _packs_for_cycle(actor, steriliser, codes)
    site = db.session.get(Site, steriliser.site_id)
    typed = figures
    machine = _machine_record_of(steriliser.id, number)
    if machine is not None and machine.is_judged:  # the steriliser's record came first: its figures win
        figures = machine_figures(machine, typed)
    else:
        machine = None
    verdict, guideline = _judge(site, steriliser, programme, figures, packs, started_at, steriliser.is_in_service,
                                machine)
    if not verdict.passed and not confirm_failure and actor.api_key_id is None:
        raise UnconfirmedFailure(verdict)
    cycle = Cycle(site_id=site.id, steriliser_id=steriliser.id, cycle_number=number, programme_id=programme.id,
                  started_at=started_at, temperature_c=figures.temperature_c, pressure_kpa=figures.pressure_kpa,
                  holding_seconds=figures.holding_seconds, printout_ref=figures.printout_ref,
                  indicator_class=figures.indicator_class, indicator_passed=figures.indicator_passed,
                  is_verdict_pass=verdict.passed, reasons=[r.as_dict() for r in verdict.reasons],
                  status="awaiting_release" if verdict.passed else "failed", loaded_by_id=actor.user_id,
                  api_key_id=actor.api_key_id, guideline_version=guideline.version, created_at=now,
                  idempotency_key=key, idempotency_fingerprint=fingerprint)
    if not verdict.passed:
        cycle.decided_at = now  # failed by the rules, not by a person
    try:
        with db.session.begin_nested():
            db.session.add(cycle)
    except IntegrityError:  # the same key, or the same number, arrived twice at once: the first load stands
        if key is not None and (winner := _replayed_cycle(actor, key, fingerprint, steriliser.site_id)) is not None:
            return winner
        _refuse_same_number(actor, steriliser, number)
        raise
    for pack in packs:
        pack.cycle_id = cycle.id
        pack.status = "loaded" if verdict.passed else "failed"
        for item in pack.items:
            change_device_status(item.device, "in_reprocessing" if verdict.passed else "dirty", actor.user_id, now,
                                 kind="loaded" if verdict.passed else "load_failed", pack_id=pack.id,
                                 cycle_id=cycle.id)
    if machine is not None:
        typed_verdict, _ = _judge(site, steriliser, programme, typed, packs, started_at, steriliser.is_in_service)
        _append_machine_correction(actor, cycle, machine, typed, figures, typed_verdict, verdict, cycle.status,
                                   cycle.status, guideline, now)
    db.session.flush()
    return cycle


def cycles_query(actor: Actor, steriliser_id: int | None = None, status: str | None = None,
                 verdict: str | None = None, date_from=None, date_to=None) -> Select:
    """The steriliser logbook: loads newest first, filtered by steriliser, status, verdict and dates (UTC bounds)."""
    actor.require("sterilisation.read")
    stmt = select(Cycle).where(Cycle.site_id.in_(actor.site_ids))
    if steriliser_id:
        stmt = stmt.where(Cycle.steriliser_id == steriliser_id)
    if status:
        stmt = stmt.where(Cycle.status == status)
    if verdict in ("pass", "fail"):
        stmt = stmt.where(Cycle.is_verdict_pass.is_(verdict == "pass"))
    if date_from:
        stmt = stmt.where(Cycle.started_at >= date_from)
    if date_to:
        stmt = stmt.where(Cycle.started_at < date_to)
    return stmt.order_by(Cycle.started_at.desc(), Cycle.id.desc())


def get_cycle(actor: Actor, cycle_id: int) -> Cycle:
    actor.require("sterilisation.read")
    cycle = db.session.get(Cycle, cycle_id)
    if cycle is None or cycle.site_id not in actor.site_ids:
        raise NotFound(_l("no such load"), field="cycle_id")
    return cycle


def _has_valid_training(user_id: int | None, course: str, day) -> bool:
    if user_id is None:
        return False
    return db.session.scalar(select(func.count()).select_from(TrainingRecord).where(
        TrainingRecord.user_id == user_id, TrainingRecord.course == course, TrainingRecord.is_active.is_(True),
        TrainingRecord.completed_on <= day,
        (TrainingRecord.expires_on.is_(None)) | (TrainingRecord.expires_on >= day))) > 0


def _machine_record_of(steriliser_id: int, cycle_number: int) -> CycleCurve | None:
    return db.session.scalar(select(CycleCurve).where(CycleCurve.steriliser_id == steriliser_id,
                                                      CycleCurve.cycle_number == cycle_number))


def _machine_record(cycle: Cycle) -> CycleCurve | None:
    """The steriliser's own record of a load (the same steriliser and cycle number), if one was imported."""
    return _machine_record_of(cycle.steriliser_id, cycle.cycle_number)


def release_cycle(actor: Actor, cycle_id: int, now: datetime, note: str = "") -> Cycle:
    """A named person releases a load the rules passed: its packs become sterile with their expiry. A load whose
    machine record (its curve, imported) fails its checks is not released: the steriliser's figures win."""
    actor.require("cycles.decide")
    cycle = get_cycle(actor, cycle_id)
    site = db.session.get(Site, cycle.site_id)
    user = db.session.get(User, actor.user_id) if actor.user_id else None
    trained = _has_valid_training(actor.user_id, "sterilisation", local_today(site.timezone, now))
    if user is None or not rules.may_release(user.role, trained):
        raise Forbidden(_l("only a manager, or staff with in-date decontamination training, may release a load"),
                        field="cycle_id", rule="clean-before-sterilise")
    if cycle.status != "awaiting_release" or not cycle.is_verdict_pass:
        raise Conflict(_l("only a load that passed its checks and awaits release can be released (this one is %(status)s)",
                          status=cycle.status), field="cycle_id")
    steriliser = db.session.get(Steriliser, cycle.steriliser_id)
    if not steriliser.is_in_service:
        raise Conflict(_l("the steriliser went out of service after this load; it cannot be released"),
                       field="cycle_id", rule="failed-test-recall")
    machine = _machine_record(cycle)
    if machine is not None and machine.is_judged and not machine.is_verdict_pass:
        raise Conflict(_l("the steriliser's own record of this cycle fails its checks: %(reasons)s",
                          reasons=" ".join(reason_text(r) for r in machine.reasons)), field="cycle_id",
                       rule="cycle-parameters-met")
    values = {"status": "released", "decided_by_id": actor.user_id, "decided_at": now,
              "decision_note": v.text({"note": note}, "note", 2000, required=False)}
    before = snapshot(cycle, values)
    claimed = db.session.execute(update(Cycle).where(Cycle.id == cycle.id, Cycle.status == "awaiting_release")
                                 .values(**values))
    if claimed.rowcount != 1:
        raise Conflict(_l("someone else decided this load a moment ago"), field="cycle_id")
    record_claim(cycle, before, values, actor=actor)
    db.session.refresh(cycle)
    shelf_life = int(pack_for_site(site.id).number("sterile-storage", "shelf_life_days"))
    for pack in cycle.packs:
        pack.status = "sterile"
        pack.expires_at = rules.pack_expires_at(cycle.started_at, shelf_life)
        for item in pack.items:
            item.device.reprocessing_count += 1
            change_device_status(item.device, "in_service", actor.user_id, now, kind="sterilised",
                                 pack_id=pack.id, cycle_id=cycle.id)
    db.session.flush()
    return cycle


def fail_cycle(actor: Actor, cycle_id: int, note: str, now: datetime) -> Cycle:
    """A person fails a load (wet packs, a fault seen on the printout): its packs can never be used."""
    actor.require("cycles.decide")
    cycle = get_cycle(actor, cycle_id)
    reason = v.text({"note": note}, "note", 2000)
    values = {"status": "failed", "decided_by_id": actor.user_id, "decided_at": now, "decision_note": reason}
    before = snapshot(cycle, values)
    claimed = db.session.execute(update(Cycle).where(Cycle.id == cycle.id, Cycle.status == "awaiting_release")
                                 .values(**values))
    if claimed.rowcount != 1:
        raise Conflict(_l("only a load awaiting release can be failed (this one is %(status)s)",
                          status=before["status"]), field="cycle_id")
    record_claim(cycle, before, values, actor=actor)
    db.session.refresh(cycle)
    for pack in cycle.packs:
        pack.status = "failed"
        for item in pack.items:
            change_device_status(item.device, "dirty", actor.user_id, now, kind="load_failed", pack_id=pack.id,
                                 cycle_id=cycle.id, note=reason)
    db.session.flush()
    return cycle


# --- corrections ------------------------------------------------------------------------------

def correction_refusal(cycle: Cycle) -> str | None:
    """Why this load's figures can't be corrected by hand (None when they can), read from the database now."""
    from ..treatments.models import TreatmentPack  # treatments build on sterilisation, not the other way round

    if cycle.api_key_id is not None:
        return str(_l("a data logger's record is not corrected by hand"))
    in_recall = db.session.scalar(select(func.count()).select_from(RecallLoad).where(RecallLoad.cycle_id == cycle.id))
    if cycle.status == "recalled" or in_recall:
        return str(_l("this load is in a recall; its figures are not corrected"))
    used = db.session.scalar(select(func.count()).select_from(Pack).where(
        Pack.cycle_id == cycle.id, Pack.status == "used")) or db.session.scalar(
        select(func.count()).select_from(TreatmentPack).join(Pack, Pack.id == TreatmentPack.pack_id).where(
            Pack.cycle_id == cycle.id))
    if used:
        return str(_l("a pack of this load has been used; its figures can no longer be corrected"))
    return None


def _in_service_at(steriliser: Steriliser, at: datetime) -> bool:
    """Whether the steriliser was in service at `at`, from its appended status changes."""
    stmt = select(SteriliserStatusChange.is_in_service).where(SteriliserStatusChange.steriliser_id == steriliser.id)
    last = db.session.scalar(stmt.where(SteriliserStatusChange.at <= at).order_by(
        SteriliserStatusChange.at.desc(), SteriliserStatusChange.id.desc()).limit(1))
    if last is not None:
        return last
    first_after = db.session.scalar(stmt.where(SteriliserStatusChange.at > at).order_by(
        SteriliserStatusChange.at, SteriliserStatusChange.id).limit(1))
    return steriliser.is_in_service if first_after is None else not first_after


def _claim_pack(actor: Actor, pack: Pack, expected: str, to_status: str) -> None:
    """Move a pack by conditional UPDATE: a treatment claiming it at the same moment (add_pack) and this can't
    both win."""
    claimed = db.session.execute(update(Pack).where(Pack.id == pack.id, Pack.status == expected)
                                 .values(status=to_status))
    if claimed.rowcount != 1:
        raise Conflict(_l("pack %(code)s was used or changed a moment ago; this load is not corrected",
                          code=pack.label_code), field="cycle_id")
    record_claim(pack, {"status": expected}, {"status": to_status}, actor=actor)
    db.session.expire(pack, ["status"])


def correct_cycle(actor: Actor, cycle_id: int, data: dict, now: datetime,
                  confirm_failure: bool = False) -> CycleCorrection:
    """A manager corrects a load's typed figures, with a reason, while none of its packs was used.

    The correction is appended (figures, verdict and status before and after); the load then holds the corrected
    figures and the rules' verdict on them, judged in the load's own context (the tests before its start, the
    steriliser's service state when it was recorded). Failed → passing: it awaits release again, its packs are
    loaded and their devices in reprocessing. Passing → failed: its packs fail and their devices go back to dirty."""
    actor.require("cycles.correct")
    if actor.api_key_id is not None or actor.user_id is None:
        raise Forbidden(_l("a load's figures are corrected by a person, not by an API key"), field="cycle_id")
    get_cycle(actor, cycle_id)
    # Lock the load (PostgreSQL; SQLite's writers are serialised anyway): two corrections, or a correction and a
    # release, are made one after the other, each on the other's result.
    cycle = db.session.scalar(select(Cycle).where(Cycle.id == cycle_id).with_for_update()
                              .execution_options(populate_existing=True))
    refusal = correction_refusal(cycle)
    if refusal:
        raise Conflict(refusal, field="cycle_id")
    reason = v.text(data, "reason", 2000)
    figures, before = _figures_from(data), figures_of(cycle)
    if figures == before:
        raise Invalid(_l("these are the figures already recorded; change the figure that was mistyped"),
                      field="temperature_c")
    machine = _machine_record(cycle)
    if machine is not None and machine.is_judged:
        for name in ("temperature_c", "holding_seconds", "pressure_kpa"):
            if getattr(figures, name) != getattr(before, name):
                raise Invalid(_l("%(figure)s comes from the steriliser's own record of this cycle and is not "
                                 "corrected by hand; only the indicator and the printout can be",
                                 figure=field_label(name)), field=name, rule="cycle-parameters-met")
    else:
        machine = None
    steriliser = db.session.get(Steriliser, cycle.steriliser_id)
    site = db.session.get(Site, cycle.site_id)
    packs = list(db.session.scalars(select(Pack).where(Pack.cycle_id == cycle.id).order_by(Pack.id)
                                    .execution_options(populate_existing=True)))
    verdict, guideline = _judge(site, steriliser, cycle.programme, figures, packs, cycle.started_at,
                                _in_service_at(steriliser, cycle.created_at), machine)
    if not verdict.passed and not confirm_failure:
        raise UnconfirmedFailure(verdict)
    status_before, verdict_before, reasons_before = cycle.status, cycle.is_verdict_pass, list(cycle.reasons)
    status_after = status_before
    if not verdict_before and verdict.passed:
        status_after = "awaiting_release"  # a person still releases it
    elif verdict_before and not verdict.passed and status_before in ("awaiting_release", "released"):
        status_after = "failed"
    if status_after == "awaiting_release" and status_before == "failed":
        _check_devices_untouched(cycle, packs)
        for pack in packs:
            _claim_pack(actor, pack, "failed", "loaded")
            for item in pack.items:
                change_device_status(item.device, "in_reprocessing", actor.user_id, now, kind="loaded",
                                     pack_id=pack.id, cycle_id=cycle.id, note=reason)
    elif status_after == "failed" and status_before != "failed":
        expected = "loaded" if status_before == "awaiting_release" else "sterile"
        for pack in packs:
            if pack.status == "compromised":
                continue  # out of use already, its devices dirty
            _claim_pack(actor, pack, expected, "failed")  # a pack used meanwhile is not `expected`: refused
            for item in pack.items:
                if item.device.status in ("in_reprocessing", "in_service"):
                    change_device_status(item.device, "dirty", actor.user_id, now, kind="load_failed",
                                         pack_id=pack.id, cycle_id=cycle.id, note=reason)
    correction = CycleCorrection(
        site_id=cycle.site_id, cycle=cycle,
        **_figures_change(before, figures),
        is_verdict_pass_before=verdict_before, is_verdict_pass_after=verdict.passed,
        reasons_before=reasons_before, reasons_after=[r.as_dict() for r in verdict.reasons],
        status_before=status_before, status_after=status_after, reason=reason, corrected_by_id=actor.user_id,
        corrected_at=now, guideline_version=guideline.version)
    db.session.add(correction)
    cycle.temperature_c, cycle.pressure_kpa = figures.temperature_c, figures.pressure_kpa
    cycle.holding_seconds, cycle.printout_ref = figures.holding_seconds, figures.printout_ref
    cycle.indicator_passed, cycle.indicator_class = figures.indicator_passed, figures.indicator_class
    cycle.is_verdict_pass, cycle.reasons = verdict.passed, [r.as_dict() for r in verdict.reasons]
    cycle.guideline_version = guideline.version
    if status_after != status_before:
        cycle.status, cycle.decided_by_id, cycle.decision_note = status_after, None, ""
        cycle.decided_at = now if status_after == "failed" else None  # failed by the rules, or awaiting a person
    db.session.flush()
    return correction


def _figures_change(before: rules.CycleFigures, after: rules.CycleFigures) -> dict:
    """A correction's figure columns: each figure before and after."""
    return {f"{name}_{when}": getattr(figures, name) for name in (
        "temperature_c", "pressure_kpa", "holding_seconds", "indicator_passed", "indicator_class", "printout_ref")
        for when, figures in (("before", before), ("after", after))}


def _check_devices_untouched(cycle: Cycle, packs: list[Pack]) -> None:
    """A failed load passes again only while each device still lies dirty in its pack, as the fail left it."""
    for pack in packs:
        for item in pack.items:
            device = item.device
            last = db.session.execute(select(DeviceEvent.kind, DeviceEvent.cycle_id).where(
                DeviceEvent.device_id == device.id).order_by(DeviceEvent.at.desc(), DeviceEvent.id.desc())
                .limit(1)).first()
            if device.status != "dirty" or last is None or (last.kind, last.cycle_id) != ("load_failed", cycle.id):
                raise Conflict(_l("device %(serial)s has been handled since this load failed; the load can't pass "
                                  "again. Reprocess the devices in a new load.", serial=device.serial),
                               field="cycle_id")


def corrections_of(actor: Actor, cycle_id: int) -> list[CycleCorrection]:
    """A load's corrections, oldest first, with who made them."""
    cycle = get_cycle(actor, cycle_id)
    return list(db.session.scalars(select(CycleCorrection).where(CycleCorrection.cycle_id == cycle.id)
                                   .order_by(CycleCorrection.id).options(selectinload(CycleCorrection.corrected_by))))


# --- the steriliser's own record of a load -----------------------------------------------------------

def _append_machine_correction(actor: Actor, cycle: Cycle, machine: CycleCurve, before: rules.CycleFigures,
                               after: rules.CycleFigures, verdict_before: rules.Verdict | bool,
                               verdict: rules.Verdict, status_before: str, status_after: str,
                               guideline: GuidelinePack, now: datetime) -> CycleCorrection:
    """Appends the machine record's change of a load: the typed figures before, the machine's after, and each
    typed figure off the machine's by more than the pack's tolerance (a finding in the audit report)."""
    from .curve_services import disagreements_of  # noqa: PLC0415 - curve_services builds on this module

    passed_before = verdict_before if isinstance(verdict_before, bool) else verdict_before.passed
    reasons_before = list(cycle.reasons) if isinstance(verdict_before, bool) else \
        [r.as_dict() for r in verdict_before.reasons]
    file = db.session.get(CurveFile, machine.curve_file_id)
    correction = CycleCorrection(
        site_id=cycle.site_id, cycle=cycle, kind="machine_record", curve_id=machine.id,
        **_figures_change(before, after),
        is_verdict_pass_before=passed_before, is_verdict_pass_after=verdict.passed,
        reasons_before=reasons_before, reasons_after=[r.as_dict() for r in verdict.reasons],
        status_before=status_before, status_after=status_after,
        reason=f"steriliser record of cycle {machine.cycle_number} imported"
               + (f" (file SHA-256 {file.sha256})" if file is not None else ""),
        corrected_by_id=actor.user_id, api_key_id=actor.api_key_id, corrected_at=now,
        guideline_version=guideline.version, disagreements=disagreements_of(machine, before))
    db.session.add(correction)
    return correction


def _devices_untouched(cycle: Cycle, packs: list[Pack]) -> bool:
    try:
        _check_devices_untouched(cycle, packs)
    except Conflict:
        return False
    return True


def _move_packs(actor: Actor, cycle: Cycle, packs: list[Pack], expected: tuple[str, ...], to_status: str,
                device_status: str, kind: str, now: datetime, note: str) -> None:
    """Each pack still in one of `expected` moves on, by conditional UPDATE (a pack a treatment claimed at the same
    moment stays used: its client is then among those the trace finds exposed); its devices follow."""
    for pack in packs:
        was = pack.status
        if was not in expected:
            continue
        moved = db.session.execute(update(Pack).where(Pack.id == pack.id, Pack.status == was)
                                   .values(status=to_status))
        db.session.expire(pack, ["status"])
        if moved.rowcount != 1:
            continue
        record_claim(pack, {"status": was}, {"status": to_status}, actor=actor)
        for item in pack.items:
            if item.device.status not in ("retired", device_status):
                change_device_status(item.device, device_status, actor.user_id, now, kind=kind, pack_id=pack.id,
                                     cycle_id=cycle.id, note=note)


def _recall_load(actor: Actor, cycle: Cycle, machine: CycleCurve, now: datetime) -> Recall:
    """failed-test-recall for one released load whose steriliser record fails: the steriliser's open recall takes
    it, or a new one is opened, triggered by the record. Its packs not yet used are recalled; the clients its used
    packs reached are those the trace finds exposed."""
    recall = db.session.scalar(select(Recall).where(Recall.steriliser_id == cycle.steriliser_id,
                                                    Recall.closed_at.is_(None)))
    if recall is None:
        recall = Recall(site_id=cycle.site_id, steriliser_id=cycle.steriliser_id, since=None, opened_at=now, opened_by_id=actor.user_id,
                        reason=f"steriliser record of cycle {machine.cycle_number} fails its checks")
        db.session.add(recall)
        db.session.flush()
    db.session.add(RecallLoad(recall_id=recall.id, cycle_id=cycle.id, previous_status=cycle.status))
    return recall


def apply_machine_record(actor: Actor, cycle_id: int, machine: CycleCurve, now: datetime) -> CycleCorrection | None:
    """The steriliser's own record of a load arrived (imported after the load was typed): its figures win.

    The load takes the machine's figures and the verdict on them (the curve's reasons, with the typed indicator
    and every other check), appended as a correction of kind "machine_record" with the typed figures before and
    those that disagree. Then, as the verdict moved: a load awaiting release that now fails is failed (packs
    failed, devices dirty); a released one is recalled (the steriliser's open recall, or a new one); a load the
    rules failed on typed figures that now passes awaits release again while its devices lie as the fail left
    them. A record too sparse to judge changes nothing (None); applied once per load."""
    if not machine.is_judged:
        return None
    if db.session.scalar(select(CycleCorrection.id).where(CycleCorrection.cycle_id == cycle_id,
                                                          CycleCorrection.kind == "machine_record")):
        return None
    cycle = db.session.scalar(select(Cycle).where(Cycle.id == cycle_id).with_for_update()
                              .execution_options(populate_existing=True))
    before = figures_of(cycle)
    after = machine_figures(machine, before)
    steriliser = db.session.get(Steriliser, cycle.steriliser_id)
    site = db.session.get(Site, cycle.site_id)
    packs = list(db.session.scalars(select(Pack).where(Pack.cycle_id == cycle.id).order_by(Pack.id)
                                    .execution_options(populate_existing=True)))
    verdict, guideline = _judge(site, steriliser, cycle.programme, after, packs, cycle.started_at,
                                _in_service_at(steriliser, cycle.created_at), machine)
    status_before, passed_before = cycle.status, cycle.is_verdict_pass
    note = f"steriliser record of cycle {machine.cycle_number}"
    status_after = status_before
    if not verdict.passed and status_before == "awaiting_release":
        status_after = "failed"
        _move_packs(actor, cycle, packs, ("loaded",), "failed", "dirty", "load_failed", now, note)
    elif not verdict.passed and status_before == "released":
        status_after = "recalled"
        _recall_load(actor, cycle, machine, now)
        _move_packs(actor, cycle, packs, ("loaded", "sterile"), "recalled", "dirty", "recalled", now, note)
    elif verdict.passed and not passed_before and status_before == "failed" and _devices_untouched(cycle, packs):
        status_after = "awaiting_release"  # a person still releases it
        _move_packs(actor, cycle, packs, ("failed",), "loaded", "in_reprocessing", "loaded", now, note)
    correction = _append_machine_correction(actor, cycle, machine, before, after, passed_before, verdict,
                                            status_before, status_after, guideline, now)
    cycle.temperature_c, cycle.pressure_kpa, cycle.holding_seconds = (after.temperature_c, after.pressure_kpa,
                                                                      after.holding_seconds)
    cycle.is_verdict_pass, cycle.reasons = verdict.passed, [r.as_dict() for r in verdict.reasons]
    cycle.guideline_version = guideline.version
    if status_after != status_before:
        cycle.status = status_after
        if status_after in ("failed", "awaiting_release"):
            cycle.decided_by_id, cycle.decision_note = None, ""
            cycle.decided_at = now if status_after == "failed" else None
    db.session.flush()
    return correction


# --- recall ------------------------------------------------------------------------------------

def open_recall(actor: Actor, steriliser: Steriliser, trigger: SteriliserTest, now: datetime) -> Recall:
    """failed-test-recall: every load since the last passing spore test is recalled with its packs."""
    existing = db.session.scalar(select(Recall).where(Recall.steriliser_id == steriliser.id,
                                                      Recall.closed_at.is_(None)))
    since = db.session.scalar(select(func.max(SteriliserTest.performed_at)).where(
        SteriliserTest.steriliser_id == steriliser.id, SteriliserTest.kind == "spore",
        SteriliserTest.result == "pass", SteriliserTest.performed_at < trigger.performed_at))
    recall = existing or Recall(site_id=steriliser.site_id, steriliser_id=steriliser.id, trigger_test_id=trigger.id,
                                since=since, opened_at=now, opened_by_id=actor.user_id,
                                reason=f"spore test {trigger.id} failed")
    if existing is None:
        db.session.add(recall)
        db.session.flush()
    loads = db.session.execute(select(Cycle.id, Cycle.started_at, Cycle.status).where(
        Cycle.steriliser_id == steriliser.id))
    for cycle_id in rules.loads_to_recall((rules.LoadRef(*row) for row in loads), since):
        cycle = db.session.get(Cycle, cycle_id)
        db.session.add(RecallLoad(recall_id=recall.id, cycle_id=cycle.id, previous_status=cycle.status))
        cycle.status = "recalled"
        for pack in cycle.packs:
            if pack.status in ("loaded", "sterile"):
                pack.status = "recalled"
                for item in pack.items:
                    if item.device.status != "retired":
                        change_device_status(item.device, "dirty", actor.user_id, now, kind="recalled",
                                             pack_id=pack.id, cycle_id=cycle.id)
    db.session.flush()
    return recall


def recall_trigger_curve(recall: Recall) -> CycleCurve | None:
    """The steriliser's record that opened a recall (None for a recall a spore test opened): the record whose
    import recalled the first of its loads."""
    if recall.trigger_test_id is not None:
        return None
    return db.session.scalar(
        select(CycleCurve).join(CycleCorrection, CycleCorrection.curve_id == CycleCurve.id)
        .join(RecallLoad, RecallLoad.cycle_id == CycleCorrection.cycle_id)
        .where(RecallLoad.recall_id == recall.id, CycleCorrection.kind == "machine_record",
               CycleCorrection.status_after == "recalled")
        .order_by(CycleCorrection.corrected_at, CycleCorrection.id).limit(1))


def recalls_query(actor: Actor, open_only: bool = False) -> Select:
    actor.require("recalls.read")
    stmt = select(Recall).where(Recall.site_id.in_(actor.site_ids))
    if open_only:
        stmt = stmt.where(Recall.closed_at.is_(None))
    return stmt.order_by(Recall.opened_at.desc())


def get_recall(actor: Actor, recall_id: int) -> Recall:
    actor.require("recalls.read")
    recall = db.session.get(Recall, recall_id)
    if recall is None or recall.site_id not in actor.site_ids:
        raise NotFound(_l("no such recall"), field="recall_id")
    return recall


def recall_checklist(recall: Recall) -> dict:
    """What must be true before a manager closes a recall, each item with its evidence."""
    required = int(pack_for_site(recall.site_id).number("failed-test-recall", "empty_chamber_cycles_before_return"))
    retest = db.session.scalar(select(SteriliserTest).where(
        SteriliserTest.steriliser_id == recall.steriliser_id, SteriliserTest.kind == "spore",
        SteriliserTest.result != "pending", SteriliserTest.performed_at > recall.opened_at - timedelta(days=1),
        SteriliserTest.id != recall.trigger_test_id).order_by(SteriliserTest.performed_at))
    passes = consecutive_spore_passes(recall.steriliser_id)
    steriliser = db.session.get(Steriliser, recall.steriliser_id)
    checklist = {
        "retest": retest,
        "consecutive_passes": passes,
        "required_passes": required,
        "passes_done": passes >= required,
        "in_service": steriliser.is_in_service,
        "clients_contacted": recall.clients_contacted_at is not None,
    }
    checklist["may_close"] = (recall.closed_at is None and retest is not None and checklist["passes_done"]
                              and checklist["clients_contacted"])
    return checklist


def mark_clients_contacted(actor: Actor, recall_id: int, note: str, now: datetime) -> Recall:
    """The manager records that the clients the recalled loads reached were contacted (how, in the note)."""
    actor.require("recalls.manage")
    recall = get_recall(actor, recall_id)
    if recall.closed_at is not None:
        raise Conflict(_l("this recall is closed"), field="recall_id")
    recall.clients_contacted_note = v.text({"note": note}, "note", 4000)
    recall.clients_contacted_at, recall.clients_contacted_by_id = now, actor.user_id
    db.session.flush()
    return recall


def close_recall(actor: Actor, recall_id: int, note: str, now: datetime) -> Recall:
    """A manager closes a recall once it was retested, enough spore tests passed and clients were contacted."""
    actor.require("recalls.manage")
    recall = get_recall(actor, recall_id)
    if recall.closed_at is not None:
        raise Conflict(_l("this recall is already closed"), field="recall_id")
    checklist = recall_checklist(recall)
    missing: list[str] = []
    if checklist["retest"] is None:
        missing.append(str(_l("a retest of the spore test")))
    if not checklist["passes_done"]:
        missing.append(str(_l("%(n)s consecutive passing spore tests", n=checklist["required_passes"])))
    if not checklist["clients_contacted"]:
        missing.append(str(_l("clients contacted")))
    if missing:
        raise Conflict(_l("not yet done: %(items)s", items=", ".join(missing)), field="recall_id",
                       rule="failed-test-recall")
    recall.close_note = v.text({"note": note}, "note", 4000)
    recall.closed_at, recall.closed_by_id = now, actor.user_id
    db.session.flush()
    return recall
