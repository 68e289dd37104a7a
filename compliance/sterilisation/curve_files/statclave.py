"""SciCan STATCLAVE G4: the `cycleData` JSON its web page serves per cycle (as the open-source orca project
documents it): `date`, `number`, `status` (the programme), `log`, `temp` and `pressure` as series separated by
spaces (older firmware) or commas (newer), and `succeeded`.

That JSON does not say when the cycle started (only its date), how far apart the samples are, the pressure's unit
or the machine's serial. The collector that fetches it adds them beside the machine's keys — `started_at` (ISO
8601 with offset), `sample_interval_seconds` or `duration_seconds`, `pressure_unit` (kPa, bar, MPa or psi,
absolute), and `serial` (else taken from a `file_name` like S20260115_00152_710125H00004, else the steriliser
chosen on the upload screen). A file without them is refused naming what is missing; nothing is guessed.
Not yet checked against a file from a real machine.
"""
from __future__ import annotations

import re

from . import Curve, CurveFileError, cycle_number, number, start_time

MACHINE_KEYS = {"temp", "pressure", "number"}
FILE_NAME = re.compile(r"S\d{8}_\d+_(?P<serial>[A-Za-z0-9-]+)")
TO_KPA = {"kpa": 1.0, "bar": 100.0, "mpa": 1000.0, "psi": 6.894757}


def claims(document) -> bool:
    """Whether the JSON is G4 `cycleData` (one object, or a list of them)."""
    first = document[0] if isinstance(document, list) and document else document
    return isinstance(first, dict) and MACHINE_KEYS <= set(first)


def _series(raw, what: str, cycle: int) -> list[float]:
    if not isinstance(raw, str):
        raise CurveFileError("statclave_bad_series", field=what, cycle=cycle)
    return [number(x, what, cycle) for x in re.split(r"[\s,]+", raw.strip()) if x]


def _one(item: dict, serial: str, filename: str) -> Curve:
    if not isinstance(item, dict) or not MACHINE_KEYS <= set(item):
        raise CurveFileError("json_not_cycles")
    number_ = cycle_number(item["number"])
    missing = [k for k in ("started_at", "pressure_unit") if k not in item]
    if "sample_interval_seconds" not in item and "duration_seconds" not in item:
        missing.append("sample_interval_seconds")
    if missing:
        raise CurveFileError("statclave_missing", cycle=number_, keys=", ".join(missing))
    unit = str(item["pressure_unit"]).strip().lower()
    if unit not in TO_KPA:
        raise CurveFileError("statclave_bad_unit", cycle=number_, value=str(item["pressure_unit"])[:20])
    temps = _series(item["temp"], "temp", number_)
    pressures = _series(item["pressure"], "pressure", number_)
    if len(temps) != len(pressures):
        raise CurveFileError("series_lengths_differ", cycle=number_)
    if item.get("display_units", "metric") == "imperial":
        temps = [(x - 32) * 5 / 9 for x in temps]
    pressures = [x * TO_KPA[unit] for x in pressures]
    if "sample_interval_seconds" in item:
        step = number(item["sample_interval_seconds"], "sample_interval_seconds", number_)
    else:
        step = number(item["duration_seconds"], "duration_seconds", number_) / max(1, len(temps) - 1)
    if step <= 0:
        raise CurveFileError("statclave_bad_interval", cycle=number_)
    found = FILE_NAME.search(str(item.get("file_name") or filename or ""))
    serial = str(item.get("serial") or (found.group("serial") if found else "") or serial).strip()
    succeeded = item.get("succeeded")
    return Curve(serial, number_, str(item.get("status") or "").strip()[:80], start_time(item["started_at"], number_),
                 tuple(round(i * step, 3) for i in range(len(temps))), tuple(temps), tuple(pressures),
                 "statclave-g4", machine_passed=succeeded if isinstance(succeeded, bool) else None,
                 log_text=str(item.get("log") or "")[:20000])


def read(document, serial: str = "", filename: str = "") -> list[Curve]:
    items = document if isinstance(document, list) else [document]
    return [_one(item, serial, filename) for item in items]
