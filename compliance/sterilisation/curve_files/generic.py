"""Our own curve format, CSV and JSON (docs/curve-format.md): what a data logger or a maker's export converted by
a small script sends. One or many cycles per file."""
from __future__ import annotations

import csv
import io

from . import Curve, CurveFileError, cycle_number, number, start_time

CSV_COLUMNS = ("steriliser_serial", "cycle_number", "programme", "started_at", "seconds", "temperature_c",
               "pressure_kpa")
CYCLE_KEYS = {"steriliser_serial", "cycle_number", "programme", "started_at", "samples"}
DOCUMENT_KEYS = {"format", "cycles"}
FORMAT = "clinic-curve/1"


def read_csv(text: str) -> list[Curve]:
    """A header line naming the seven columns (any order), then one line per sample; the cycle's own columns
    repeat on each line, so that a file holds many cycles. A cycle's lines need not be together, but its
    programme and start time must be the same on each."""
    reader = csv.reader(io.StringIO(text))
    header = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = [cell.strip().lower() for cell in row]
            break
    if header is None:
        raise CurveFileError("empty_file")
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise CurveFileError("csv_missing_columns", columns=", ".join(missing))
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        raise CurveFileError("csv_unknown_columns", columns=", ".join(unknown)[:200])
    at = {name: header.index(name) for name in CSV_COLUMNS}
    cycles: dict[tuple[str, int], dict] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise CurveFileError("csv_wrong_column_count", line=line, count=len(row), expected=len(header))
        serial = row[at["steriliser_serial"]].strip()
        number_ = cycle_number(row[at["cycle_number"]], line=line)
        programme = row[at["programme"]].strip()
        started = row[at["started_at"]].strip()
        cycle = cycles.get((serial, number_))
        if cycle is None:
            cycle = cycles[(serial, number_)] = {"programme": programme, "started_at": started,
                                                 "started": start_time(started, number_, line),
                                                 "s": [], "t": [], "p": []}
        elif (programme, started) != (cycle["programme"], cycle["started_at"]):
            raise CurveFileError("csv_cycle_changes", cycle=number_, line=line)
        cycle["s"].append(number(row[at["seconds"]], "seconds", number_, line))
        cycle["t"].append(number(row[at["temperature_c"]], "temperature_c", number_, line))
        cycle["p"].append(number(row[at["pressure_kpa"]], "pressure_kpa", number_, line))
    return [Curve(serial, number_, c["programme"], c["started"], tuple(c["s"]), tuple(c["t"]), tuple(c["p"]),
                  "generic-csv") for (serial, number_), c in cycles.items()]


def read_json(document) -> list[Curve]:
    """{"format": "clinic-curve/1", "cycles": [cycle, …]}, a list of cycles, or one cycle; a cycle is
    {"steriliser_serial", "cycle_number", "programme", "started_at", "samples": [[seconds, °C, kPa], …]}."""
    if isinstance(document, dict) and "cycles" in document:
        unknown = set(document) - DOCUMENT_KEYS
        if unknown:
            raise CurveFileError("json_unknown_keys", keys=", ".join(sorted(unknown))[:200])
        if document.get("format", FORMAT) != FORMAT:
            raise CurveFileError("json_unknown_format", value=str(document.get("format"))[:40])
        items = document["cycles"]
    elif isinstance(document, dict):
        items = [document]
    else:
        items = document
    if not isinstance(items, list):
        raise CurveFileError("json_not_cycles")
    return [_cycle(item, i + 1) for i, item in enumerate(items)]


def _cycle(item, position: int) -> Curve:
    if not isinstance(item, dict):
        raise CurveFileError("json_not_cycles")
    missing = CYCLE_KEYS - set(item)
    if missing:
        raise CurveFileError("json_missing_keys", keys=", ".join(sorted(missing)), position=position)
    unknown = set(item) - CYCLE_KEYS
    if unknown:
        raise CurveFileError("json_unknown_keys", keys=", ".join(sorted(unknown))[:200])
    number_ = cycle_number(item["cycle_number"])
    samples = item["samples"]
    if not isinstance(samples, list):
        raise CurveFileError("json_bad_sample", cycle=number_, sample=1)
    s, t, p = [], [], []
    for i, sample in enumerate(samples):
        if not isinstance(sample, list) or len(sample) != 3 or any(isinstance(x, str) for x in sample):
            raise CurveFileError("json_bad_sample", cycle=number_, sample=i + 1)
        s.append(number(sample[0], "seconds", number_))
        t.append(number(sample[1], "temperature_c", number_))
        p.append(number(sample[2], "pressure_kpa", number_))
    serial = item["steriliser_serial"]
    programme = item["programme"]
    if not isinstance(serial, str) or not isinstance(programme, str):
        raise CurveFileError("json_bad_text", cycle=number_)
    return Curve(serial.strip(), number_, programme.strip(), start_time(item["started_at"], number_), tuple(s),
                 tuple(t), tuple(p), "generic-json")
