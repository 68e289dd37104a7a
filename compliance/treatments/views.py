"""Treatment screens: the tablet flow with the point-of-use gate, and the manager's lists, trace and look-back."""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Iterable

from flask import (Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, session,
                   url_for)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from ..audit.services import record_export
from ..checklists import services as checklist_services
from ..audit.services import record_event
from ..auth.actor import Actor
from ..auth.services import PinPolicy, tablet_people
from ..devices import services as device_services
from ..devices.models import Device, Steriliser
from ..errors import NotFound, ServiceError
from ..extensions import db
from ..guidelines import load_pack
from ..guidelines.services import pack_for_site
from ..reports.pdf import render_pdf
from ..sites.models import Room, Site, User
from ..sterilisation import services as steri
from ..sterilisation.forms import CYCLE_STATUS_LABELS, TEST_RESULT_LABELS
from ..sterilisation.models import Cycle, Pack, PackItem
from ..sterilisation.views import csv_cell, local_day_start
from ..stock import services as stock_services
from ..stock.models import Lot, Unit
from ..i18n import local_date
from ..timeutil import to_local, utcnow
from ..web import (
    arg_day, arg_id, current_actor, flash_redirect, paginate, refuse_at_field, requires, sort_clause, submit,
    wants_partial,
)
from . import screening, services
from .forms import (ADVERSE_KIND_LABELS, PROCEDURE_LABELS, SCREENING_LABELS, SEVERITY_LABELS, STATUS_CLASS,
                    STATUS_LABELS, SUBJECT_LABELS, AbandonForm, AdverseEventForm, FinishForm, OverrideForm, ScanForm,
                    ScreeningForm, StartForm)
from .messages import instead_text, is_overridable, reason_text, rule_title
from .models import (AdverseEvent, GateAttempt, GateOverride, LookBack, SharpsContainer, Treatment,
                     TreatmentPack, TreatmentUnit)

bp = Blueprint("treatments", __name__)

TABLET = "tablet/base.html"
DESK = "base.html"


@bp.context_processor
def _labels() -> dict:
    return {"PROCEDURE_LABELS": PROCEDURE_LABELS, "STATUS_LABELS": STATUS_LABELS, "STATUS_CLASS": STATUS_CLASS,
            "SCREENING_LABELS": SCREENING_LABELS, "ADVERSE_KIND_LABELS": ADVERSE_KIND_LABELS,
            "SEVERITY_LABELS": SEVERITY_LABELS, "SUBJECT_LABELS": SUBJECT_LABELS}


# --- pure helpers --------------------------------------------------------------------------------

def is_pack_code(raw: str) -> bool:
    """A pack label (typed, or the URL in its QR code); anything else is a single-use unit's code."""
    text = (raw or "").strip()
    return "/p/" in text or text.upper().startswith("PK-")


def local_text(value: datetime | None, tz: str) -> str:
    """A local time for tables and CSV: sortable, with the zone in a column of its own."""
    return to_local(value, tz).strftime("%Y-%m-%d %H:%M") if value else ""


def local_input(value: datetime, tz: str) -> datetime:
    """A UTC instant as the wall-clock value a datetime-local input shows."""
    return to_local(value, tz).replace(tzinfo=None, second=0, microsecond=0)


# --- request helpers -----------------------------------------------------------------------------

def _is_tablet() -> bool:
    return bool(session.get("tablet_mode")) or g.get("tablet") is not None


def _site_in_context(actor: Actor) -> Site:
    """The enrolled tablet's site, else ?site= in reach, else the person's first site in reach; sets g.site."""
    site = None
    wanted = arg_id("site")
    if g.get("tablet") is not None and g.tablet.site_id in actor.site_ids:
        site = g.tablet.site
    elif wanted is not None:
        if wanted not in actor.site_ids:
            abort(404)
        site = db.session.get(Site, wanted)
    else:
        site = next((s for s in current_user.sites if s.id in actor.site_ids), None)
    if site is None:
        abort(404, description=_("You are not assigned to a site yet. Ask a manager."))
    g.site = site
    return site


def _treatment(actor: Actor, treatment_id: int) -> Treatment:
    treatment = services.get_treatment(actor, treatment_id)  # another site's: 404
    g.site = treatment.site
    return treatment


def _sites_in_reach(actor: Actor) -> list[Site]:
    return list(db.session.scalars(select(Site).where(Site.id.in_(actor.site_ids)).order_by(Site.name)))


def _in_local_window(stmt, sites: Iterable[Site], date_from: date | None, date_to: date | None):
    """Treatments started within local calendar days, each site judged in its own time zone."""
    if not (date_from or date_to):
        return stmt
    clauses = []
    for site in sites:
        parts = [Treatment.site_id == site.id]
        if date_from:
            parts.append(Treatment.started_at >= local_day_start(date_from, site.timezone))
        if date_to:
            parts.append(Treatment.started_at < local_day_start(date_to + timedelta(days=1), site.timezone))
        clauses.append(and_(*parts))
    return stmt.where(or_(*clauses)) if clauses else stmt.where(False)


def _csv_text(header: list[str], rows: Iterable[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return buffer.getvalue()


def _csv_response(header: list[str], rows: Iterable[list], filename: str, text: str | None = None) -> Response:
    return Response(_csv_text(header, rows) if text is None else text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


def _users(ids: Iterable[int | None]) -> dict[int, User]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))}


def _practitioners(site: Site) -> list[User]:
    """Who may be named as practitioner: the site's people on the tablet, and the signed-in person."""
    people = tablet_people(site.id)
    if current_user.id not in {p.id for p in people} and site.id in current_user.site_ids:
        people = sorted([*people, current_user._get_current_object()], key=lambda u: u.name)
    return people


def _site_managers(site: Site) -> list[User]:
    """Who may confirm an override on this site's tablet (the service checks their password or PIN)."""
    return list(db.session.scalars(
        select(User).join(User.sites).where(Site.id == site.id, User.role.in_(("manager", "admin")),
                                            User.is_active_user.is_(True)).order_by(User.name)))


def _open_containers(site: Site) -> list[SharpsContainer]:
    return list(db.session.scalars(
        select(SharpsContainer).where(SharpsContainer.site_id == site.id, SharpsContainer.closed_at.is_(None))
        .options(selectinload(SharpsContainer.room)).order_by(SharpsContainer.label)))


