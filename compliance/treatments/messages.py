"""Words for the point-of-use gate's reason codes, in the reader's language (as sterilisation/messages.py)."""
from __future__ import annotations

from datetime import date

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from ..guidelines import load_pack
from ..i18n import local_date
from ..sites.training import COURSES

MESSAGES = {
    "load_not_released": _l("Pack %(code)s is not from a released load: its load is %(status)s."),
    "pack_recalled": _l("Pack %(code)s was recalled: its steriliser failed a spore test."),
    "pack_expired": _l("Pack %(code)s is past its use-by date."),
    "pack_compromised": _l("Pack %(code)s was marked compromised (torn, wet, dropped or opened)."),
    "pack_used": _l("Pack %(code)s was already opened for a treatment."),
    "pack_failed": _l("Pack %(code)s comes from a failed load."),
    "device_withdrawn": _l("Device %(serial)s in this pack is %(status)s and must not be used."),
    "device_over_limit": _l("Device %(serial)s was reprocessed %(count)s times; the maker allows %(max)s."),
    "unit_used": _l("Unit %(serial)s was already used. A single-use item is used once, then discarded."),
    "lot_recalled": _l("Lot %(lot)s was recalled."),
    "lot_quarantined": _l("Lot %(lot)s is in quarantine."),
    "lot_expired": _l("Lot %(lot)s expired on %(expired_on)s."),
    "training_missing": _l("The practitioner has no valid training in “%(course)s”."),
    "screening_missing": _l("The client's screening is not recorded yet."),
    "active_infection": _l("The client has an active skin infection: no treatment today."),
    "passes_outside": _l("%(passes)s passes is outside %(min)s–%(max)s: confirm it to record it."),
}

# A load's status inside a sentence ("its load is awaiting release").
LOAD_STATUS_WORDS = {
    "awaiting_release": _l("awaiting release"),
    "failed": _l("failed"),
    "recalled": _l("recalled"),
    "released": _l("released"),
    "not sterilised": _l("not sterilised yet"),
    "quarantined": _l("quarantined"),
    "retired": _l("retired"),
}

def _words(values: dict) -> dict:
    """Stored values made readable: a course's name, a load status, a date in the reader's format."""
    out = dict(values)
    if "course" in out:
        out["course"] = str(COURSES.get(out["course"], out["course"]))
    if "status" in out:
        out["status"] = str(LOAD_STATUS_WORDS.get(out["status"], out["status"]))
    if out.get("expired_on"):
        try:
            out["expired_on"] = local_date(date.fromisoformat(str(out["expired_on"])))
        except ValueError:
            pass
    return out


def reason_text(reason: dict) -> str:
    """One stored or fresh reason ({rule, code, values}) as a sentence."""
    template = MESSAGES.get(reason.get("code"))
    if template is None:
        return reason.get("code", "")
    values = reason.get("values") or {}
    try:
        return str(template) % _words(values) if values else str(template)
    except (KeyError, TypeError, ValueError):
        return str(template)


def rule_title(rule_id: str, language: str | None = None) -> str:
    """The guideline's title in the given language (default: the request's)."""
    pack = load_pack()
    language = language or str(get_locale())
    return pack.rules[rule_id].title_in(language) if rule_id in pack.rules else rule_id


def is_overridable(reasons: list[dict], override_for) -> bool:
    """A refusal a manager may override here: every reason is `override: manager` in the site's guideline pack
    (checked again now: a site may have made a reason stricter since the refusal was stored)."""
    return bool(reasons) and all(override_for(r.get("code", "")) == "manager" for r in reasons)


INSTEAD = {
    "client": _l("No override is possible. Abandon the treatment: the client is not treated today."),
    "screening": _l("No override is possible. Record the client's screening first, then scan again."),
    "item": _l("No override is possible: no manager's word makes this item sterile or unused. Put it aside and take "
               "another one; if there is none, abandon the treatment."),
}


def instead_key(reasons: list[dict], override_for) -> str:
    """What to do instead of an override that is not possible: another item, the screening, or abandoning."""
    codes = {r.get("code") for r in reasons if override_for(r.get("code", "")) != "manager"}
    if "active_infection" in codes:
        return "client"
    if codes == {"screening_missing"}:
        return "screening"
    return "item"


def instead_text(reasons: list[dict], override_for) -> str:
    return str(INSTEAD[instead_key(reasons, override_for)])
