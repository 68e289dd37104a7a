"""Benchmark of the verdict from a curve: a 1 Hz, 40-minute cycle (2,400 samples) parsed, judged, and imported.

    .venv/bin/python bench/curve.py [DATABASE_URL] [--repeats 50] [--minutes 40]

Makes the curve from the physics (compliance/sterilisation/curve_physics.py: pre-vacuum, heat-up along the
saturation line, a 134.6 °C plateau, exhaust, drying padded to --minutes), writes it as the generic CSV, and
times, --repeats times each (median and p95, ms):

  parse    read_curves(bytes): decoding, CSV, numbers, the plausibility checks;
  judge    judge_curve(...): sparseness, the holding stretch, equilibration, the IAPWS-IF97 steam check;
  import   curve_services.import_curves(...) + commit on the database (a SQLite file by default; the URL's
           database is emptied first): parse, judge, the file kept, the curve stored — a new cycle number each
           time, so that every repeat stores;
  +load    the same for cycle numbers with a load typed first: the record's figures replace the typed ones
           (the load judged again on the curve, a correction appended);

and the ratio judge / parse. Target: judging adds less than 20 ms to a curve.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compliance import create_app  # noqa: E402
from compliance.auth.actor import actor_for_user  # noqa: E402
from compliance.devices.models import Programme, Steriliser  # noqa: E402
from compliance.extensions import db  # noqa: E402
from compliance.guidelines import load_pack  # noqa: E402
from compliance.sites.models import Organisation, Site, User  # noqa: E402
from compliance.sterilisation import curve_services  # noqa: E402
from compliance.sterilisation import services as sterilisation  # noqa: E402
from compliance.sterilisation.models import SteriliserTest  # noqa: E402
from compliance.sterilisation.curve_files import read_curves  # noqa: E402
from compliance.sterilisation.curve_physics import curve_csv, make_curve  # noqa: E402
from compliance.sterilisation.curves import CurveLimits, judge_curve  # noqa: E402

HEADER = "steriliser_serial,cycle_number,programme,started_at,seconds,temperature_c,pressure_kpa\n"
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


def file_bytes(minutes: int, number: int) -> bytes:
    drying = minutes * 60 - 1095 + 300  # the cycle without drying lasts 1,095 s with 300 s of drying
    curve = make_curve(holding_seconds=240, step=1.0, drying_seconds=drying)
    return (HEADER + curve_csv("BENCH-1", number, "134 °C", "2026-11-25T09:00:00+07:00", curve)).encode()


def timed(repeats: int, run) -> list[float]:
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        run(i)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def line(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{name:<7} median {statistics.median(times):7.2f} ms   p95 {p95:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url", nargs="?")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--minutes", type=int, default=40)
    args = parser.parse_args()
    data = file_bytes(args.minutes, 1)
    [curve] = read_curves(data)
    pack = load_pack()
    limits = CurveLimits(134.0, 180, float(pack.number("cycle-parameters-met", "max_temperature_over_set_c")),
                         float(pack.number("cycle-parameters-met", "saturated_steam_tolerance_k")),
                         float(pack.number("cycle-parameters-met", "min_samples_per_minute")),
                         float(pack.number("cycle-parameters-met", "max_sample_gap_seconds")))
    verdict = judge_curve(curve.seconds, curve.temperature_c, curve.pressure_kpa, limits)
    assert verdict.passed, verdict.reasons
    print(f"curve: {len(curve.seconds):,} samples, {curve.duration_seconds / 60:.1f} min, {len(data):,} bytes of CSV;"
          f" holding {verdict.holding_seconds:.0f} s, steam {verdict.steam_deviation_k:+.3f} K")
    parse = timed(args.repeats, lambda i: read_curves(data))
    judge = timed(args.repeats, lambda i: judge_curve(curve.seconds, curve.temperature_c, curve.pressure_kpa, limits))

    tmp = tempfile.mkdtemp()
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tmp}, environ={})
    with app.app_context():
        db.drop_all()
        db.create_all()
        org = Organisation(name="Bench org")
        site = Site(organisation=org, name="Bench site", timezone="Asia/Jakarta", language="en")
        manager = User(organisation=org, name="Manager", email="manager@bench.test", role="manager")
        manager.sites = [site]
        db.session.add_all([org, site, manager])
        db.session.flush()
        steriliser = Steriliser(site_id=site.id, name="A1", name_key="a1", type="B", serial="BENCH-1")
        db.session.add(steriliser)
        db.session.flush()
        db.session.add(Programme(steriliser_id=steriliser.id, name="134 °C", name_key="134 °c",
                                 temperature_c=Decimal("134"), min_holding_seconds=180))
        db.session.commit()
        actor = actor_for_user(manager)
        files = [file_bytes(args.minutes, 100 + i) for i in range(args.repeats)]

        def store(i):
            result = curve_services.import_curves(actor, files[i], NOW, filename="bench.csv")
            assert result.outcomes[0].outcome == "imported" and result.outcomes[0].curve.is_verdict_pass
            db.session.commit()

        stored = timed(args.repeats, store)

        # The same with a load typed first for each cycle number: the record's figures then win over the typed
        # ones (apply_machine_record: the load locked, judged again on the curve, a correction appended).
        for kind in ("spore", "air_removal"):
            db.session.add(SteriliserTest(site_id=site.id, steriliser_id=steriliser.id, kind=kind, result="pass",
                                          performed_at=NOW - timedelta(hours=2),
                                          control_result="grew" if kind == "spore" else None))
        db.session.commit()
        typed = [file_bytes(args.minutes, 5000 + i) for i in range(args.repeats)]
        for i in range(args.repeats):
            sterilisation.record_cycle(actor, {
                "steriliser_id": steriliser.id, "cycle_number": str(5000 + i), "temperature_c": "134.5",
                "holding_seconds": "200", "indicator_result": "pass", "indicator_class": "5", "printout_ref": "PR",
                "started_at": (NOW - timedelta(hours=1)).isoformat()}, NOW)
        db.session.commit()

        def store_with_load(i):
            result = curve_services.import_curves(actor, typed[i], NOW, filename="bench.csv")
            assert result.outcomes[0].load_change is not None
            db.session.commit()

        with_load = timed(args.repeats, store_with_load)
        backend = db.engine.url.get_backend_name()
    print(line("parse", parse))
    print(line("judge", judge))
    print(line("import", stored) + f"   ({backend}: parse + judge + file + curve stored, committed)")
    print(line("+load", with_load) + "   (the same, a typed load taking the record's figures)")
    ratio = statistics.median(judge) / statistics.median(parse)
    print(f"judge / parse = {ratio:.2f}   judging adds {statistics.median(judge):.2f} ms per curve "
          f"(target < 20 ms: {'met' if statistics.median(judge) < 20 else 'NOT met'})")


if __name__ == "__main__":
    main()