def _look_backs(event_ids: list[int]) -> dict[int, LookBack]:
    if not event_ids:
        return {}
    return {lb.adverse_event_id: lb for lb in db.session.scalars(
        select(LookBack).where(LookBack.adverse_event_id.in_(event_ids)))}


# --- what the gate said --------------------------------------------------------------------------

@dataclass(frozen=True)
class ReasonLine:
    text: str
    rule: str
    title: str


@dataclass(frozen=True)
class GateAnswer:
    accepted: bool
    subject: str            # pack or unit
    code: str               # the pack label or the unit serial
    detail: str             # what it is: contents and load, or item type and lot
    reasons: list[ReasonLine]
    attempt_id: int | None
    overridable: bool       # every reason is one a manager may override here
    overridden: bool
    already: bool = False   # scanned again for the same client: nothing new, nothing refused
    instead: str = ""       # what to do when no override is possible


def _reason_lines(reasons: Iterable[dict]) -> list[ReasonLine]:
    return [ReasonLine(reason_text(r), r.get("rule", ""), rule_title(r.get("rule", ""))) for r in reasons]


def _pack_detail(pack: Pack) -> str:
    contents = ", ".join(f"{i.device.device_type.name} {i.device.serial}" for i in pack.items)
    if pack.cycle is None:
        return contents
    load = _("%(steriliser)s, load %(n)s", steriliser=pack.cycle.steriliser.name, n=pack.cycle.cycle_number)
    return f"{contents} · {load}"


def _unit_detail(unit: Unit) -> str:
    return _("%(item)s · lot %(lot)s, use by %(day)s", item=unit.item_type.name, lot=unit.lot.lot_number,
             day=local_date(unit.lot.expires_on))


def _answer(result: services.GateResult, subject: str, guideline) -> GateAnswer:
    """The gate's result, ready to show: what was scanned, and every reason in words with its guideline."""
    usage, attempt = result.usage, result.attempt
    pack = usage.pack if isinstance(usage, TreatmentPack) else (
        db.session.get(Pack, attempt.pack_id) if attempt is not None and attempt.pack_id else None)
    unit = usage.unit if isinstance(usage, TreatmentUnit) else (
        db.session.get(Unit, attempt.unit_id) if attempt is not None and attempt.unit_id else None)
    if pack is not None:
        subject, code, detail = "pack", pack.label_code, _pack_detail(pack)
    elif unit is not None:
        subject, code, detail = "unit", unit.serial, _unit_detail(unit)
    else:
        code, detail = (attempt.scanned if attempt else ""), ""
    overridable = attempt is not None and is_overridable(attempt.reasons, guideline.override_for)
    return GateAnswer(result.accepted, subject, code, detail, _reason_lines(result.reasons),
                      attempt.id if attempt is not None else None, overridable,
                      usage is not None and usage.override_id is not None, result.already,
                      "" if overridable or attempt is None else instead_text(attempt.reasons, guideline.override_for))


def _answer_for_attempt(attempt: GateAttempt, guideline) -> GateAnswer:
    return _answer(services.GateResult(False, attempt.reasons, attempt), attempt.subject, guideline)


# --- the tablet: start, screening, the scan box, override, finish -------------------------------

@dataclass(frozen=True)
class Suggestion:
    kind: str
    code: str
    expires_on: date | None
    contents: str


def _suggestions(actor: Actor, site: Site, now: datetime) -> list[Suggestion]:
    """sterile-storage, first in first out: the pack of each device kind that expires soonest."""
    found = []
    for kind in db.session.scalars(device_services.device_types_query(actor)):
        pack = steri.oldest_usable_pack(actor, site.id, kind.id, now)
        if pack is not None:
            found.append(Suggestion(kind.name, pack.label_code,
                                    to_local(pack.expires_at, site.timezone).date() if pack.expires_at else None,
                                    ", ".join(i.device.serial for i in pack.items)))
    return found


def _start_page(actor: Actor, site: Site, form: StartForm, status: int = 200):
    now = utcnow()
    day_start = local_day_start(to_local(now, site.timezone).date(), site.timezone)
    recent = list(db.session.scalars(
        services.treatments_query(actor, site_id=site.id).where(
            or_(Treatment.status == "open", Treatment.started_at >= day_start))
        .options(selectinload(Treatment.client), selectinload(Treatment.room),
                 selectinload(Treatment.practitioner)).limit(30)))
    return render_template("treatments/start.html", form=form, site=site, recent=recent,
                           can_contact=actor.can("clients.contact")), status


def _methods(site: Site) -> list[tuple[str, str]]:
    """The ways of needling the site's guideline pack knows (pen, roller), in the reader's language."""
    language = str(get_locale() or "en")
    return [(key, m.title_in(language)) for key, m in pack_for_site(site.id).methods.items()]


def _rooms(site: Site) -> list[Room]:
    """The site's treatment rooms (every active room if none is marked as one)."""
    rooms = [r for r in site.rooms if r.is_active]
    return [r for r in rooms if r.kind == "treatment"] or rooms


@bp.route("/tablet/treatments/new", methods=["GET", "POST"])
@requires("treatments.record")
def start_treatment():
    """Start a treatment: the client (by code), room, procedure and practitioner."""
    actor = current_actor()
    site = _site_in_context(actor)
    form = StartForm(rooms=_rooms(site), people=_practitioners(site), methods=_methods(site))
    if request.method == "GET":
        form.client_choice.data = "existing"
        form.room_id.data = form.room_id.choices[0].value if form.room_id.choices else None
        form.practitioner_id.data = current_user.id
        return _start_page(actor, site, form)
    status = 422
    code = (form.client_code.data or "").strip()
    if form.validate_on_submit():
        if form.client_choice.data != "new" and not code:
            form.client_code.errors = [_("Type the client's code, or choose “New client”.")]
            return _start_page(actor, site, form, 422)
        data = {"room_id": form.room_id.data, "procedure": form.procedure.data or "", "method": form.method.data or "",
                "practitioner_id": form.practitioner_id.data or current_user.id}
        now = utcnow()
        try:
            if form.client_choice.data == "new":
                client = services.create_client(actor, form.client_values(site.id, actor.can("clients.contact")),
                                                now)
                data["client_id"] = client.id
            else:
                data["client_code"] = code
            treatment = services.start_treatment(actor, data, now)
            run = screening.start_for(actor, treatment, now)  # the screening: the before-client checklist
        except ServiceError as exc:
            status = refuse_at_field(form, exc, aliases={"client_id": "client_code", "site_id": "room_id"},
                                     on_form=True)
        else:
            db.session.commit()
            if form.client_choice.data == "new":
                flash(_("New client: code %(code)s. Write it on the client's card; it is how they are found next "
                        "time.", code=treatment.client.code), "success")
            if run is not None:
                return redirect(url_for("checklists.show_run", run_id=run.id))
            return redirect(url_for("treatments.record_screening", treatment_id=treatment.id))
    return _start_page(actor, site, form, status)


