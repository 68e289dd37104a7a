"""Cycle records from the steriliser itself: a file (or an API body) in, curves out.

A curve is one cycle as the machine logged it: its serial, its own cycle number, the programme, the start time
with its offset, and samples of (seconds from the start, chamber temperature °C, chamber pressure kPa absolute).
Each maker's shape has a small adapter of its own in this package (`generic.py`: our documented CSV and JSON,
docs/curve-format.md; `statclave.py`: SciCan STATCLAVE G4 `cycleData` JSON). `read_curves` picks the adapter.

Pure: bytes in, `Curve`s out, no Flask and no database. A file that can't be read raises `CurveFileError` with a
code and values (compliance/sterilisation/messages.py has the words), naming the cycle and line where it can.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime

MAX_CYCLES_PER_FILE = 500
MAX_SAMPLES_PER_CYCLE = 50_000   # a 1 Hz curve of almost 14 hours
MAX_FILE_BYTES = 16 * 1024 * 1024
# Readings no steriliser shows are refused as unreadable rather than judged (°C, kPa absolute).
PLAUSIBLE_TEMPERATURE_C = (-20.0, 200.0)
PLAUSIBLE_PRESSURE_KPA = (0.0, 1000.0)
MAX_SECONDS = 24 * 3600.0  # no cycle lasts a day


class CurveFileError(ValueError):
    """Why a file or body could not be read: `code` (for messages.py) and `values` (the cycle, line, field)."""

    def __init__(self, code: str, **values):
        self.code, self.values = code, values
        super().__init__(f"{code} {values}")

    def as_dict(self) -> dict:
        return {"code": self.code, "values": self.values}


@dataclass(frozen=True)
class Curve:
    steriliser_serial: str
    cycle_number: int
    programme: str
    started_at: datetime                      # aware, with the machine's offset
    seconds: tuple[float, ...]                # from the start, strictly increasing
    temperature_c: tuple[float, ...]
    pressure_kpa: tuple[float, ...]           # absolute
    source_format: str                        # generic-csv, generic-json, statclave-g4
    machine_passed: bool | None = None        # the machine's own verdict, where the format has one
    log_text: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float:
        return self.seconds[-1] - self.seconds[0] if self.seconds else 0.0


def number(raw, what: str, cycle=None, line=None) -> float:
    """A reading as a finite float ("134.2", 134.2; a decimal comma is not read: CSV columns are comma-separated)."""
    if isinstance(raw, bool):
        raise CurveFileError("not_a_number", field=what, value=str(raw), cycle=cycle, line=line)
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise CurveFileError("not_a_number", field=what, value=str(raw)[:40], cycle=cycle, line=line) from None
    if not math.isfinite(value):
        raise CurveFileError("not_a_number", field=what, value=str(raw)[:40], cycle=cycle, line=line)
    return value


def cycle_number(raw, cycle=None, line=None) -> int:
    text = str(raw).strip()
    if isinstance(raw, bool) or not text.isdigit() or not 1 <= int(text) <= 10**9:
        raise CurveFileError("bad_cycle_number", value=text[:40], cycle=cycle, line=line)
    return int(text)


def start_time(raw, cycle=None, line=None) -> datetime:
    """An ISO 8601 start time with its offset ("2026-12-03T09:14:00+07:00"); a time without one is refused: the
    machine's clock zone is not guessed."""
    text = str(raw or "").strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CurveFileError("bad_start_time", value=text[:40], cycle=cycle, line=line) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CurveFileError("start_time_without_offset", value=text[:40], cycle=cycle, line=line)
    return moment


def checked(curve: Curve) -> Curve:
    """Refuse a curve whose samples can't be a cycle: none, too many, times not increasing, readings nobody's
    steriliser shows. (Too sparse a curve is readable; the verdict refuses to judge it, curves.py.)"""
    n = len(curve.seconds)
    if not curve.steriliser_serial.strip():
        raise CurveFileError("missing_serial", cycle=curve.cycle_number)
    if n < 2:
        raise CurveFileError("too_few_samples", cycle=curve.cycle_number, count=n)
    if n > MAX_SAMPLES_PER_CYCLE:
        raise CurveFileError("too_many_samples", cycle=curve.cycle_number, count=n, limit=MAX_SAMPLES_PER_CYCLE)
    if not n == len(curve.temperature_c) == len(curve.pressure_kpa):
        raise CurveFileError("series_lengths_differ", cycle=curve.cycle_number)
    lo_t, hi_t = PLAUSIBLE_TEMPERATURE_C
    lo_p, hi_p = PLAUSIBLE_PRESSURE_KPA
    previous = -math.inf
    for i in range(n):
        t, temp, pres = curve.seconds[i], curve.temperature_c[i], curve.pressure_kpa[i]
        if t < 0 or t <= previous or t > MAX_SECONDS:
            raise CurveFileError("times_not_increasing", cycle=curve.cycle_number, sample=i + 1, value=t)
        previous = t
        if not lo_t <= temp <= hi_t:
            raise CurveFileError("implausible_temperature", cycle=curve.cycle_number, sample=i + 1, value=temp)
        if not lo_p <= pres <= hi_p:
            raise CurveFileError("implausible_pressure", cycle=curve.cycle_number, sample=i + 1, value=pres)
    return curve


def read_curves(data: bytes, filename: str = "", serial: str = "") -> list[Curve]:
    """Every cycle in a file or API body, by the adapter its content asks for. `serial`: the steriliser the person
    chose on the upload screen, for formats that don't name it (a G4's `cycleData` alone)."""
    from . import generic, statclave  # noqa: PLC0415 - the adapters import this module's helpers

    if len(data) > MAX_FILE_BYTES:
        raise CurveFileError("file_too_large", limit=MAX_FILE_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CurveFileError("not_utf8") from None
    stripped = text.lstrip()
    if not stripped:
        raise CurveFileError("empty_file")
    if stripped[0] in "[{":
        try:
            document = json.loads(stripped)
        except ValueError as exc:
            raise CurveFileError("bad_json", detail=str(exc)[:120]) from None
        if statclave.claims(document):
            curves = statclave.read(document, serial=serial, filename=filename)
        else:
            curves = generic.read_json(document)
    else:
        curves = generic.read_csv(text)
    if not curves:
        raise CurveFileError("no_cycles")
    if len(curves) > MAX_CYCLES_PER_FILE:
        raise CurveFileError("too_many_cycles", count=len(curves), limit=MAX_CYCLES_PER_FILE)
    seen = set()
    for curve in curves:
        key = (curve.steriliser_serial, curve.cycle_number)
        if key in seen:
            raise CurveFileError("cycle_twice_in_file", cycle=curve.cycle_number, serial=curve.steriliser_serial)
        seen.add(key)
    return [checked(c) for c in curves]
