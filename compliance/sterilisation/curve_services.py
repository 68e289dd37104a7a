"""Importing cycle records from the steriliser: a file or API body in, curves judged and kept, the file kept whole.

Services take the actor, the bytes and `now`, flush and never commit (views and the API commit). One curve per
(steriliser, machine cycle number): the same curve again changes nothing and says so; another curve under a number
already on record is refused for that cycle (the first stands). The file is stored once per site and content.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..auth.actor import Actor
from ..devices.models import Programme, Steriliser
from ..devices.services import get_steriliser
from ..errors import Invalid, NotFound
from ..extensions import db
from ..guidelines import Pack as GuidelinePack
from ..guidelines.services import pack_for_site
from ..names import name_key
from . import curves
from .curve_files import Curve, CurveFileError, read_curves
from .messages import file_error_text
from .models import Cycle, CurveFile, CycleCorrection, CycleCurve

OUTCOMES = ("imported", "unchanged", "conflict", "unknown_steriliser", "unknown_programme")


@dataclass(frozen=True)
class CurveOutcome:
    steriliser_serial: str
    cycle_number: int
    outcome: str                      # one of OUTCOMES
    curve: CycleCurve | None = None   # the stored curve (new, or the one already on record)
    load_change: CycleCorrection | None = None  # the typed load this record gave its figures (and maybe status)


@dataclass(frozen=True)
class ImportResult:
    sha256: str
    outcomes: tuple[CurveOutcome, ...]

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


def curve_limits(guideline: GuidelinePack, programme: Programme) -> curves.CurveLimits:
    """The numbers a curve is judged by: the programme's, and the pack's with the site's overrides."""
    rule = "cycle-parameters-met"
    return curves.CurveLimits(
        set_temperature_c=float(programme.temperature_c), min_holding_seconds=programme.min_holding_seconds,
        band_over_set_c=float(guideline.number(rule, "max_temperature_over_set_c")),
        steam_tolerance_k=float(guideline.number(rule, "saturated_steam_tolerance_k")),
        min_samples_per_minute=float(guideline.number(rule, "min_samples_per_minute")),
        max_gap_seconds=float(guideline.number(rule, "max_sample_gap_seconds")),
        min_pressure_kpa=None if programme.min_pressure_kpa is None else float(programme.min_pressure_kpa))


def samples_json(curve: Curve) -> bytes:
    return json.dumps([[s, t, p] for s, t, p in zip(curve.seconds, curve.temperature_c, curve.pressure_kpa)],
                      separators=(",", ":")).encode()


def samples_of(row: CycleCurve) -> tuple[list[float], list[float], list[float]]:
    """The stored samples as three series (seconds, °C, kPa)."""
    rows = json.loads(row.samples)
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def curve_digest(curve: Curve, samples: bytes) -> str:
    """What makes two records of one cycle the same: the start (as an instant), the programme and the samples."""
    head = f"{curve.started_at.astimezone(timezone.utc).isoformat()}\n{curve.programme}\n".encode()
    return hashlib.sha256(head + samples).hexdigest()


def _programme(steriliser: Steriliser, curve: Curve) -> Programme | None:
    """The steriliser's programme the machine means: the load typed with this cycle number, else the same name,
    else the one whose set temperature the machine's programme text names, else the only one."""
    active = [p for p in steriliser.programmes if p.is_active]
    typed = db.session.scalar(select(Cycle).where(Cycle.steriliser_id == steriliser.id,
                                                  Cycle.cycle_number == curve.cycle_number))
    if typed is not None:
        return typed.programme
    key = name_key(curve.programme)
    for p in active:
        if p.name_key == key:
            return p
    temps = {Decimal(t) for t in re.findall(r"(?<![0-9.])(1[0-4][0-9])(?:[.,]0)?\s*°?\s*C", curve.programme)}
    matching = [p for p in active if p.temperature_c in temps]
    if len(matching) == 1:
        return matching[0]
    return active[0] if len(active) == 1 else None