@bp.route("/tablet/treatments/<int:treatment_id>/screening", methods=["GET", "POST"])
@requires("treatments.record")
def record_screening(treatment_id: int):
    """client-screening, before anything touches the skin: the before-client checklist run for this client
    (started by a POST here if the treatment has none yet); big yes/no answers on their own only where the
    organisation has no before-client checklist."""
    actor = current_actor()
    treatment = _treatment(actor, treatment_id)
    run = screening.run_for(treatment.id)
    if run is not None:
        return redirect(url_for("checklists.show_run", run_id=run.id))
    if treatment.status != "open":
        return redirect(url_for("treatments.continue_treatment", treatment_id=treatment.id))
    if screening.template_for(treatment.site.organisation_id) is not None:
        if request.method == "GET":
            return render_template("treatments/screening_start.html", treatment=treatment, site=treatment.site)
        try:  # the CSRF token is checked for every POST (CSRFProtect)
            run = screening.start_for(actor, treatment, utcnow())
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(url_for("treatments.continue_treatment", treatment_id=treatment.id))
        db.session.commit()
        return redirect(url_for("checklists.show_run", run_id=run.id))
    form = ScreeningForm()
    if request.method == "GET" and treatment.screening:
        for name in SCREENING_LABELS:
            answer = treatment.screening.get(name)
            getattr(form, name).data = answer if name == "skin_type" else ("yes" if answer else "no")
        form.notes.data = treatment.screening.get("notes", "")

    def screened(done: Treatment):
        if done.screening.get("active_skin_infection"):
            flash(_("Active skin infection: do not treat today. The gate refuses every pack and unit."), "error")
        return redirect(url_for("treatments.continue_treatment", treatment_id=done.id))

    outcome = submit(form, lambda: services.record_screening(actor, treatment.id, form.values(), utcnow()), screened,
                     on_form=True)
    if not isinstance(outcome, int):
        return outcome
    return render_template("treatments/screening.html", form=form, treatment=treatment, site=treatment.site), outcome


def _gate_context(actor: Actor, treatment: Treatment, scan_form: ScanForm, answer: GateAnswer | None = None,
                  override_form: OverrideForm | None = None, abandon_form: AbandonForm | None = None) -> dict:
    site = treatment.site
    if answer is None or not answer.overridable:
        override_form = None  # a refusal no manager may override shows no override form, not even after a try
    elif override_form is None:
        override_form = OverrideForm(formdata=None, managers=_site_managers(site))
    events = [] if wants_partial() else list(db.session.scalars(
        select(AdverseEvent).where(AdverseEvent.treatment_id == treatment.id).order_by(AdverseEvent.onset_at)))
    return {"treatment": treatment, "site": site, "scan_form": scan_form, "answer": answer,
            **_finish_readiness(treatment),
            "events": events, "look_backs": _look_backs([e.id for e in events]), "can_trace": actor.can("trace.read"),
            "override_form": override_form, "suggestions": _suggestions(actor, site, utcnow()),
            "abandon_form": abandon_form or AbandonForm(formdata=None),
            "pack_details": {u.id: _pack_detail(u.pack) for u in treatment.packs},
            "unit_details": {u.id: _unit_detail(u.unit) for u in treatment.units}}


def _finish_readiness(treatment: Treatment) -> dict:
    """The needle items the method needs with a tick for each the gate accepted; whether the screening stops it."""
    language = str(get_locale() or "en")
    needles = [(req.title_in(language), met)
               for req, met in services.needle_checklist(treatment, pack_for_site(treatment.site_id))]
    screening_now = treatment.screening or {}
    contraindicated = bool(screening_now.get("active_skin_infection"))
    run = screening.run_for(treatment.id)
    progress = checklist_services.progress_of([run]).get(run.id) if run is not None else None
    return {"needles": needles, "contraindicated": contraindicated, "before_client": run,
            "before_client_progress": progress if run is not None and run.completed_at is None else None,
            "ready_to_finish": bool(screening_now) and not contraindicated and all(met for _t, met in needles)
            and (run is None or run.completed_at is not None)}


def _gate_page(actor: Actor, treatment: Treatment, scan_form: ScanForm, answer: GateAnswer | None = None,
               override_form: OverrideForm | None = None, status: int = 200, abandon_form: AbandonForm | None = None):
    """The scan screen; to htmx only its gate panel (scan box, answer, what is in use)."""
    context = _gate_context(actor, treatment, scan_form, answer, override_form, abandon_form)
    template = "treatments/_gate.html" if wants_partial() else "treatments/gate.html"
    return render_template(template, **context), status


@bp.get("/tablet/treatments/<int:treatment_id>")
@requires("treatments.record")
def continue_treatment(treatment_id: int):
    """The treatment on the tablet: the scan box while it is open, its summary once finished."""
    actor = current_actor()
    treatment = _treatment(actor, treatment_id)
    if treatment.status != "open":
        return render_template("treatments/summary.html", **_detail_context(actor, treatment))
    return _gate_page(actor, treatment, ScanForm(formdata=None))


@bp.post("/tablet/treatments/<int:treatment_id>/scan")
@requires("treatments.record")
def scan_item(treatment_id: int):
    """The point-of-use gate: a scanned pack or single-use unit is accepted (used) or refused (attempt kept)."""
    actor = current_actor()
    treatment = _treatment(actor, treatment_id)
    form = ScanForm()
    status, answer = 422, None
    code = (form.code.data or "").strip()
    if form.validate_on_submit():
        if not code:
            form.code.errors = [_("Scan or type a pack label or a unit's barcode.")]
            return _gate_page(actor, treatment, form, status=422)
        add = services.add_pack if is_pack_code(code) else services.add_unit
        try:
            result = add(actor, treatment.id, code, utcnow())
        except ServiceError as exc:
            status = refuse_at_field(form, exc, fallback="code", on_form=True)
        else:
            db.session.commit()  # accepted: the usage; refused: the attempt (who, what, which rule) and no usage
            answer = _answer(result, "pack" if add is services.add_pack else "unit", pack_for_site(treatment.site_id))
            status = 200 if result.accepted else 409
            form = ScanForm(formdata=None)
    return _gate_page(actor, services.get_treatment(actor, treatment_id), form, answer, status=status)


