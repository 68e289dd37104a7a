"""The demo organisation: two sites, rooms, people with PINs and passwords, training, sterilisation, treatments
and checklists. Safe to run twice."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo
from typing import Any

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from .extensions import db
from .sites.models import Organisation, Room, Site, TrainingRecord, User
from .timeutil import local_today

DEMO_PASSWORD = "demo-password-2026"
ORG_NAME = "Demo Skin Clinics"

SITES = [
    {"name": "Jakarta Kemang", "timezone": "Asia/Jakarta", "language": "id",
     "address": "Jl. Kemang Raya 10, Jakarta Selatan",
     "rooms": [("Ruang Perawatan 1", "treatment"), ("Ruang Perawatan 2", "treatment"),
               ("Ruang Dekontaminasi", "decontamination")]},
    {"name": "London Shoreditch", "timezone": "Europe/London", "language": "en",
     "address": "12 Rivington Street, London EC2A",
     "rooms": [("Treatment room 1", "treatment"), ("Decontamination room", "decontamination")]},
]

# name, email, role, language (None: the site's), sites, PIN
PEOPLE = [
    ("Maya Admin", "admin@demo.clinic", "admin", "en", ["Jakarta Kemang", "London Shoreditch"], None),
    ("Dewi Manajer", "manager@demo.clinic", "manager", None, ["Jakarta Kemang"], "9012"),
    ("Oliver Manager", "manager.london@demo.clinic", "manager", None, ["London Shoreditch"], None),
    ("Ana Auditor", "auditor@demo.clinic", "auditor", "en", ["Jakarta Kemang", "London Shoreditch"], None),
    ("Sari Wulandari", "sari@demo.clinic", "staff", None, ["Jakarta Kemang"], "1234"),
    ("Budi Santoso", "budi@demo.clinic", "staff", None, ["Jakarta Kemang"], "2345"),
    ("Emma Clarke", "emma@demo.clinic", "staff", None, ["London Shoreditch"], "3456"),
    ("Tom Hughes", "tom@demo.clinic", "staff", None, ["London Shoreditch"], "4567"),
]


def _get_or_create(model, counts: dict[str, int], lookup: dict[str, Any], **values):
    row = db.session.scalar(select(model).filter_by(**lookup))
    if row is not None:
        counts["existing"] += 1
        return row
    row = model(**lookup, **values)
    db.session.add(row)
    db.session.flush()
    counts["created"] += 1
    return row


DEVICE_KINDS = [("Roller handle", "critical", False, 200), ("Micro-needling pen tip holder", "critical", True, 300),
                ("Forceps", "critical", False, None)]


def _at(site: Site, day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(site.timezone)).astimezone(timezone.utc)


def _demo_sterilisation(site: Site, manager: User, now: datetime, counts: dict[str, int], recall: bool) -> None:
    """Two weeks of a steriliser's life through the real services: daily tests, weekly spore tests, loads
    released, one load failed by its figures and, at London, a failed spore test with its open recall."""
    from .auth.actor import actor_for_user
    from .devices import services as devices
    from .devices.models import Device, DeviceType, Steriliser
    from .sterilisation import services as steri

    if db.session.scalar(select(Steriliser.id).where(Steriliser.site_id == site.id)):
        counts["existing"] += 1
        return
    actor = actor_for_user(manager)
    start_day = local_today(site.timezone, now) - timedelta(days=14)
    setup_at = _at(site, start_day, 7)
    kinds = {}
    for name, spaulding, hollow, max_cycles in DEVICE_KINDS:
        kinds[name] = db.session.scalar(select(DeviceType).where(
            DeviceType.organisation_id == site.organisation_id, DeviceType.name == name)) or \
            devices.create_device_type(actor, {"name": name, "spaulding_class": spaulding, "is_hollow": hollow,
                                               "default_max_cycles": max_cycles}, setup_at)
    steriliser = devices.create_steriliser(actor, {
        "site_id": site.id, "name": "Autoclave 1", "make": "Melag", "model": "Vacuklav 31 B+", "type": "B",
        "serial": f"MV31-{site.id:04d}", "validation_due_on": (start_day + timedelta(days=200)).isoformat(),
        "calibration_due_on": (start_day + timedelta(days=200)).isoformat()}, setup_at)
    devices.add_programme(actor, steriliser.id, {"name": "134 °C wrapped", "temperature_c": "134",
                                                 "min_holding_seconds": "210", "min_pressure_kpa": "304"})
    devices.add_programme(actor, steriliser.id, {"name": "121 °C", "temperature_c": "121",
                                                 "min_holding_seconds": "900"})
    prefix = site.name[:3].upper()
    serial_no = 0

    def new_device(kind: str) -> Device:
        nonlocal serial_no
        serial_no += 1
        return devices.create_device(actor, {"site_id": site.id, "device_type_id": kinds[kind].id,
                                             "serial": f"{prefix}-{serial_no:04d}"}, setup_at)

    for offset in range(14):
        day = start_day + timedelta(days=offset)
        steri.record_test(actor, {"steriliser_id": steriliser.id, "kind": "air_removal", "result": "pass",
                                  "performed_at": _at(site, day, 8).isoformat()}, _at(site, day, 8, 20))
        steri.record_test(actor, {"steriliser_id": steriliser.id, "kind": "automatic_control", "result": "pass",
                                  "performed_at": _at(site, day, 8, 10).isoformat()}, _at(site, day, 8, 20))
        if offset % 7 == 0:
            spore = steri.record_test(actor, {"steriliser_id": steriliser.id, "kind": "spore", "result": "pending",
                                              "indicator_lot": f"BI-{day:%y%m}",
                                              "performed_at": _at(site, day, 8, 30).isoformat()}, _at(site, day, 8, 30))
            steri.record_test_result(actor, spore.id, {"result": "pass", "control_result": "grew"},
                                     _at(site, day, 8, 45))
        items = [new_device("Roller handle"), new_device("Micro-needling pen tip holder")]
        packs = []
        for device in items:
            steri.record_cleaning(actor, {"device_ids": [device.id], "method": "ultrasonic"}, _at(site, day, 8, 40))
            steri.record_inspection(actor, {"device_ids": [device.id], "passed": True}, _at(site, day, 8, 45))
            packs.append(steri.create_pack(actor, {"device_ids": [device.id], "packaging": "pouch"},
                                           _at(site, day, 8, 50)))
        failed = offset == 10  # one load that stopped short of its holding time
        cycle = steri.record_cycle(actor, {
            "steriliser_id": steriliser.id, "started_at": _at(site, day, 9).isoformat(),
            "temperature_c": "134.6", "pressure_kpa": "306", "holding_seconds": "150" if failed else "215",
            "indicator_result": "fail" if failed else "pass", "indicator_class": "5",
            "printout_ref": f"PR-{day:%Y%m%d}-1", "pack_codes": [p.label_code for p in packs]},
            _at(site, day, 9, 30), confirm_failure=failed)  # the failed load's figures are the printout's
        if cycle.status == "awaiting_release":
            steri.release_cycle(actor, cycle.id, _at(site, day, 9, 40))
        if offset in (10, 13):  # the steriliser's own record of two loads, imported from its USB export
            _demo_curve(actor, steriliser, cycle, failed, _at(site, day, 9, 35))
        counts["created"] += 1
    if recall:
        day = start_day + timedelta(days=13)
        steri.record_test(actor, {"steriliser_id": steriliser.id, "kind": "spore", "result": "fail",
                                  "indicator_lot": f"BI-{day:%y%m}", "control_result": "grew",
                                  "notes": "Test vial yellow after 48 h",
                                  "performed_at": _at(site, day, 10).isoformat()}, _at(site, day, 10))
    db.session.flush()


def _demo_curve(actor, steriliser, cycle, failed: bool, at: datetime) -> None:
    """A cycle record as the steriliser wrote it (a curve made from the physics), imported as a CSV file."""
    from .sterilisation.curve_physics import curve_csv, make_curve
    from .sterilisation.curve_services import import_curves

    header = "steriliser_serial,cycle_number,programme,started_at,seconds,temperature_c,pressure_kpa\n"
    curve = make_curve(holding_seconds=140 if failed else 230, step=2.0)
    data = header + curve_csv(steriliser.serial, cycle.cycle_number, "134 C wrapped", cycle.started_at.isoformat(),
                              curve)
    import_curves(actor, data.encode(), at, filename=f"{steriliser.serial}-{cycle.cycle_number}.csv",
                  media_type="text/csv")


DEMO_GTIN = "09506000134352"


def _demo_treatments(site: Site, manager: User, practitioner: User, stand_in: User, now: datetime,
                     counts: dict[str, int]) -> None:
    """Single-use stock and treatments at Jakarta through the real gate: accepted ones, a unit of a quarantined
    lot refused (never overridden), a practitioner's missing course overridden by the manager who supervises,
    and an infection with its look-back."""
    from .auth.actor import actor_for_user
    from .sterilisation.models import Pack
    from .stock import services as stock
    from .stock.models import ItemType
    from .treatments import services as care
    from .treatments.models import Treatment

    if db.session.scalar(select(Treatment.id).where(Treatment.site_id == site.id)):
        counts["existing"] += 1
        return
    actor = actor_for_user(manager)
    day = local_today(site.timezone, now) - timedelta(days=3)
    at = _at(site, day, 10)
    item_type = db.session.scalar(select(ItemType).where(ItemType.organisation_id == site.organisation_id,
                                                         ItemType.gtin == DEMO_GTIN)) or \
        stock.create_item_type(actor, {"name": "Needle cartridge 12-pin 0.5 mm", "kind": "needle_cartridge",
                                       "maker": "Demo Medical", "gtin": DEMO_GTIN, "pins": 12,
                                       "needle_length_mm": "0.5"}, at)
    stock.receive_lot(actor, {"site_id": site.id, "barcode": f"(01){DEMO_GTIN}(17)271231(10)JK-2611",
                              "quantity": 100, "supplier_ref": "PO-1042"}, at)
    held = stock.receive_lot(actor, {"site_id": site.id, "item_type_id": item_type.id, "lot_number": "JK-2609",
                                     "expires_on": (day + timedelta(days=300)).isoformat(), "quantity": 50}, at)
    stock.set_lot_status(actor, held.id, {"status": "quarantined", "reason": "outer box arrived wet"}, at)
    container = care.open_sharps_container(actor, {"site_id": site.id, "label": "SC-JKT-01",
                                                   "room_id": site.rooms[0].id}, at - timedelta(days=20))
    packs = list(db.session.scalars(select(Pack).where(Pack.site_id == site.id, Pack.status == "sterile")
                                    .order_by(Pack.expires_at).limit(4)))
    # Treatment 2 first scans a unit of the quarantined lot: refused with no override possible, another unit
    # is taken. Treatment 3 is Budi's, whose micro-needling course is missing: refused, and overridden by the
    # manager, who is then recorded as supervising (the one refusal a manager may override).
    plan = [("face", "A001", None, None), ("acne_scars", "A002", "JK-2609", None),
            ("stretch_marks", "B001", None, "Budi's micro-needling course is booked for next week; I supervise "
                                            "this treatment in the room"),
            ("face", "A003", None, None)]
    treatments = []
    for i, (procedure, serial, refused_lot, override_reason) in enumerate(plan):
        start = _at(site, day, 10 + i)
        client = care.create_client(actor, {"site_id": site.id, "name": f"Demo client {i + 1}",
                                            "phone": f"+62 812 0000 00{i + 1}", "consent": True}, start)
        treatment = care.start_treatment(actor, {"room_id": site.rooms[0].id, "client_id": client.id,
                                                 "procedure": procedure, "method": "pen",
                                                 "practitioner_id": (stand_in if override_reason else practitioner).id},
                                         start)
        _demo_screening(actor, treatment, start)
        result = care.add_pack(actor, treatment.id, packs[i].label_code, start + timedelta(minutes=5))
        if not result.accepted and override_reason:
            result = care.override_attempt(actor, result.attempt.id, {
                "manager_email": manager.email, "secret": DEMO_PASSWORD, "reason": override_reason},
                start + timedelta(minutes=6))
        if refused_lot:
            care.add_unit(actor, treatment.id, f"(01){DEMO_GTIN}(17)271231(10){refused_lot}(21)Q{serial}",
                          start + timedelta(minutes=7))
        care.add_unit(actor, treatment.id, f"(01){DEMO_GTIN}(17)271231(10)JK-2611(21){serial}",
                      start + timedelta(minutes=8))
        care.finish_treatment(actor, treatment.id, {"passes": 8, "needle_depth_mm": "0.5",
                                                    "sharps_container_id": container.id,
                                                    "aftercare": "Petroleum jelly; no make-up for 24 h"},
                              start + timedelta(minutes=40))
        treatments.append(treatment)
        counts["created"] += 1
    care.record_adverse_event(actor, treatments[0].id, {
        "kind": "infection", "severity": "moderate", "onset_at": (at + timedelta(days=2)).isoformat(),
        "description": "Pustules on the left cheek", "follow_up": "Referred to GP; swab taken"},
        at + timedelta(days=2, hours=2))
    db.session.flush()


def _demo_screening(actor, treatment, at: datetime) -> None:
    """The client's screening as the tablet records it: the treatment's before-client checklist, every item
    answered (skin type IV, no allergy known)."""
    from .checklists import services as checklists
    from .treatments import screening

    run = screening.start_for(actor, treatment, at)
    values = {"tick": "yes", "yes_no": "yes", "text": "none known"}
    for n, item in enumerate(run.version.items):
        value = "IV" if item.key == "skin_type" else values.get(item.kind, (item.choices or ["yes"])[0])
        checklists.answer(actor, run.id, {"item_id": item.id, "value": value,
                                          "idempotency_key": f"demo-screening-{run.id}-{item.key}"},
                          at + timedelta(seconds=20 * (n + 1)))


def _demo_checklists(org: Organisation, site: Site, staff: User, now: datetime, counts: dict[str, int]) -> None:
    """At Jakarta today's opening run done (the fridge was at 11 °C: a note and a corrective action) and a
    before-a-client run in progress with one corrected answer (the default checklists are loaded before)."""
    from .auth.actor import actor_for_user
    from .checklists import services as checklists
    from .checklists.models import ChecklistRun, ChecklistTemplate

    if db.session.scalar(select(ChecklistRun.id).where(ChecklistRun.site_id == site.id,
                                                       ChecklistRun.day == local_today(site.timezone, now))):
        counts["existing"] += 1
        return
    actor = actor_for_user(staff)
    templates = {t.key: t for t in db.session.scalars(
        select(ChecklistTemplate).where(ChecklistTemplate.organisation_id == org.id))}
    today = local_today(site.timezone, now)
    # Today's runs, before `now` and never before local midnight (the demo may be loaded at any hour).
    start = max(_at(site, today, 0, 1), min(_at(site, today, 7, 30), now - timedelta(minutes=30)))

    def at(minutes: int) -> datetime:
        return min(start + timedelta(minutes=minutes), now)

    def answer(run, key: str, value, minutes: int, note: str = ""):
        item = next(i for i in run.version.items if i.key == key)
        return checklists.answer(actor, run.id, {"item_id": item.id, "value": value, "note": note,
                                                 "idempotency_key": f"demo-{run.id}-{key}"}, at(minutes))

    opening = checklists.start_run(actor, {"site_id": site.id, "template_id": templates["opening"].id}, at(0))
    answer(opening, "surfaces_clean", "yes", 2)
    answer(opening, "disinfectant_fresh", "yes", 3)
    answer(opening, "sharps_below_line", "yes", 4)
    answer(opening, "fridge_temp", "11", 5, note="Fridge door left ajar overnight; products moved to the spare "
                                                "fridge, door seal reported")
    answer(opening, "hand_soap", "yes", 6)
    before = checklists.start_run(actor, {"site_id": site.id, "template_id": templates["before_client"].id,
                                          "room_id": next(r.id for r in site.rooms if r.kind == "treatment")}, at(20))
    answer(before, "active_infection", "yes", 21)
    answer(before, "herpes_history", "yes", 22)
    first = answer(before, "allergies", "none known", 23)
    checklists.amend(actor, first.id, {"value": "Nickel (metal)", "reason": "The client remembered a nickel allergy",
                                       "idempotency_key": f"demo-{before.id}-allergies-2"}, at(24))
    counts["created"] += 2
    db.session.flush()


def _demo_day_checklists(site: Site, staff: User, now: datetime, counts: dict[str, int],
                         skipped: set[tuple[str, int]]) -> None:
    """The last two weeks' opening and closing checklists through the real services, except the (checklist,
    days ago) in `skipped`: at London the opening checklist was not done the last five mornings, so five
    missed days are five findings."""
    from .auth.actor import actor_for_user
    from .checklists import services as checklists
    from .checklists.models import ChecklistRun, ChecklistTemplate

    today = local_today(site.timezone, now)
    if db.session.scalar(select(ChecklistRun.id).where(ChecklistRun.site_id == site.id, ChecklistRun.day < today)):
        counts["existing"] += 1
        return
    actor = actor_for_user(staff)
    templates = {t.key: t for t in db.session.scalars(
        select(ChecklistTemplate).where(ChecklistTemplate.organisation_id == site.organisation_id))}
    values = {"yes_no": "yes", "tick": "yes", "number": "4"}
    for days_ago in range(14, 0, -1):
        day = today - timedelta(days=days_ago)
        for key, hour, minute in (("opening", 8, 40), ("closing", 18, 30)):
            if (key, days_ago) in skipped:
                continue
            start = _at(site, day, hour, minute)
            run = checklists.start_run(actor, {"site_id": site.id, "template_id": templates[key].id}, start)
            for n, item in enumerate(i for i in run.version.items if i.is_required):
                checklists.answer(actor, run.id, {"item_id": item.id, "value": values.get(item.kind, "ok"),
                                                  "idempotency_key": f"demo-{run.id}-{item.key}"},
                                  start + timedelta(minutes=n + 1))
            counts["created"] += 1
    db.session.flush()


def _demo_tablet_link(site: Site, now: datetime, create_tablet_link, free_tablet_name, enrolment_url):
    """A single-use set-up link for the site's reception tablet (a second run names the next one "… 2")."""
    link, token = create_tablet_link(None, site.id, free_tablet_name(site.id, "Reception tablet", now), now)
    return site.name, link.name, enrolment_url(token)