def _file_row(actor: Actor, site_id: int, data: bytes, sha: str, filename: str, media_type: str,
              now: datetime, files: dict) -> CurveFile:
    if site_id in files:
        return files[site_id]
    row = db.session.scalar(select(CurveFile).where(CurveFile.site_id == site_id, CurveFile.sha256 == sha))
    if row is None:
        row = CurveFile(site_id=site_id, filename=(filename or "")[:255], media_type=(media_type or "")[:100],
                        size_bytes=len(data), sha256=sha, content=data, uploaded_by_id=actor.user_id,
                        api_key_id=actor.api_key_id, created_at=now)
        db.session.add(row)
        db.session.flush()
    files[site_id] = row
    return row


def _sterilisers_by_serial(actor: Actor) -> dict[str, Steriliser | None]:
    """The actor's sterilisers by serial (None where two of them share one: such a file can't say which)."""
    found: dict[str, Steriliser | None] = {}
    for s in db.session.scalars(select(Steriliser).where(Steriliser.site_id.in_(actor.site_ids),
                                                         Steriliser.is_active.is_(True), Steriliser.serial != "")):
        key = s.serial.strip().upper()
        found[key] = None if key in found else s
    return found


def import_curves(actor: Actor, data: bytes, now: datetime, filename: str = "", media_type: str = "",
                  steriliser_id: int | None = None, error_field: str = "file") -> ImportResult:
    """Read a file of cycle records, judge each new curve and keep it with the file. Refuses the whole file
    (Invalid, field "file") when it can't be read; otherwise each cycle has its outcome."""
    actor.require("cycles.record")
    chosen = get_steriliser(actor, steriliser_id) if steriliser_id else None
    try:
        found = read_curves(data, filename, serial=chosen.serial if chosen else "")
    except CurveFileError as exc:
        raise Invalid(file_error_text(exc.as_dict()), field=error_field) from None
    sha = hashlib.sha256(data).hexdigest()
    by_serial = _sterilisers_by_serial(actor)
    outcomes: list[CurveOutcome] = []
    files: dict[int, CurveFile] = {}
    for curve in found:
        steriliser = by_serial.get(curve.steriliser_serial.strip().upper())
        if steriliser is None:
            outcomes.append(CurveOutcome(curve.steriliser_serial, curve.cycle_number, "unknown_steriliser"))
            continue
        samples = samples_json(curve)
        digest = curve_digest(curve, samples)
        existing = db.session.scalar(select(CycleCurve).where(CycleCurve.steriliser_id == steriliser.id,
                                                              CycleCurve.cycle_number == curve.cycle_number))
        if existing is not None:
            outcome = "unchanged" if existing.samples_sha256 == digest else "conflict"
            outcomes.append(CurveOutcome(curve.steriliser_serial, curve.cycle_number, outcome, existing))
            continue
        programme = _programme(steriliser, curve)
        if programme is None:
            outcomes.append(CurveOutcome(curve.steriliser_serial, curve.cycle_number, "unknown_programme"))
            continue
        guideline = pack_for_site(steriliser.site_id)
        limits = curve_limits(guideline, programme)
        verdict = curves.judge_curve(curve.seconds, curve.temperature_c, curve.pressure_kpa, limits)
        row = CycleCurve(
            site_id=steriliser.site_id, steriliser_id=steriliser.id, cycle_number=curve.cycle_number,
            programme_id=programme.id, programme_text=curve.programme[:80], started_at=curve.started_at,
            source_format=curve.source_format,
            curve_file_id=_file_row(actor, steriliser.site_id, data, sha, filename, media_type, now, files).id,
            sample_count=len(curve.seconds), samples=samples, samples_sha256=digest,
            machine_passed=curve.machine_passed, machine_log=curve.log_text, is_judged=verdict.judged,
            refusal=verdict.refusal.as_dict() if verdict.refusal else None, **_figures(verdict),
            is_verdict_pass=verdict.passed, reasons=[r.as_dict() for r in verdict.reasons],
            guideline_version=guideline.version, limits=asdict(limits), imported_by_id=actor.user_id,
            api_key_id=actor.api_key_id, created_at=now)
        db.session.add(row)
        outcomes.append(CurveOutcome(curve.steriliser_serial, curve.cycle_number, "imported", row))
    db.session.flush()
    from .services import apply_machine_record  # noqa: PLC0415 - the load's side builds on this module's reads
    for i, o in enumerate(outcomes):
        if o.outcome == "imported" and (load := load_for_curve(o.curve)) is not None:
            # the steriliser's figures win over the typed ones
            outcomes[i] = replace(o, load_change=apply_machine_record(actor, load.id, o.curve, now))
    return ImportResult(sha, tuple(outcomes))