@bp.post("/tablet/treatments/<int:treatment_id>/refusals/<int:attempt_id>/override")
@requires("treatments.record")
def override_refusal(treatment_id: int, attempt_id: int):
    """A manager, on the spot, confirms with their password or PIN and a written reason (a finding)."""
    actor = current_actor()
    treatment = _treatment(actor, treatment_id)
    attempt = db.session.get(GateAttempt, attempt_id)
    if attempt is None or attempt.treatment_id != treatment.id:
        abort(404)
    form = OverrideForm(managers=_site_managers(treatment.site))
    status = 422
    if form.validate_on_submit():
        try:
            policy = PinPolicy(current_app.config["PIN_MAX_ATTEMPTS"], current_app.config["PIN_LOCK_MINUTES"])
            result = services.override_attempt(actor, attempt.id, form.values(), utcnow(), policy)
        except ServiceError as exc:
            status = refuse_at_field(form, exc, aliases={"attempt_id": None}, on_form=True)
        else:
            db.session.commit()
            answer = _answer(result, attempt.subject, pack_for_site(treatment.site_id))
            return _gate_page(actor, treatment, ScanForm(formdata=None), answer,
                              status=200 if result.accepted else 409)
    attempt = db.session.get(GateAttempt, attempt_id)
    return _gate_page(actor, services.get_treatment(actor, treatment_id), ScanForm(formdata=None),
                      _answer_for_attempt(attempt, pack_for_site(treatment.site_id)), form, status)


@bp.route("/tablet/treatments/<int:treatment_id>/finish", methods=["GET", "POST"])
@requires("treatments.record")
def finish_treatment(treatment_id: int):
    """Passes, depth, products, aftercare, the sharps container; the devices go back to be reprocessed."""
    actor = current_actor()
    treatment = _treatment(actor, treatment_id)
    site = treatment.site
    if treatment.status != "open":
        return redirect(url_for("treatments.continue_treatment", treatment_id=treatment.id))
    containers = _open_containers(site)
    form = FinishForm(containers=containers)
    if request.method == "GET":
        form.ended_at.data = local_input(utcnow(), site.timezone)
        if len(containers) == 1:
            form.sharps_container_id.data = str(containers[0].id)

    def finish():
        now = utcnow()
        return services.finish_treatment(actor, treatment.id, form.values(site.timezone, now, treatment.started_at),
                                         now)

    outcome = submit(form, finish,
                     lambda done: flash_redirect(
                         _("Treatment finished. The devices go back to the decontamination room."),
                         url_for("treatments.continue_treatment", treatment_id=done.id)),
                     aliases={"products": None}, on_form=True)
    if not isinstance(outcome, int):
        return outcome
    guideline = pack_for_site(site.id)
    return render_template(
        "treatments/finish.html", form=form, treatment=treatment, site=site, containers=containers,
        **_finish_readiness(treatment), min_passes=int(guideline.number("passes-within-range", "min_passes")),
        max_passes=int(guideline.number("passes-within-range", "max_passes"))), outcome


@bp.post("/treatments/<int:treatment_id>/abandon")
@requires("treatments.record")
def abandon_treatment(treatment_id: int):
    """Stop a treatment in progress with a written reason (from the tablet's scan screen or the treatment's page)."""
    actor = current_actor()
    treatment = _treatment(actor, treatment_id)
    tablet = _is_tablet()
    endpoint = "treatments.continue_treatment" if tablet else "treatments.show_treatment"
    if treatment.status != "open":
        flash(_("This treatment is no longer in progress (%(status)s): it cannot be abandoned.",
                status=STATUS_LABELS.get(treatment.status, treatment.status)), "error")
        return redirect(url_for(endpoint, treatment_id=treatment.id))
    form = AbandonForm()
    outcome = submit(form, lambda: services.abandon_treatment(actor, treatment.id, form.values(), utcnow()),
                     lambda done: flash_redirect(
                         _("Treatment abandoned. What was opened stays used; the devices go back to the "
                           "decontamination room."), url_for(endpoint, treatment_id=done.id)),
                     aliases={"treatment_id": None}, on_form=True)
    if not isinstance(outcome, int):
        return outcome
    treatment = services.get_treatment(actor, treatment_id)
    if treatment.status != "open":  # finished or abandoned on another screen in the meantime
        for message in form.form_errors:
            flash(message, "error")
        return redirect(url_for(endpoint, treatment_id=treatment.id))
    if tablet:
        return _gate_page(actor, treatment, ScanForm(formdata=None), status=outcome, abandon_form=form)
    return render_template("treatments/treatment.html", **_detail_context(actor, treatment, form)), outcome


# --- adverse events ------------------------------------------------------------------------------

@bp.route("/treatments/<int:treatment_id>/adverse-events/new", methods=["GET", "POST"])
@requires("adverse.record")
def record_adverse_event(treatment_id: int):
    """adverse-event: an effect after a treatment; an infection opens a look-back of every client exposed."""
    actor = current_actor()
    treatment = _treatment(actor, treatment_id)
    site = treatment.site
    tablet = _is_tablet()
    form = AdverseEventForm()
    if request.method == "GET":
        form.onset_at.data = local_input(utcnow(), site.timezone)

    def record():
        now = utcnow()
        return services.record_adverse_event(actor, treatment.id,
                                             form.values(site.timezone, now, treatment.started_at), now)

    def recorded(event: AdverseEvent):
        if event.kind == "infection":
            flash(_("Infection recorded. A look-back was opened: every client who shared a device, a load or a "
                    "lot with this treatment is listed for the manager."), "error")
        else:
            flash(_("Adverse event recorded."), "success")
        endpoint = "treatments.continue_treatment" if tablet else "treatments.show_treatment"
        return redirect(url_for(endpoint, treatment_id=treatment.id, _anchor="adverse-events"))

    outcome = submit(form, record, recorded, on_form=True)
    if not isinstance(outcome, int):
        return outcome
    return render_template("treatments/adverse_form.html", form=form, treatment=treatment, site=site,
                           layout=TABLET if tablet else DESK), outcome


# --- the manager's treatments --------------------------------------------------------------------

