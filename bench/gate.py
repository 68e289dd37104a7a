"""Benchmark of the point-of-use gate and of a look-back from a load, on a large database.

    .venv/bin/python bench/gate.py [DATABASE_URL] [--units 1000000] [--treatments 200000] [--samples 300]

Fills an empty database (SQLite file by default) with one organisation, one site, 1,000,000 single-use
units in 1,000 lots and 200,000 finished treatments (each with one sterile pack from one of 20,000 loads
and one unit), then times 300 gate checks of fresh units (scan → checks → insert, rolled back so every
sample sees the same data) and 300 look-backs from a random load. Prints p50 and p95 in milliseconds.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from compliance import create_app  # noqa: E402
from compliance.auth.actor import actor_for_user  # noqa: E402
from compliance.devices.models import Device, DeviceType, Programme, Steriliser  # noqa: E402
from compliance.extensions import db  # noqa: E402
from compliance.sites.models import Organisation, Room, Site, TrainingRecord, User  # noqa: E402
from compliance.sterilisation.models import Cycle, Pack, PackItem  # noqa: E402
from compliance.stock.models import ItemType, Lot, Unit  # noqa: E402
from compliance.treatments import services  # noqa: E402
from compliance.treatments.models import Client, Treatment, TreatmentPack, TreatmentUnit  # noqa: E402

GTIN = "09506000134352"
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
BATCH = 20_000


def _bulk(model, rows):
    for i in range(0, len(rows), BATCH):
        db.session.execute(insert(model), rows[i:i + BATCH])


def fill(n_units: int, n_treatments: int) -> dict:
    t0 = time.perf_counter()
    org = Organisation(name="Bench org")
    site = Site(organisation=org, name="Bench site", timezone="Asia/Jakarta", language="en")
    room = Room(site=site, name="Room 1")
    nurse = User(organisation=org, name="Nurse", email="nurse@bench.test", role="staff",
                 pin_hash=generate_password_hash("1234"))
    nurse.sites = [site]
    manager = User(organisation=org, name="Manager", email="manager@bench.test", role="manager",
                   password_hash=generate_password_hash("x" * 12))
    manager.sites = [site]
    db.session.add_all([org, site, room, nurse, manager])
    db.session.flush()
    for course in ("infection_control", "microneedling"):
        db.session.add(TrainingRecord(user_id=nurse.id, course=course, completed_on=date(2026, 1, 1),
                                      expires_on=date(2027, 12, 31)))
    item_type = ItemType(organisation_id=org.id, name="Cartridge", kind="needle_cartridge", gtin=GTIN)
    dtype = DeviceType(organisation_id=org.id, name="Pen", spaulding_class="critical")
    steriliser = Steriliser(site_id=site.id, name="A1", type="B")
    db.session.add_all([item_type, dtype, steriliser])
    db.session.flush()
    programme = Programme(steriliser_id=steriliser.id, name="134", temperature_c=Decimal("134"),
                          min_holding_seconds=180)
    client = Client(organisation_id=org.id, site_id=site.id, code="C-BENCH1")
    db.session.add_all([programme, client])
    db.session.flush()

    n_lots = 1000
    _bulk(Lot, [{"site_id": site.id, "item_type_id": item_type.id, "lot_number": f"L{i:05d}",
                 "expires_on": date(2028, 1, 1), "quantity": n_units // n_lots, "status": "available",
                 "supplier_ref": "", "status_reason": "", "received_at": NOW} for i in range(n_lots)])
    lot_ids = list(db.session.scalars(select(Lot.id).order_by(Lot.id)))
    _bulk(Unit, [{"organisation_id": org.id, "item_type_id": item_type.id, "lot_id": lot_ids[i % n_lots],
                  "serial": f"U{i:08d}", "is_generated_label": False, "created_at": NOW} for i in range(n_units)])
    n_cycles = max(1, n_treatments // 10)
    start = NOW - timedelta(days=365)
    _bulk(Cycle, [{"site_id": site.id, "steriliser_id": steriliser.id, "cycle_number": i + 1,
                   "programme_id": programme.id, "started_at": start + timedelta(minutes=20 * i),
                   "temperature_c": Decimal("134.5"), "holding_seconds": 200, "printout_ref": "P",
                   "indicator_passed": True, "is_verdict_pass": True, "reasons": [], "status": "released",
                   "decision_note": "", "guideline_version": "bench", "created_at": NOW} for i in range(n_cycles)])
    cycle_ids = list(db.session.scalars(select(Cycle.id).order_by(Cycle.id)))
    _bulk(Device, [{"organisation_id": org.id, "site_id": site.id, "device_type_id": dtype.id,
                    "serial": f"D{i:06d}", "status": "dirty", "reprocessing_count": 1, "created_at": NOW}
                   for i in range(2000)])
    device_ids = list(db.session.scalars(select(Device.id).order_by(Device.id)))
    _bulk(Pack, [{"site_id": site.id, "label_code": f"PK-B{i:07d}", "packaging": "pouch", "status": "used",
                  "cycle_id": cycle_ids[i % n_cycles], "expires_at": NOW + timedelta(days=60), "packed_at": NOW,
                  "compromised_note": ""} for i in range(n_treatments)])
    pack_ids = list(db.session.scalars(select(Pack.id).order_by(Pack.id)))
    _bulk(PackItem, [{"pack_id": pid, "device_id": device_ids[i % len(device_ids)]} for i, pid in enumerate(pack_ids)])
    _bulk(Treatment, [{"site_id": site.id, "room_id": room.id, "client_id": client.id, "practitioner_id": nurse.id,
                       "procedure": "face", "method": "pen", "passes": 8, "passes_confirmed": False, "products": [],
                       "aftercare": "", "notes": "", "status": "finished", "started_at": start + timedelta(minutes=2 * i),
                       "ended_at": start + timedelta(minutes=2 * i + 1), "created_at": NOW}
                      for i in range(n_treatments)])
    treatment_ids = list(db.session.scalars(select(Treatment.id).order_by(Treatment.id)))
    _bulk(TreatmentPack, [{"treatment_id": tid, "pack_id": pack_ids[i], "added_at": NOW}
                          for i, tid in enumerate(treatment_ids)])
    unit_ids = list(db.session.scalars(select(Unit.id).order_by(Unit.id).limit(n_treatments)))
    _bulk(TreatmentUnit, [{"treatment_id": tid, "unit_id": unit_ids[i], "added_at": NOW}
                          for i, tid in enumerate(treatment_ids)])
    open_treatment = Treatment(site_id=site.id, room_id=room.id, client_id=client.id, practitioner_id=nurse.id,
                               procedure="face", method="pen", status="open", started_at=NOW, screening={"ok": True},
                               screening_at=NOW)
    db.session.add(open_treatment)
    db.session.commit()
    return {"seconds": time.perf_counter() - t0, "manager_id": manager.id, "treatment_id": open_treatment.id,
            "cycle_ids": cycle_ids, "first_free_unit": n_treatments}


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url", nargs="?")
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--treatments", type=int, default=200_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tmp}, environ={})
    random.seed(7)
    with app.app_context():
        db.drop_all()
        db.create_all()
        info = fill(args.units, args.treatments)
        print(f"database: {db.engine.url.get_backend_name()}  units: {args.units:,}  treatments: {args.treatments:,}"
              f"  filled in {info['seconds']:.0f} s")
        actor = actor_for_user(db.session.get(User, info["manager_id"]))
        gate, lookback = [], []
        for i in range(args.samples):
            serial = f"U{info['first_free_unit'] + random.randrange(args.units - info['first_free_unit']):08d}"
            code = f"(01){GTIN}(17)280101(10)L00000(21){serial}"
            t0 = time.perf_counter()
            result = services.add_unit(actor, info["treatment_id"], code, NOW)
            gate.append((time.perf_counter() - t0) * 1000)
            assert result.accepted, result.reasons
            db.session.rollback()
            cycle_id = random.choice(info["cycle_ids"])
            t0 = time.perf_counter()
            exposed = db.session.scalars(services.exposed_treatments(actor, cycle_id=cycle_id)).all()
            lookback.append((time.perf_counter() - t0) * 1000)
            assert exposed
            db.session.rollback()
        print(f"gate (scan → checks → insert) over {args.samples} samples: "
              f"p50 {statistics.median(gate):.1f} ms, p95 {percentile(gate, 95):.1f} ms")
        print(f"look-back from a load ({len(exposed)} treatments) over {args.samples} samples: "
              f"p50 {statistics.median(lookback):.1f} ms, p95 {percentile(lookback, 95):.1f} ms")
        db.drop_all()
        db.engine.dispose()
    if not args.database_url:
        os.remove(f"{tmp}/bench.db")


if __name__ == "__main__":
    main()
