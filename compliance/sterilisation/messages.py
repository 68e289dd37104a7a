"""Words for the rules' reason codes, in the reader's language."""
from __future__ import annotations

import re
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from ..guidelines import load_pack
from ..i18n import number

_DECIMAL = re.compile(r"^-?[0-9]+\.[0-9]+$")

MESSAGES = {
    "steriliser_out_of_service": _l("The steriliser is out of service."),
    "temperature_low": _l("Temperature reached %(reached)s °C; the programme needs at least %(required)s °C."),
    "temperature_high": _l("Temperature reached %(reached)s °C, above the limit of %(limit)s °C."),
    "holding_short": _l("Holding time was %(reached)s s; the programme needs at least %(required)s s."),
    "pressure_missing": _l("No pressure recorded; the programme needs at least %(required)s kPa."),
    "pressure_low": _l("Pressure reached %(reached)s kPa; the programme needs at least %(required)s kPa."),
    "indicator_failed": _l("The chemical indicator did not pass."),
    "no_printout_low_class": _l("Without a printout or data-logger record, a class %(required)s or 6 indicator is needed."),
    "type_unfit": _l("A type %(type)s steriliser may not process wrapped or hollow items."),
    "no_air_removal_today": _l("No passing air-removal (Bowie-Dick/Helix) test today before this cycle."),
    "spore_missing": _l("No spore test result on record."),
    "spore_failed": _l("The last spore test failed."),
    "spore_overdue": _l("The last spore test is more than %(days)s days old."),
    # the verdict from a steriliser's own curve (curves.py)
    "curve_too_sparse": _l("The curve has %(per_minute)s samples a minute; at least %(required)s are needed to "
                           "judge it."),
    "curve_gap": _l("The curve has a gap of %(gap)s s after %(at)s s; at most %(limit)s s are allowed between "
                    "samples."),
    "curve_never_in_band": _l("The chamber temperature never stayed between %(low)s and %(high)s °C (highest "
                              "%(highest)s °C)."),
    "curve_holding_short": _l("The chamber stayed between %(low)s and %(high)s °C for %(reached)s s at most; the "
                              "programme needs %(required)s s."),
    "steam_not_saturated": _l("Not saturated steam: at %(at)s s the pressure %(pressure)s kPa means %(saturation)s "
                              "°C, but %(measured)s °C was measured (%(deviation)s K apart, at most %(tolerance)s "
                              "K allowed)."),
    "steam_pressure_off_line": _l("At %(at)s s the chamber pressure is no pressure saturated steam can have."),
    "curve_pressure_low": _l("The pressure during the holding time fell to %(reached)s kPa; the programme needs at "
                             "least %(required)s kPa."),
}

# Why a curve file or API body could not be read (curve_files); values name the cycle, line or sample.
FILE_MESSAGES = {
    "file_too_large": _l("The file is larger than %(limit)s bytes."),
    "not_utf8": _l("The file is not UTF-8 text."),
    "empty_file": _l("The file is empty."),
    "bad_json": _l("The file is not valid JSON."),
    "no_cycles": _l("The file holds no cycle."),
    "too_many_cycles": _l("The file holds %(count)s cycles; at most %(limit)s at once."),
    "cycle_twice_in_file": _l("Cycle %(cycle)s appears twice in the file."),
    "missing_serial": _l("Cycle %(cycle)s has no steriliser serial."),
    "too_few_samples": _l("Cycle %(cycle)s has fewer than two samples."),
    "too_many_samples": _l("Cycle %(cycle)s has %(count)s samples; at most %(limit)s."),
    "series_lengths_differ": _l("Cycle %(cycle)s has not as many pressures as temperatures."),
    "times_not_increasing": _l("Cycle %(cycle)s: the time of sample %(sample)s does not follow the one before."),
    "implausible_temperature": _l("Cycle %(cycle)s: sample %(sample)s has a temperature no steriliser shows "
                                  "(%(value)s °C)."),
    "implausible_pressure": _l("Cycle %(cycle)s: sample %(sample)s has a pressure no steriliser shows "
                               "(%(value)s kPa)."),
    "not_a_number": _l("%(field)s is not a number: %(value)s."),
    "bad_cycle_number": _l("The cycle number is not a whole number from 1: %(value)s."),
    "bad_start_time": _l("The start time is not an ISO 8601 time: %(value)s."),
    "start_time_without_offset": _l("The start time has no offset from UTC (such as +07:00): %(value)s."),
    "csv_missing_columns": _l("The CSV lacks the columns: %(columns)s."),
    "csv_unknown_columns": _l("The CSV has columns the format does not have: %(columns)s."),
    "csv_wrong_column_count": _l("Line %(line)s has %(count)s columns instead of %(expected)s."),
    "csv_cycle_changes": _l("Line %(line)s: cycle %(cycle)s changes its programme or start time."),
    "json_unknown_keys": _l("The JSON has keys the format does not have: %(keys)s."),
    "json_unknown_format": _l("The JSON's format is unknown: %(value)s."),
    "json_not_cycles": _l("The JSON holds no list of cycles."),
    "json_missing_keys": _l("A cycle in the JSON lacks: %(keys)s."),
    "json_bad_sample": _l("Cycle %(cycle)s: sample %(sample)s is not [seconds, °C, kPa]."),
    "json_bad_text": _l("Cycle %(cycle)s: the serial and the programme must be text."),
    "statclave_missing": _l("STATCLAVE cycle %(cycle)s: add what the machine does not say: %(keys)s."),
    "statclave_bad_unit": _l("STATCLAVE cycle %(cycle)s: unknown pressure unit %(value)s (kPa, bar, MPa or psi)."),
    "statclave_bad_interval": _l("STATCLAVE cycle %(cycle)s: the sample interval must be more than 0."),
    "statclave_bad_series": _l("STATCLAVE cycle %(cycle)s: %(field)s is not a series of numbers."),
}


def file_error_text(error: dict) -> str:
    """Why a curve file could not be read ({code, values}), as a sentence."""
    template = FILE_MESSAGES.get(error.get("code"))
    if template is None:
        return error.get("code", "")
    values = error.get("values") or {}
    try:
        return str(template) % values if values else str(template)
    except (KeyError, TypeError, ValueError):
        return str(template)


def reason_text(reason: dict) -> str:
    """One stored or fresh reason ({rule, code, values}) as a sentence."""
    template = MESSAGES.get(reason.get("code"))
    if template is None:
        return reason.get("code", "")
    # Stored figures are plain decimals ("133.5"); the reader sees them in their locale ("133,5").
    values = {k: number(Decimal(x)) if isinstance(x, str) and _DECIMAL.match(x) else x
              for k, x in (reason.get("values") or {}).items()}
    try:
        return str(template) % values if values else str(template)
    except (KeyError, TypeError, ValueError):
        return str(template)


def rule_title(rule_id: str, language: str) -> str:
    """The guideline's title in the given language."""
    pack = load_pack()
    return pack.rules[rule_id].title_in(language) if rule_id in pack.rules else rule_id


def reasons_text(reasons) -> str:
    """Several stored reasons in one cell or line: each is a sentence with its own full stop, so they are joined
    by a space ("Holding time too short. Indicator failed."), never by "; " after the stop (".;")."""
    texts = [text for text in map(reason_text, reasons) if text]
    return " ".join(text if text.endswith((".", "!", "?")) else f"{text}." for text in texts)