@dataclass(frozen=True)
class ListFilters:
    sites: list[Site]
    practitioners: list[User]
    site_id: int | None
    practitioner_id: int | None
    status: str | None
    date_from: date | None
    date_to: date | None

    @property
    def active(self) -> bool:
        return any((self.site_id, self.practitioner_id, self.status, self.date_from, self.date_to))


def _practitioners_in_reach(actor: Actor) -> list[User]:
    ids = select(Treatment.practitioner_id).where(Treatment.site_id.in_(actor.site_ids)).distinct()
    return list(db.session.scalars(select(User).where(User.id.in_(ids)).order_by(User.name)))


def _counts(column, ids: list[int], *where) -> dict[int, int]:
    if not ids:
        return {}
    return dict(db.session.execute(select(column, func.count()).where(column.in_(ids), *where)
                                   .group_by(column)).all())


@bp.get("/treatments")
@requires("treatments.read")
def list_treatments():
    """Treatments in reach, filtered by site, practitioner, status and local dates; sorted and paged."""
    actor = current_actor()
    sites = _sites_in_reach(actor)
    site_id = arg_id("site")
    site_id = site_id if site_id in actor.site_ids else None
    status = request.args.get("status") if request.args.get("status") in STATUS_LABELS else None
    f = ListFilters(sites=sites, practitioners=_practitioners_in_reach(actor), site_id=site_id,
                    practitioner_id=arg_id("practitioner"), status=status,
                    date_from=arg_day("from"), date_to=arg_day("to"))
    if len(sites) == 1:
        g.site = sites[0]
    stmt = services.treatments_query(actor, site_id=f.site_id, practitioner_id=f.practitioner_id, status=f.status)
    stmt = _in_local_window(stmt, [s for s in sites if not f.site_id or s.id == f.site_id], f.date_from, f.date_to)
    order = sort_clause({"date": Treatment.started_at, "procedure": Treatment.procedure,
                         "status": Treatment.status}, "-date")
    stmt = stmt.order_by(None).order_by(order, Treatment.started_at.desc(), Treatment.id.desc()).options(
        selectinload(Treatment.site), selectinload(Treatment.room), selectinload(Treatment.client),
        selectinload(Treatment.practitioner))
    page = paginate(stmt)
    ids = [t.id for t in page.items]
    overrides = dict(db.session.execute(
        select(GateAttempt.treatment_id, func.count()).join(GateOverride, GateOverride.attempt_id == GateAttempt.id)
        .where(GateAttempt.treatment_id.in_(ids)).group_by(GateAttempt.treatment_id)).all()) if ids else {}
    return render_template(
        "treatments/list.html", f=f, page=page, can_contact=actor.can("clients.contact"),
        pack_counts=_counts(TreatmentPack.treatment_id, ids), unit_counts=_counts(TreatmentUnit.treatment_id, ids),
        refusal_counts=_counts(GateAttempt.treatment_id, ids), override_counts=overrides,
        unchecked=services.unchecked_finished(page.items), many_sites=len(sites) > 1)


@dataclass(frozen=True)
class AttemptRow:
    attempt: GateAttempt
    by: User | None
    reasons: list[ReasonLine]
    override: GateOverride | None


def _detail_context(actor: Actor, treatment: Treatment, abandon_form: AbandonForm | None = None) -> dict:
    """Everything a treatment's page shows, loaded here so that the template triggers no queries."""
    site = treatment.site
    attempts = list(db.session.scalars(select(GateAttempt).where(GateAttempt.treatment_id == treatment.id)
                                       .order_by(GateAttempt.at, GateAttempt.id)))
    overrides = {o.attempt_id: o for o in db.session.scalars(
        select(GateOverride).where(GateOverride.attempt_id.in_([a.id for a in attempts]))
        .options(selectinload(GateOverride.manager)))} if attempts else {}
    by = _users(a.by_id for a in attempts)
    events = list(db.session.scalars(select(AdverseEvent).where(AdverseEvent.treatment_id == treatment.id)
                                     .order_by(AdverseEvent.onset_at, AdverseEvent.id)))
    return {
        "treatment": treatment, "site": site, "client": treatment.client,
        "screening_lines": screening.lines(treatment),
        "unchecked": treatment.id in services.unchecked_finished([treatment]),
        "method_title": _method_title(treatment),
        "can_contact": actor.can("clients.contact"), "can_trace": actor.can("trace.read"),
        "can_adverse": actor.can("adverse.record"),
        "attempts": [AttemptRow(a, by.get(a.by_id), _reason_lines(a.reasons), overrides.get(a.id))
                     for a in attempts],
        "usage_overrides": {o.id: o for o in overrides.values()},
        "events": events, "look_backs": _look_backs([e.id for e in events]),
        "container": db.session.get(SharpsContainer, treatment.sharps_container_id)
        if treatment.sharps_container_id else None,
        "pack_details": {u.id: _pack_detail(u.pack) for u in treatment.packs},
        "abandoned_by": db.session.get(User, treatment.abandoned_by_id) if treatment.abandoned_by_id else None,
        "abandon_form": abandon_form or (AbandonForm(formdata=None)
                                         if treatment.status == "open" and actor.can("treatments.record") else None),
    }


def _method_title(treatment: Treatment) -> str:
    method = load_pack().methods.get(treatment.method or "")
    return method.title_in(str(get_locale() or "en")) if method else ""


@bp.get("/treatments/<int:treatment_id>")
@requires("treatments.read")
def show_treatment(treatment_id: int):
    """One treatment: packs with their loads, units with their lots, refusals, overrides (findings), events."""
    actor = current_actor()
    treatment = _treatment(actor, treatment_id)
    return render_template("treatments/treatment.html", **_detail_context(actor, treatment))


@bp.get("/clients/<int:client_id>")
@requires("treatments.read")
def show_client(client_id: int):
    """A client's history; name, phone and consent only for those allowed to contact clients."""
    actor = current_actor()
    client = services.get_client(actor, client_id=client_id)
    treatments = list(db.session.scalars(
        services.treatments_query(actor, client_id=client.id).options(
            selectinload(Treatment.site), selectinload(Treatment.room), selectinload(Treatment.practitioner),
            selectinload(Treatment.packs), selectinload(Treatment.units))))
    events = list(db.session.scalars(
        select(AdverseEvent).where(AdverseEvent.treatment_id.in_([t.id for t in treatments]))
        .order_by(AdverseEvent.onset_at.desc()).options(selectinload(AdverseEvent.treatment))))
    registered_at = db.session.get(Site, client.site_id)
    if client.site_id in actor.site_ids:
        g.site = registered_at
    return render_template("treatments/client.html", client=client, treatments=treatments, events=events,
                           look_backs=_look_backs([e.id for e in events]), registered_at=registered_at,
                           can_contact=actor.can("clients.contact"), can_trace=actor.can("trace.read"))