def _dec(value: float | None, places: str) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal(places))


def _figures(verdict: curves.CurveVerdict) -> dict:
    holding = verdict.holding
    return {"holding_seconds": _dec(verdict.holding_seconds, "0.1") if holding else None,
            "holding_start_s": _dec(holding.start_s, "0.1") if holding else None,
            "holding_end_s": _dec(holding.end_s, "0.1") if holding else None,
            "equilibration_seconds": _dec(verdict.equilibration_seconds, "0.1"),
            "max_temperature_c": _dec(verdict.max_temperature_c, "0.1"),
            "steam_deviation_k": _dec(verdict.steam_deviation_k, "0.01"),
            "min_holding_pressure_kpa": _dec(verdict.min_holding_pressure_kpa, "0.1")}


def get_curve(actor: Actor, curve_id: int) -> CycleCurve:
    actor.require("sterilisation.read")
    row = db.session.get(CycleCurve, curve_id)
    if row is None or row.site_id not in actor.site_ids:
        raise NotFound(_l("no such cycle record"), field="curve_id")
    return row


def curve_for_load(actor: Actor, cycle: Cycle) -> CycleCurve | None:
    """The machine's record of a load typed by a person (the same steriliser and cycle number), if imported."""
    actor.require("sterilisation.read")
    return db.session.scalar(select(CycleCurve).where(CycleCurve.steriliser_id == cycle.steriliser_id,
                                                      CycleCurve.cycle_number == cycle.cycle_number))


def tolerances_for(guideline: GuidelinePack) -> curves.Tolerances:
    rule = "cycle-parameters-met"
    return curves.Tolerances(float(guideline.number(rule, "typed_temperature_tolerance_k")),
                             float(guideline.number(rule, "typed_holding_tolerance_seconds")),
                             float(guideline.number(rule, "typed_pressure_tolerance_kpa")))


def _compare(curve: CycleCurve, temperature_c, holding_seconds, pressure_kpa) -> list[curves.Comparison]:
    holding = None
    if curve.holding_start_s is not None and curve.holding_end_s is not None:
        holding = (float(curve.holding_start_s), float(curve.holding_end_s))
    return curves.reconcile(float(temperature_c), float(holding_seconds),
                            None if pressure_kpa is None else float(pressure_kpa), *samples_of(curve),
                            holding, tolerances_for(pack_for_site(curve.site_id)))


def machine_correction(load: Cycle) -> CycleCorrection | None:
    """The correction that gave a load its machine's figures (None while none was applied)."""
    return db.session.scalar(select(CycleCorrection).where(CycleCorrection.cycle_id == load.id,
                                                           CycleCorrection.kind == "machine_record"))


def reconciliation(curve: CycleCurve, load: Cycle) -> list[curves.Comparison]:
    """The figures typed from the printout beside the machine's record of the load, with the site's tolerances.
    Once the machine's figures won, the typed ones are those its correction kept as "before"."""
    applied = machine_correction(load)
    if applied is not None:
        return _compare(curve, applied.temperature_c_before, applied.holding_seconds_before,
                        applied.pressure_kpa_before)
    return _compare(curve, load.temperature_c, load.holding_seconds, load.pressure_kpa)


def disagreements_of(curve: CycleCurve, typed) -> list[dict]:
    """The typed figures (rules.CycleFigures) further off the machine's than the pack's tolerance, as stored on the
    machine record's correction: {"figure", "typed", "machine_low", "machine_high"}."""
    return [{"figure": c.figure, "typed": c.typed, "machine_low": round(c.machine_low, 2),
             "machine_high": round(c.machine_high, 2)}
            for c in _compare(curve, typed.temperature_c, typed.holding_seconds, typed.pressure_kpa) if c.disagrees]