def load_demo(now: datetime) -> dict[str, Any]:
    """Create what is missing of the demo data; existing rows are left exactly as they are."""
    from .auth.services import create_tablet_link, free_tablet_name
    from .cli import enrolment_url

    counts = {"created": 0, "existing": 0}
    org = _get_or_create(Organisation, counts, {"name": ORG_NAME}, created_at=now)
    sites: dict[str, Site] = {}
    for spec in SITES:
        site = _get_or_create(Site, counts, {"organisation_id": org.id, "name": spec["name"]},
                              timezone=spec["timezone"], language=spec["language"], address=spec["address"],
                              created_at=now - timedelta(days=30))  # the clinic has a history
        sites[site.name] = site
        for room_name, kind in spec["rooms"]:
            _get_or_create(Room, counts, {"site_id": site.id, "name": room_name}, kind=kind, created_at=now)

    password_hash = None
    users: dict[str, User] = {}
    for name, email, role, language, site_names, pin in PEOPLE:
        existing = db.session.scalar(select(User).where(User.email == email))
        if existing is None:
            password_hash = password_hash or generate_password_hash(DEMO_PASSWORD)
            existing = User(organisation_id=org.id, name=name, email=email, role=role, language=language,
                            password_hash=password_hash if role != "staff" else None,
                            pin_hash=generate_password_hash(pin) if pin else None, created_at=now)
            existing.sites = [sites[s] for s in site_names]
            db.session.add(existing)
            db.session.flush()
            counts["created"] += 1
        else:
            counts["existing"] += 1
        users[email] = existing

    manager = users["manager@demo.clinic"]
    for email, site_name in (("sari@demo.clinic", "Jakarta Kemang"), ("budi@demo.clinic", "Jakarta Kemang"),
                             ("emma@demo.clinic", "London Shoreditch"), ("tom@demo.clinic", "London Shoreditch")):
        person = users[email]
        today = local_today(sites[site_name].timezone, now)
        # Dates are fixed relative to the first run's creation, not moved on later runs.
        plan = {
            "sari@demo.clinic": [("infection_control", 300, 65), ("microneedling", 200, 165),
                                 ("sterilisation", 250, 480)],
            "budi@demo.clinic": [("infection_control", 355, 10)],          # expires in 10 days
            "emma@demo.clinic": [("infection_control", 100, 265), ("microneedling", 90, 640)],
            "tom@demo.clinic": [("infection_control", 400, -35)],          # expired 35 days ago
        }[email]
        for course, days_ago, expires_in in plan:
            exists = db.session.scalar(select(TrainingRecord.id).where(
                TrainingRecord.user_id == person.id, TrainingRecord.course == course))
            if exists:
                counts["existing"] += 1
                continue
            db.session.add(TrainingRecord(
                user_id=person.id, course=course, completed_on=today - timedelta(days=days_ago),
                expires_on=today + timedelta(days=expires_in), evidence_ref=f"CERT-{person.id:03d}-{course[:4].upper()}",
                recorded_by_id=manager.id, created_at=now))
            counts["created"] += 1
    db.session.flush()
    for site_name, manager_email in (("Jakarta Kemang", "manager@demo.clinic"),
                                     ("London Shoreditch", "manager.london@demo.clinic")):
        _demo_sterilisation(sites[site_name], users[manager_email], now, counts,
                            recall=site_name == "London Shoreditch")
    from .checklists import services as checklists
    counts["created"] += checklists.load_default_templates(org.id, now)  # the treatments' screening uses one
    _demo_treatments(sites["Jakarta Kemang"], users["manager@demo.clinic"], users["sari@demo.clinic"],
                     users["budi@demo.clinic"], now, counts)
    _demo_day_checklists(sites["Jakarta Kemang"], users["sari@demo.clinic"], now, counts, {("closing", 3)})
    _demo_day_checklists(sites["London Shoreditch"], users["emma@demo.clinic"], now, counts,
                         {("opening", d) for d in range(1, 6)})
    _demo_checklists(org, sites["Jakarta Kemang"], users["sari@demo.clinic"], now, counts)
    # Obligations for every subject, and what is overdue now flagged with its findings and emails (queued;
    # the scheduler sends them). Both steps are idempotent.
    from .schedule import services as schedule
    schedule.sync(now)
    scan = schedule.scan(now)
    schedule.queue_digests(now)
    counts["findings"] = len(scan.findings)

    return {
        **counts,
        "password_users": [p[1] for p in PEOPLE if p[2] != "staff"],
        "tablet_links": [_demo_tablet_link(s, now, create_tablet_link, free_tablet_name, enrolment_url)
                         for s in sites.values()],
        "pins": {s: [(p[0], p[5]) for p in PEOPLE if p[5] and s in p[4]] for s in sites},
    }