# --- trace and look-back -------------------------------------------------------------------------

@dataclass
class TraceTable:
    """One table for the page and the CSV alike, so that both say the same thing."""
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    links: list[tuple[int, int]] = field(default_factory=list)  # (treatment id, client id) per row
    nowrap: frozenset[int] = frozenset()  # columns kept on one line on the page (times, codes)


def _test_text(test, tz: str) -> str:
    result = _("pending") if test.result == "pending" else TEST_RESULT_LABELS.get(test.result, test.result)
    return f"{result} {local_text(test.performed_at, tz)}"


def _load_tests(actor: Actor, cycle: Cycle, tz: str, cache: dict) -> tuple[str, str]:
    """air-removal-test-daily and spore-test as they stood for a load: that local day's air-removal tests,
    and the latest spore test before it."""
    if cycle.id not in cache:
        day = to_local(cycle.started_at, tz).date()
        air = db.session.scalars(steri.tests_query(
            actor, steriliser_id=cycle.steriliser_id, kind="air_removal", date_from=local_day_start(day, tz),
            date_to=local_day_start(day + timedelta(days=1), tz)))
        spore = db.session.scalar(steri.tests_query(actor, steriliser_id=cycle.steriliser_id, kind="spore",
                                                    date_to=cycle.started_at).limit(1))
        cache[cycle.id] = ("; ".join(_test_text(t, tz) for t in reversed(list(air))) or _("none"),
                           _test_text(spore, tz) if spore else _("none"))
    return cache[cycle.id]


def client_trace(actor: Actor, treatments: list[Treatment]) -> TraceTable:
    """look-back from a client: each treatment, each pack with its load and that day's tests, each unit's lot."""
    table = TraceTable([_("Treatment"), _("Started"), _("Time zone"), _("Site"), _("Client"), _("Practitioner"),
                        _("Procedure"), _("Item"), _("Code"), _("Contents"), _("Load"), _("Load status"),
                        _("Released at"), _("Air-removal tests that day"), _("Last spore test before"), _("Lot"),
                        _("Lot use-by")], nowrap=frozenset({0, 1, 4, 8, 10, 12, 13, 14, 15, 16}))
    cache: dict = {}
    for t in treatments:
        tz = t.site.timezone
        base = [str(t.id), local_text(t.started_at, tz), tz, t.site.name, t.client.code, t.practitioner.name,
                str(PROCEDURE_LABELS.get(t.procedure, t.procedure))]
        items = []
        for usage in t.packs:
            pack, cycle = usage.pack, usage.pack.cycle
            air, spore = _load_tests(actor, cycle, tz, cache) if cycle else ("", "")
            items.append([str(_("Pack")), pack.label_code,
                          ", ".join(f"{i.device.device_type.name} {i.device.serial}" for i in pack.items),
                          f"{cycle.steriliser.name} #{cycle.cycle_number}" if cycle else "",
                          str(CYCLE_STATUS_LABELS.get(cycle.status, cycle.status)) if cycle else "",
                          local_text(cycle.decided_at, tz) if cycle else "",
                          air, spore, "", ""])
        for usage in t.units:
            unit = usage.unit
            items.append([str(_("Single-use unit")), unit.serial, unit.item_type.name, "", "", "", "", "",
                          unit.lot.lot_number, unit.lot.expires_on.isoformat()])
        for item in items or [[""] * 10]:
            table.rows.append(base + item)
            table.links.append((t.id, t.client_id))
    return table


def exposure_table(treatments: list[Treatment], shared: dict[int, str] | None = None) -> TraceTable:
    """look-back: every treatment exposed, with its client's code and what it used."""
    header = [_("Treatment"), _("Started"), _("Time zone"), _("Site"), _("Client"), _("Practitioner"), _("Room"),
              _("Procedure"), _("Packs"), _("Single-use units"), _("Status")]
    if shared is not None:
        header.append(_("Shared with the infected client's treatment"))
    table = TraceTable(header, nowrap=frozenset({0, 1, 4}))
    for t in treatments:
        tz = t.site.timezone
        packs = "; ".join(f"{u.pack.label_code} ({u.pack.cycle.steriliser.name} #{u.pack.cycle.cycle_number})"
                          if u.pack.cycle else u.pack.label_code for u in t.packs)
        units = "; ".join(f"{u.unit.serial} ({u.unit.item_type.name}, {u.unit.lot.lot_number})" for u in t.units)
        row = [str(t.id), local_text(t.started_at, tz), tz, t.site.name, t.client.code, t.practitioner.name,
               t.room.name, str(PROCEDURE_LABELS.get(t.procedure, t.procedure)), packs, units,
               str(STATUS_LABELS.get(t.status, t.status))]
        if shared is not None:
            row.append(shared.get(t.id, ""))
        table.rows.append(row)
        table.links.append((t.id, t.client_id))
    return table


_TREATMENT_LOADS = (selectinload(Treatment.site), selectinload(Treatment.client), selectinload(Treatment.room),
                    selectinload(Treatment.practitioner),
                    selectinload(Treatment.packs).selectinload(TreatmentPack.pack).selectinload(Pack.cycle)
                    .selectinload(Cycle.steriliser),
                    selectinload(Treatment.packs).selectinload(TreatmentPack.pack).selectinload(Pack.items)
                    .selectinload(PackItem.device).selectinload(Device.device_type),
                    selectinload(Treatment.units).selectinload(TreatmentUnit.unit).selectinload(Unit.lot),
                    selectinload(Treatment.units).selectinload(TreatmentUnit.unit).selectinload(Unit.item_type))