def curves_for_loads(loads) -> dict[int, CycleCurve]:
    """{load id: the machine's record of it} for a page of loads."""
    loads = list(loads)
    if not loads:
        return {}
    rows = db.session.scalars(select(CycleCurve).where(
        CycleCurve.steriliser_id.in_({c.steriliser_id for c in loads}),
        CycleCurve.cycle_number.in_({c.cycle_number for c in loads})))
    by_key = {(r.steriliser_id, r.cycle_number): r for r in rows}
    return {c.id: by_key[(c.steriliser_id, c.cycle_number)] for c in loads
            if (c.steriliser_id, c.cycle_number) in by_key}


def figure_sources(loads) -> dict[int, str]:
    """{load id: where its figures come from}: the source format of the steriliser's record that replaced them,
    else "data_logger" (posted with an API key) or "typed" (FIGURE_SOURCE_LABELS)."""
    loads = list(loads)
    found: dict[int, str] = {}
    ids = [c.id for c in loads]
    for i in range(0, len(ids), 500):
        found.update(db.session.execute(
            select(CycleCorrection.cycle_id, CycleCurve.source_format)
            .join(CycleCurve, CycleCurve.id == CycleCorrection.curve_id)
            .where(CycleCorrection.kind == "machine_record", CycleCorrection.cycle_id.in_(ids[i:i + 500]))).all())
    return {c.id: found.get(c.id) or ("data_logger" if c.api_key_id is not None else "typed") for c in loads}


def load_for_curve(curve: CycleCurve) -> Cycle | None:
    return db.session.scalar(select(Cycle).where(Cycle.steriliser_id == curve.steriliser_id,
                                                 Cycle.cycle_number == curve.cycle_number))


def curves_query(actor: Actor, steriliser_id: int | None = None):
    actor.require("sterilisation.read")
    stmt = select(CycleCurve).where(CycleCurve.site_id.in_(actor.site_ids))
    if steriliser_id:
        stmt = stmt.where(CycleCurve.steriliser_id == steriliser_id)
    return stmt.order_by(CycleCurve.started_at.desc(), CycleCurve.id.desc())


def missing_numbers(numbers) -> list[tuple[int, int]]:
    """Pure: the runs of cycle numbers missing between the lowest and highest recorded, as (first, last)."""
    ordered = sorted(set(numbers))
    return [(a + 1, b - 1) for a, b in zip(ordered, ordered[1:]) if b - a > 1]


@dataclass(frozen=True)
class NumberGap:
    first: int
    last: int
    after_at: datetime  # the start of the cycle recorded just after the gap (the machine's start, if imported)


def number_gaps(steriliser_ids, site_ids) -> dict[int, list[NumberGap]]:
    """Per steriliser with imported curves (at `site_ids`): the runs of machine cycle numbers neither imported nor
    typed (cycles the clinic never recorded), between its lowest and highest imported numbers. No permission
    check: the logbook and the audit report check their readers."""
    gaps = {}
    for sid in steriliser_ids:
        imported = db.session.execute(select(CycleCurve.cycle_number, CycleCurve.started_at).where(
            CycleCurve.steriliser_id == sid, CycleCurve.site_id.in_(site_ids))).all()
        if not imported:
            continue
        lo, hi = min(n for n, _at in imported), max(n for n, _at in imported)
        started = dict(db.session.execute(select(Cycle.cycle_number, Cycle.started_at).where(
            Cycle.steriliser_id == sid, Cycle.cycle_number.between(lo, hi))).all())
        started.update(dict(imported))
        runs = [NumberGap(first, last, started[last + 1]) for first, last in missing_numbers(started)]
        if runs:
            gaps[sid] = runs
    return gaps


def cycle_number_gaps(actor: Actor, steriliser_ids) -> dict[int, list[tuple[int, int]]]:
    """The logbook's view of number_gaps: (first, last) missing per steriliser of the actor's sites."""
    actor.require("sterilisation.read")
    return {sid: [(g.first, g.last) for g in runs]
            for sid, runs in number_gaps(steriliser_ids, actor.site_ids).items()}


def get_curve_file(actor: Actor, file_id: int) -> CurveFile:
    actor.require("sterilisation.read")
    row = db.session.get(CurveFile, file_id)
    if row is None or row.site_id not in actor.site_ids:
        raise NotFound(_l("no such file"), field="file_id")
    return row
