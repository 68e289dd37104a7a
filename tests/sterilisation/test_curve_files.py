"""The generic curve format (CSV and JSON) and what read_curves refuses, without an app."""
import json
from datetime import timedelta

import pytest

from compliance.sterilisation.curve_files import MAX_SAMPLES_PER_CYCLE, CurveFileError, read_curves
from compliance.sterilisation.curve_files.generic import read_csv, read_json

HEADER = "steriliser_serial,cycle_number,programme,started_at,seconds,temperature_c,pressure_kpa\n"


def csv_rows(serial="SN-1", number=1042, start="2026-12-03T09:14:00+07:00", samples=((0, 24.1, 101.3),
                                                                                     (1, 25.0, 101.2))):
    return "".join(f"{serial},{number},134 °C,{start},{s},{t},{p}\n" for s, t, p in samples)


def test_csv_with_two_cycles_reads_both_in_order():
    curves = read_curves((HEADER + csv_rows(number=1042) + csv_rows(number=1043)).encode())
    assert [(c.steriliser_serial, c.cycle_number, c.source_format) for c in curves] == [
        ("SN-1", 1042, "generic-csv"), ("SN-1", 1043, "generic-csv")]
    first = curves[0]
    assert first.programme == "134 °C"
    assert first.started_at.utcoffset() == timedelta(hours=7)
    assert first.seconds == (0.0, 1.0) and first.temperature_c == (24.1, 25.0) and first.pressure_kpa == (101.3, 101.2)


def test_csv_columns_in_any_order_with_a_bom_and_blank_lines():
    text = ("\ufeffpressure_kpa,temperature_c,seconds,started_at,programme,cycle_number,steriliser_serial\n\n"
            "101.3,24.1,0,2026-12-03T02:14:00Z,Fast,7,X9\n101.4,30.0,2,2026-12-03T02:14:00Z,Fast,7,X9\n")
    [curve] = read_curves(text.encode("utf-8"))
    assert curve.cycle_number == 7 and curve.seconds == (0.0, 2.0) and curve.started_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text, code", [
    (HEADER.replace(",pressure_kpa", "") + "SN,1,P,2026-12-03T09:14:00+07:00,0,24\n", "csv_missing_columns"),
    (HEADER.strip() + ",humidity\n", "csv_unknown_columns"),
    (HEADER + "SN,1,P,2026-12-03T09:14:00+07:00,0,24\n", "csv_wrong_column_count"),
    (HEADER + csv_rows(start="2026-12-03T09:14:00"), "start_time_without_offset"),
    (HEADER + csv_rows(start="yesterday"), "bad_start_time"),
    (HEADER + csv_rows(number="0"), "bad_cycle_number"),
    (HEADER + csv_rows(samples=((0, "hot", 101),)), "not_a_number"),
    (HEADER + csv_rows(samples=((0, "nan", 101),)), "not_a_number"),
    (HEADER + csv_rows(samples=((0, 24, 101), (0, 25, 101))), "times_not_increasing"),
    (HEADER + csv_rows(samples=((0, 24, 101), (1, 900, 101))), "implausible_temperature"),
    (HEADER + csv_rows(samples=((0, 24, 101), (1, 25, -3))), "implausible_pressure"),
    (HEADER + csv_rows(samples=((0, 24, 101),)), "too_few_samples"),
    (HEADER + csv_rows(serial=""), "missing_serial"),
    (HEADER + csv_rows() + "SN-1,1042,121 °C,2026-12-03T09:14:00+07:00,5,24,101\n", "csv_cycle_changes"),
    (HEADER, "no_cycles"),
    ("   \n", "empty_file"),
])
def test_csv_refusals_name_what_is_wrong(text, code):
    with pytest.raises(CurveFileError) as caught:
        read_curves(text.encode())
    assert caught.value.code == code


def test_a_refusal_names_the_line():
    with pytest.raises(CurveFileError) as caught:
        read_csv(HEADER + csv_rows() + "SN-1,1042,134 °C,2026-12-03T09:14:00+07:00,2,warm,101\n")
    assert caught.value.values["line"] == 4 and caught.value.values["cycle"] == 1042


def test_not_utf8_and_not_json_are_refused():
    with pytest.raises(CurveFileError, match="not_utf8"):
        read_curves("é".encode("latin-1") + HEADER.encode())
    with pytest.raises(CurveFileError, match="bad_json"):
        read_curves(b'{"cycles": [')


def json_cycle(number=1042, samples=([0, 24.1, 101.3], [1, 25.0, 101.2]), **extra):
    return {"steriliser_serial": "SN-1", "cycle_number": number, "programme": "134 °C",
            "started_at": "2026-12-03T09:14:00+07:00", "samples": list(samples), **extra}


def test_json_document_list_and_single_cycle_are_the_same():
    documents = [{"format": "clinic-curve/1", "cycles": [json_cycle()]}, [json_cycle()], json_cycle()]
    curves = [read_curves(json.dumps(d).encode()) for d in documents]
    assert curves[0] == curves[1] == curves[2]
    assert curves[0][0].source_format == "generic-json" and curves[0][0].temperature_c == (24.1, 25.0)


@pytest.mark.parametrize("document, code", [
    ({"format": "clinic-curve/2", "cycles": []}, "json_unknown_format"),
    ({"cycles": [], "extra": 1}, "json_unknown_keys"),
    ({"cycles": "no"}, "json_not_cycles"),
    (json_cycle(colour="red"), "json_unknown_keys"),
    ({"steriliser_serial": "SN"}, "json_missing_keys"),
    (json_cycle(samples=([0, 24.1],)), "json_bad_sample"),
    (json_cycle(samples=([0, "24.1", 101],)), "json_bad_sample"),
    (json_cycle(samples=([0, True, 101], [1, 2, 3])), "not_a_number"),
    ([json_cycle(), json_cycle()], "cycle_twice_in_file"),
])
def test_json_refusals(document, code):
    with pytest.raises(CurveFileError) as caught:
        read_curves(json.dumps(document).encode())
    assert caught.value.code == code


def test_too_many_samples_is_refused():
    samples = [[i, 100.0, 200.0] for i in range(MAX_SAMPLES_PER_CYCLE + 1)]
    with pytest.raises(CurveFileError, match="too_many_samples"):
        read_curves(json.dumps(json_cycle(samples=samples)).encode())


def test_read_json_takes_python_values_as_the_api_body():
    [curve] = read_json({"cycles": [json_cycle(number=5)]})
    assert curve.cycle_number == 5


def test_the_example_files_under_docs_read():
    from pathlib import Path
    docs = Path(__file__).resolve().parents[2] / "docs"
    csv_curves = read_curves((docs / "curve-example.csv").read_bytes())
    json_curves = read_curves((docs / "curve-example.json").read_bytes())
    assert [c.cycle_number for c in csv_curves] == [c.cycle_number for c in json_curves]
    assert [c.seconds for c in csv_curves] == [c.seconds for c in json_curves]


def test_every_refusal_and_curve_reason_has_words():
    import re
    from pathlib import Path

    from compliance.sterilisation.messages import FILE_MESSAGES, MESSAGES
    root = Path(__file__).resolve().parents[2] / "compliance" / "sterilisation"
    raised = set()
    for path in (root / "curve_files").glob("*.py"):
        raised |= set(re.findall(r'CurveFileError\("([a-z0-9_]+)"', path.read_text()))
    assert raised and raised <= set(FILE_MESSAGES)
    reasons = set(re.findall(r'Reason\(RULE, "([a-z_]+)"', (root / "curves.py").read_text()))
    assert reasons and reasons <= set(MESSAGES)