@dataclass
class TraceQuery:
    mode: str
    client_code: str = ""
    steriliser_id: int | None = None
    load: str = ""
    cycle_id: int | None = None
    device: str = ""
    lot: str = ""
    practitioner_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def has_look_back(self) -> bool:
        return any((self.steriliser_id, self.load, self.cycle_id, self.device, self.lot, self.practitioner_id))

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def _trace_query() -> TraceQuery:
    args = request.args
    mode = "lookback" if args.get("mode") == "lookback" or (
        args.get("mode") != "client" and any(args.get(k) for k in ("steriliser", "load", "cycle", "device", "lot",
                                                                      "practitioner"))) else "client"
    return TraceQuery(mode=mode, client_code=(args.get("client") or "").strip().upper()[:16],
                      steriliser_id=args.get("steriliser", type=int), load=(args.get("load") or "").strip()[:12],
                      cycle_id=args.get("cycle", type=int), device=(args.get("device") or "").strip()[:80],
                      lot=(args.get("lot") or "").strip()[:40], practitioner_id=args.get("practitioner", type=int),
                      date_from=arg_day("from"), date_to=arg_day("to"))


def _exposed(actor: Actor, q: TraceQuery, sites: list[Site]) -> list[Treatment] | None:
    """The treatments a look-back names; None (and errors on q) when an input names nothing in reach."""
    cycle_id, device_id, lot_ids = q.cycle_id, None, [None]
    try:
        if cycle_id:
            cycle_id = steri.get_cycle(actor, cycle_id).id
        if q.steriliser_id:
            device_services.get_steriliser(actor, q.steriliser_id)
        if q.load:
            if not q.steriliser_id:
                q.error("load", _("Choose the steriliser of this load."))
                return None
            number = int(q.load) if q.load.isdigit() else -1
            cycle_id = db.session.scalar(steri.cycles_query(actor, steriliser_id=q.steriliser_id)
                                         .where(Cycle.cycle_number == number).with_only_columns(Cycle.id))
            if cycle_id is None:
                q.error("load", _("No load %(n)s on this steriliser.", n=q.load))
                return None
        if q.device:
            device_id = device_services.find_device_by_serial(actor, q.device).id
        if q.lot:
            lot_ids = list(db.session.scalars(stock_services.lots_query(actor).where(Lot.lot_number == q.lot)
                                              .with_only_columns(Lot.id)))
            if not lot_ids:
                q.error("lot", _("No lot %(lot)s was received at your sites.", lot=q.lot))
                return None
        if q.practitioner_id and q.practitioner_id not in {u.id for u in _people_in_reach(actor)}:
            q.error("practitioner", _("No such person."))
            return None
    except NotFound as exc:
        q.error({"cycle_id": "load", "serial": "device"}.get(exc.field, exc.field or "steriliser"), exc.message)
        return None
    found: dict[int, Treatment] = {}
    for lot_id in lot_ids:  # one lot number may be several lots (two sites, two products)
        stmt = services.exposed_treatments(actor, cycle_id=cycle_id, device_id=device_id, lot_id=lot_id,
                                           steriliser_id=q.steriliser_id if not cycle_id else None,
                                           practitioner_id=q.practitioner_id)
        stmt = _in_local_window(stmt, sites, q.date_from, q.date_to).options(*_TREATMENT_LOADS)
        for t in db.session.scalars(stmt):
            found.setdefault(t.id, t)
    return sorted(found.values(), key=lambda t: (t.started_at, t.id))


def _people_in_reach(actor: Actor) -> list[User]:
    from ..sites.services import users_query

    return list(db.session.scalars(users_query(actor, include_inactive=True)))


@bp.get("/trace")
@requires("trace.read")
def trace():
    """Trace from a client to packs, loads, tests and lots; or look back from a load, device, lot, steriliser or
    practitioner to every treatment and client exposed. ?format=csv for the same table as CSV, ?format=pdf
    as a PDF."""
    actor = current_actor()
    sites = _sites_in_reach(actor)
    if len(sites) == 1:
        g.site = sites[0]
    q = _trace_query()
    table, client, status = None, None, 200
    if q.mode == "client" and q.client_code:
        try:
            client = services.get_client(actor, code=q.client_code)
        except NotFound as exc:
            q.error("client", exc.message)
            status = 404
        else:
            treatments = list(db.session.scalars(services.treatments_query(actor, client_id=client.id)
                                                 .order_by(None).order_by(Treatment.started_at, Treatment.id)
                                                 .options(*_TREATMENT_LOADS)))
            table = client_trace(actor, treatments)
    elif q.mode == "lookback" and q.has_look_back:
        treatments = _exposed(actor, q, sites)
        if treatments is None:
            status = 404
        else:
            table = exposure_table(treatments)
    if request.args.get("format") == "csv" and table is not None:
        stamp = to_local(utcnow(), sites[0].timezone if sites else "UTC").strftime("%Y%m%d-%H%M")
        text = _csv_text(table.header, table.rows)
        record_export(actor, "trace", "csv", sites[0].id if len(sites) == 1 else None, request.args.to_dict(),
                      text.encode("utf-8"))
        return _csv_response(table.header, [], f"trace-{q.mode}-{stamp}.csv", text=text)
    if request.args.get("format") == "pdf" and table is not None:
        return _trace_pdf(actor, q, table, sites)
    sterilisers = list(db.session.scalars(device_services.sterilisers_query(actor, include_inactive=True)
                                          .options(selectinload(Steriliser.site))))
    return render_template("treatments/trace.html", q=q, table=table, client=client, sites=sites,
                           sterilisers=sterilisers, people=_people_in_reach(actor),
                           many_sites=len(sites) > 1), status


def _criteria(q: TraceQuery) -> list[tuple[str, str]]:
    """What the trace was looked up by, in words (the inputs were checked to be in reach before)."""
    out = []
    if q.mode == "client":
        return [(_("Client code"), q.client_code)]
    if q.steriliser_id:
        steriliser = db.session.get(Steriliser, q.steriliser_id)
        out.append((_("Steriliser"), steriliser.name if steriliser else str(q.steriliser_id)))
    if q.load:
        out.append((_("Load (cycle number)"), q.load))
    if q.cycle_id:
        cycle = db.session.get(Cycle, q.cycle_id)
        out.append((_("Load"), f"{cycle.steriliser.name} #{cycle.cycle_number}" if cycle else str(q.cycle_id)))
    if q.device:
        out.append((_("Device serial"), q.device))
    if q.lot:
        out.append((_("Single-use lot"), q.lot))
    if q.practitioner_id:
        person = db.session.get(User, q.practitioner_id)
        out.append((_("Practitioner"), person.name if person else str(q.practitioner_id)))
    if q.date_from:
        out.append((_("From"), q.date_from.isoformat()))
    if q.date_to:
        out.append((_("To"), q.date_to.isoformat()))
    return out


