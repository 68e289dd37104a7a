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
}


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
