"""client-screening as the before-client checklist run for the treatment's client, answered once.

A treatment started on the tablet starts the organisation's before-client checklist for it; each answer is
stored the moment it is tapped (checklists.services.answer) and, for a run of a treatment, turned here into the
treatment's screening, which the gate reads. The API's screening (POST /treatments/<id>/screening) stays for
integrators that answer elsewhere; it is refused once the treatment has its checklist run, so the client is
never asked twice and the two can't disagree.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..auth.actor import Actor
from ..checklists.models import ChecklistRun, ChecklistTemplate, TemplateVersion
from ..errors import Conflict
from ..extensions import db
from ..guidelines.services import pack_for_site
from ..sites.models import Site
from . import rules
from .models import Treatment

KIND = "before_client"


def template_for(organisation_id: int) -> ChecklistTemplate | None:
    """The organisation's before-client checklist (the default one first), or None if it has none active."""
    found = list(db.session.scalars(select(ChecklistTemplate).where(
        ChecklistTemplate.organisation_id == organisation_id, ChecklistTemplate.kind == KIND,
        ChecklistTemplate.is_active.is_(True)).order_by(ChecklistTemplate.id)))
    return next((t for t in found if t.key == KIND), found[0] if found else None)


def run_for(treatment_id: int) -> ChecklistRun | None:
    """The treatment's before-client run (the first, if an old record has more)."""
    return db.session.scalar(
        select(ChecklistRun).join(TemplateVersion, TemplateVersion.id == ChecklistRun.version_id)
        .join(ChecklistTemplate, ChecklistTemplate.id == TemplateVersion.template_id)
        .where(ChecklistRun.treatment_id == treatment_id, ChecklistTemplate.kind == KIND)
        .order_by(ChecklistRun.id).limit(1))


def start_for(actor: Actor, treatment: Treatment, now: datetime) -> ChecklistRun | None:
    """The treatment's before-client run, started now if it has none (None: the organisation has no
    before-client checklist, and the screening is asked on its own)."""
    from ..checklists import services as checklists

    existing = run_for(treatment.id)
    if existing is not None:
        return existing
    site = db.session.get(Site, treatment.site_id)
    template = template_for(site.organisation_id)
    if template is None:
        return None
    return checklists.start_run(actor, {"site_id": treatment.site_id, "template_id": template.id,
                                        "room_id": treatment.room_id, "treatment_id": treatment.id}, now)


def raw(value) -> str:
    """An answer as the guideline pack names it: "yes"/"no" for a tick or yes/no, else its text."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return "" if value is None else str(value)


def after_answer(run: ChecklistRun, current: dict, now: datetime) -> None:
    """After an answer or a correction in a treatment's before-client run: the treatment's screening as the run
    now says it (nothing once the treatment is finished or abandoned: its record is closed)."""
    if run.treatment_id is None or run.version.template.kind != KIND:
        return
    treatment = db.session.get(Treatment, run.treatment_id)
    if treatment is None or treatment.status != "open":
        return
    items = {i.id: i for i in run.version.items}
    answers = {items[item_id].key: raw(a.value) for item_id, a in current.items() if item_id in items}
    contraindicated_when = pack_for_site(run.site_id).number("client-screening", "contraindicated_when") or {}
    screening = rules.screening_from_checklist(
        [rules.ScreeningItem(i.key, i.rule_id, i.is_required) for i in items.values()], answers,
        run.completed_at is not None, contraindicated_when, run.id)
    if screening is None and (treatment.screening or {}).get("checklist_run_id") != run.id:
        return  # nothing from this run yet (and nothing of this run's to take back)
    if screening != treatment.screening:  # None again: a corrected contraindication, questions still unanswered
        treatment.screening, treatment.screening_at = screening, now if screening is not None else None
        db.session.flush()


def refuse_api_screening(treatment: Treatment) -> None:
    """One place for the answers: once the treatment has its before-client run, the screening is answered there."""
    run = run_for(treatment.id)
    if run is not None:
        raise Conflict(_l("This treatment's screening is its before-client checklist (run %(run)s): answer or "
                          "correct its items there.", run=run.id), field="treatment_id", rule="client-screening")


def lines(treatment: Treatment) -> list[tuple[str, str]]:
    """The screening's questions and answers in the reader's language, when it came from a checklist run."""
    screening = treatment.screening or {}
    run_id = screening.get("checklist_run_id")
    if not run_id:
        return []
    run = db.session.get(ChecklistRun, run_id)
    if run is None:
        return []
    language = str(get_locale() or "en")
    answers = screening.get("answers") or {}
    return [(item.label.get(language) or item.label.get("en") or item.key, answers[item.key])
            for item in run.version.items if item.key in answers]