def _trace_pdf(actor: Actor, q: TraceQuery, table: TraceTable, sites: list[Site]) -> Response:
    """The trace table on A4 paper, with who exported it, when, and the SHA-256 of its CSV (the same rows);
    the export is written to the audit log. Clients appear by code only, as on the page."""
    now = utcnow()
    tz = sites[0].timezone if sites else "UTC"
    content_sha256 = hashlib.sha256(_csv_text(table.header, table.rows).encode("utf-8")).hexdigest()
    query = {k: v for k, v in request.args.items() if k != "format" and v}
    html = render_template("treatments/trace_print.html", q=q, table=table, criteria=_criteria(q), now=now, tz=tz,
                           exporter=current_user.name, content_sha256=content_sha256)
    body = render_pdf(html, base_url=request.url_root)
    sha256 = hashlib.sha256(body).hexdigest()
    record_event("export", "report", "trace", organisation_id=actor.organisation_id,
                 site_id=sites[0].id if len(sites) == 1 else None,
                 after={"format": "pdf", "mode": q.mode, "query": query, "rows": len(table.rows), "sha256": sha256,
                        "content_sha256": content_sha256}, actor=actor)
    db.session.commit()
    stamp = to_local(now, tz).strftime("%Y%m%d-%H%M")
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="trace-{q.mode}-{stamp}.pdf"', "Cache-Control": "no-store",
        "X-Content-SHA256": sha256, "X-Report-Content-SHA256": content_sha256})


def _shared_with(index: Treatment, others: list[Treatment]) -> dict[int, str]:
    """What each exposed treatment shared with the index one: a load, a device or a single-use lot."""
    loads = {u.pack.cycle_id: u.pack.cycle for u in index.packs if u.pack.cycle_id}
    devices = {i.device_id: i.device for u in index.packs for i in u.pack.items}
    lots = {u.unit.lot_id: u.unit.lot for u in index.units}
    out = {}
    for t in others:
        parts = []
        for cycle_id in sorted({u.pack.cycle_id for u in t.packs} & loads.keys()):
            parts.append(_("load %(steriliser)s #%(n)s", steriliser=loads[cycle_id].steriliser.name,
                           n=loads[cycle_id].cycle_number))
        for device_id in sorted({i.device_id for u in t.packs for i in u.pack.items} & devices.keys()):
            parts.append(_("device %(serial)s", serial=devices[device_id].serial))
        for lot_id in sorted({u.unit.lot_id for u in t.units} & lots.keys()):
            parts.append(_("lot %(lot)s", lot=lots[lot_id].lot_number))
        out[t.id] = "; ".join(parts)
    return out


@bp.get("/look-backs/<int:look_back_id>")
@requires("trace.read")
def show_look_back(look_back_id: int):
    """look-back after an infection: the other clients who shared a device, a load or a lot, in the window."""
    actor = current_actor()
    look = db.session.get(LookBack, look_back_id)
    if look is None or look.site_id not in actor.site_ids:
        abort(404)
    event = look.adverse_event
    index = db.session.scalar(select(Treatment).where(Treatment.id == event.treatment_id)
                              .options(*_TREATMENT_LOADS))
    g.site = index.site
    ids = [t.id for t in services.look_back(actor, index.id, look.window_days)]
    exposed = sorted(db.session.scalars(select(Treatment).where(Treatment.id.in_(ids))
                                        .options(*_TREATMENT_LOADS)), key=lambda t: (t.started_at, t.id))
    table = exposure_table(exposed, _shared_with(index, exposed))
    if request.args.get("format") == "csv":
        text = _csv_text(table.header, table.rows)
        record_export(actor, "look-back", "csv", look.site_id, {"look_back_id": look.id}, text.encode("utf-8"))
        return _csv_response(table.header, [], f"look-back-{look.id}.csv", text=text)
    return render_template("treatments/look_back.html", look=look, event=event, index=index, table=table,
                           site=index.site, can_contact=actor.can("clients.contact"),
                           index_table=exposure_table([index]))


@bp.get("/overrides")
@requires("trace.read")
def list_overrides():
    """Every manager override of the gate: each one a finding, with the refusal it set aside."""
    actor = current_actor()
    sites = _sites_in_reach(actor)
    site_id = arg_id("site")
    site_id = site_id if site_id in actor.site_ids else None
    if len(sites) == 1:
        g.site = sites[0]
    stmt = (select(GateOverride).join(GateAttempt, GateAttempt.id == GateOverride.attempt_id)
            .where(GateAttempt.site_id.in_([site_id] if site_id else actor.site_ids))
            .order_by(GateOverride.at.desc(), GateOverride.id.desc())
            .options(selectinload(GateOverride.attempt), selectinload(GateOverride.manager)))
    page = paginate(stmt)
    treatments = {t.id: t for t in db.session.scalars(
        select(Treatment).where(Treatment.id.in_([o.attempt.treatment_id for o in page.items]))
        .options(selectinload(Treatment.site), selectinload(Treatment.client),
                 selectinload(Treatment.practitioner)))}
    return render_template("treatments/overrides.html", page=page, treatments=treatments, sites=sites,
                           site_id=site_id, by=_users(o.attempt.by_id for o in page.items),
                           reasons={o.id: _reason_lines(o.attempt.reasons) for o in page.items},
                           many_sites=len(sites) > 1)


@bp.get("/recalls/<int:recall_id>/reached")
@requires("trace.read")
def recall_reached(recall_id: int):
    """The treatments and clients a recall's loads reached (a partial for the recall screen)."""
    actor = current_actor()
    recall = steri.get_recall(actor, recall_id)
    g.site = db.session.get(Site, recall.site_id)
    cycle_ids = {link.cycle_id for link in recall.loads}
    ids = [t.id for t in services.recall_treatments(actor, recall.id)]
    treatments = sorted(db.session.scalars(select(Treatment).where(Treatment.id.in_(ids))
                                           .options(*_TREATMENT_LOADS)), key=lambda t: (t.started_at, t.id))
    recalled_packs = {t.id: [u.pack for u in t.packs if u.pack.cycle_id in cycle_ids] for t in treatments}
    context = {"recall": recall, "treatments": treatments, "recalled_packs": recalled_packs,
               "can_contact": actor.can("clients.contact"), "site": g.site}
    template = "treatments/_recall_reached.html" if wants_partial() else "treatments/recall_reached.html"
    return render_template(template, **context)
