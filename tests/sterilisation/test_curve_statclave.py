"""The SciCan STATCLAVE G4 `cycleData` adapter, on a file shaped as the machine serves it plus what the
collector adds."""
import json

import pytest

from compliance.sterilisation.curve_files import CurveFileError, read_curves
from compliance.sterilisation.curve_files.statclave import claims


def g4(**changes):
    item = {"succeeded": True, "date": "2026-01-15", "number": 152, "runmode": 1, "display_units": "metric",
            "status": "Solid/Wrapped / 134°C/3min", "x_axis_points": 4,
            "temp": "57.65 100.10 134.50 134.60", "pressure": "1.0130 1.0140 3.0500 3.0600",
            "log": "CYCLE 00152 COMPLETE", "started_at": "2026-01-15T09:00:00+07:00",
            "sample_interval_seconds": 2, "pressure_unit": "bar"}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


def test_a_g4_cycle_reads_into_kpa_and_seconds():
    [curve] = read_curves(json.dumps(g4()).encode(), serial="710125H00004")
    assert curve.source_format == "statclave-g4"
    assert curve.steriliser_serial == "710125H00004" and curve.cycle_number == 152
    assert curve.programme == "Solid/Wrapped / 134°C/3min"
    assert curve.seconds == (0.0, 2.0, 4.0, 6.0)
    assert curve.temperature_c == (57.65, 100.10, 134.50, 134.60)
    assert curve.pressure_kpa == pytest.approx((101.30, 101.40, 305.0, 306.0))
    assert curve.machine_passed is True and curve.log_text == "CYCLE 00152 COMPLETE"


def test_newer_firmware_commas_duration_and_serial_from_the_file_name():
    item = g4(temp="57.65,100.10,134.50,134.60", pressure="101.3,101.4,305,306", pressure_unit="kPa",
              sample_interval_seconds=None, duration_seconds=9, file_name="S20260115_00152_710125H00004")
    [curve] = read_curves(json.dumps([item]).encode(), serial="chosen-on-screen")
    assert curve.steriliser_serial == "710125H00004"
    assert curve.seconds == (0.0, 3.0, 6.0, 9.0)


def test_imperial_temperatures_become_celsius():
    [curve] = read_curves(json.dumps(g4(display_units="imperial", temp="212 273.2 273.2 273.2")).encode(),
                          serial="S")
    assert curve.temperature_c == pytest.approx((100.0, 134.0, 134.0, 134.0))


@pytest.mark.parametrize("changes, code", [
    ({"started_at": None}, "statclave_missing"),
    ({"pressure_unit": None}, "statclave_missing"),
    ({"sample_interval_seconds": None}, "statclave_missing"),
    ({"pressure_unit": "atm"}, "statclave_bad_unit"),
    ({"sample_interval_seconds": 0}, "statclave_bad_interval"),
    ({"temp": "57 100 134"}, "series_lengths_differ"),
    ({"temp": ["57"]}, "statclave_bad_series"),
    ({"started_at": "2026-01-15 09:00"}, "start_time_without_offset"),
])
def test_what_the_machine_does_not_say_is_asked_for_not_guessed(changes, code):
    with pytest.raises(CurveFileError) as caught:
        read_curves(json.dumps(g4(**changes)).encode(), serial="S")
    assert caught.value.code == code


def test_no_serial_anywhere_is_refused():
    with pytest.raises(CurveFileError, match="missing_serial"):
        read_curves(json.dumps(g4()).encode())


def test_the_generic_json_is_not_taken_for_a_g4():
    assert claims(g4()) and claims([g4()])
    assert not claims({"cycles": []}) and not claims([{"steriliser_serial": "S"}]) and not claims([])
