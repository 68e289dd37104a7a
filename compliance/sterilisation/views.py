"""Decontamination-room tablet screens, pack labels and pages, and the manager's steriliser logbook and recalls."""
from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo

import segno
from flask import (Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..audit.services import record_export
from ..auth.actor import Actor
from ..auth.models import ApiKey
from ..devices import services as device_services
from ..devices.models import Device, DeviceEvent, Steriliser
from ..errors import ServiceError
from ..extensions import db
from ..guidelines.services import pack_for_site
from ..sites.models import Site, User
from ..i18n import number
from ..timeutil import to_local, utcnow
from ..treatments.services import recall_treatments
from ..web import (
    arg_day, arg_id, current_actor, flash_redirect, paginate, refuse_at_field, requires, sort_clause, submit,
)
from . import rules, services
from .forms import (
    CLEANING_LABELS,
    COMPROMISE_LABELS,
    CONTROL_LABELS,
    CURVE_SOURCE_LABELS,
    FIGURE_SOURCE_LABELS,
    CYCLE_STATUS_CLASS,
    CYCLE_STATUS_LABELS,
    DEVICE_STATUS_LABELS,
    EVENT_LABELS,
    PACK_STATE_CLASS,
    PACK_STATE_LABELS,
    PACKAGING_LABELS,
    TEST_KIND_LABELS,
    TEST_RESULT_LABELS,
    CleaningForm,
    CloseRecallForm,
    CompromiseForm,
    ContactedForm,
    CorrectionForm,
    CycleForm,
    FailForm,
    InspectionForm,
    PackForm,
    ReleaseForm,
    ScanForm,
    SporeResultForm,
    SteriliserTestForm,
)
from .messages import reason_text, reasons_text
from .models import Cycle, CycleCorrection, CycleCurve, Pack, Recall, RecallLoad, SteriliserTest

bp = Blueprint("sterilisation", __name__)

TABLET = "tablet/base.html"
DESK = "base.html"
REPROCESS_STEPS = ("clean", "inspect", "pack")
RECENT_RECORDS = 20  # the logbook's list of the latest cycle records imported from the sterilisers
CHECK_WINDOW = timedelta(days=90)  # as far back as the services look for the tests a verdict needs


def _site_arg() -> int | None:
    """?site= for the room's links on a laptop (a person of several sites); a tablet knows its site."""
    site = g.get("site")
    return None if g.get("tablet") is not None or site is None else site.id


@bp.context_processor
def _labels() -> dict:
    return {"site_arg": _site_arg(), "TEST_KIND_LABELS": TEST_KIND_LABELS, "TEST_RESULT_LABELS": TEST_RESULT_LABELS,
            "CONTROL_LABELS": CONTROL_LABELS, "CYCLE_STATUS_LABELS": CYCLE_STATUS_LABELS,
            "CYCLE_STATUS_CLASS": CYCLE_STATUS_CLASS, "PACK_STATE_LABELS": PACK_STATE_LABELS,
            "PACK_STATE_CLASS": PACK_STATE_CLASS, "PACKAGING_LABELS": PACKAGING_LABELS,
            "COMPROMISE_LABELS": COMPROMISE_LABELS, "CLEANING_LABELS": CLEANING_LABELS,
            "DEVICE_STATUS_LABELS": DEVICE_STATUS_LABELS, "EVENT_LABELS": EVENT_LABELS}


# --- pure display helpers ------------------------------------------------------------------------

def air_removal_state(steriliser_type: str, records: Iterable[rules.CheckRecord], now: datetime, tz: str) -> str:
    """air-removal-test-daily as the room sees it: passed, failed or missing today; not_needed for type N."""
    if steriliser_type == "N":
        return "not_needed"
    records = list(records)
    if rules.air_removal_passed_before(records, now, tz):
        return "passed"
    today = rules.local_day(now, tz)
    if any(r.kind == "air_removal" and r.result == "fail" and r.performed_at <= now
           and rules.local_day(r.performed_at, tz) == today for r in records):
        return "failed"
    return "missing"


def spore_state(records: Iterable[rules.CheckRecord], now: datetime, tz: str,
                overdue_after_days: int) -> tuple[str, date | None]:
    """spore-test as the room sees it: ok, due (today is the last day in date), overdue, failed or missing,
    with the last local day the current result stays in date."""
    records = list(records)
    state = rules.spore_test_state(records, now, tz, overdue_after_days)
    read = [r for r in records if r.kind == "spore" and r.result != "pending" and r.performed_at <= now]
    if not read:
        return "missing", None
    last_day = rules.local_day(max(read, key=lambda r: r.performed_at).performed_at, tz)
    in_date_until = last_day + timedelta(days=overdue_after_days)
    if state == "ok" and rules.local_day(now, tz) >= in_date_until:
        return "due", in_date_until
    return state, in_date_until


def local_day_start(day: date, tz: str) -> datetime:
    """The UTC instant a site's local calendar day begins (filters by local dates use these bounds)."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


def csv_cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def label_url(code: str) -> str:
    return current_app.config["BASE_URL"] + url_for("sterilisation.show_pack", code=code)


# --- request helpers -----------------------------------------------------------------------------

def _is_tablet() -> bool:
    return bool(session.get("tablet_mode")) or g.get("tablet") is not None


def _site_in_context(actor: Actor) -> Site:
    """?site= in reach, else the enrolled tablet's site, else the person's first site in reach; sets g.site."""
    wanted = arg_id("site")
    site = None
    if wanted is not None:
        if wanted not in actor.site_ids:
            abort(404)
        site = db.session.get(Site, wanted)
    elif g.get("tablet") is not None:
        site = g.tablet.site
    else:
        site = next((s for s in current_user.sites if s.id in actor.site_ids), None) or db.session.scalar(
            select(Site).where(Site.id.in_(actor.site_ids)).order_by(Site.name).limit(1))
    if site is None or site.id not in actor.site_ids:
        abort(404, description=_("You are not assigned to a site yet. Ask a manager."))
    g.site = site
    return site


def _sites_in_reach(actor: Actor) -> list[Site]:
    return list(db.session.scalars(select(Site).where(Site.id.in_(actor.site_ids)).order_by(Site.name)))


def _site_of(site_id: int) -> Site:
    site = db.session.get(Site, site_id)
    g.site = site
    return site


def _sterilisers(actor: Actor, site: Site) -> list[Steriliser]:
    return list(db.session.scalars(device_services.sterilisers_query(actor, site_id=site.id)
                                   .options(selectinload(Steriliser.programmes))))


# --- the decontamination room --------------------------------------------------------------------

@dataclass(frozen=True)
class SteriliserBoard:
    steriliser: Steriliser
    air_removal: str
    spore: str
    spore_in_date_until: date | None
    awaiting: int

    @property
    def ready(self) -> bool:
        return (self.steriliser.is_in_service and self.air_removal in ("passed", "not_needed")
                and self.spore in ("ok", "due"))


def _boards(actor: Actor, site: Site, sterilisers: list[Steriliser], now: datetime) -> list[SteriliserBoard]:
    overdue_days = services.limits_for(pack_for_site(site.id)).spore_overdue_after_days
    records: dict[int, list[rules.CheckRecord]] = {s.id: [] for s in sterilisers}
    for test in db.session.scalars(services.tests_query(actor, date_from=now - CHECK_WINDOW)
                                   .where(SteriliserTest.site_id == site.id)):
        if test.steriliser_id in records:
            records[test.steriliser_id].append(rules.CheckRecord(test.kind, test.performed_at, test.result))
    awaiting = dict(db.session.execute(
        select(Cycle.steriliser_id, func.count()).where(Cycle.site_id == site.id,
                                                        Cycle.status == "awaiting_release")
        .group_by(Cycle.steriliser_id)).all())
    boards = []
    for steriliser in sterilisers:
        spore, until = spore_state(records[steriliser.id], now, site.timezone, overdue_days)
        boards.append(SteriliserBoard(steriliser, air_removal_state(steriliser.type, records[steriliser.id], now,
                                                                     site.timezone),
                                      spore, until, awaiting.get(steriliser.id, 0)))
    return boards


def _awaiting_loads(actor: Actor, site: Site) -> list[Cycle]:
    return list(db.session.scalars(
        services.cycles_query(actor, status="awaiting_release").where(Cycle.site_id == site.id)
        .options(selectinload(Cycle.steriliser), selectinload(Cycle.packs))))


def _pending_spore_tests(actor: Actor, site: Site) -> list[SteriliserTest]:
    return list(db.session.scalars(
        services.tests_query(actor, kind="spore", result="pending").where(SteriliserTest.site_id == site.id)
        .options(selectinload(SteriliserTest.steriliser))))


def _last_steps(device_ids: list[int]) -> dict[int, str]:
    """Each device's latest event kind, in one query."""
    if not device_ids:
        return {}
    ranked = select(DeviceEvent.device_id, DeviceEvent.kind, func.row_number().over(
        partition_by=DeviceEvent.device_id, order_by=(DeviceEvent.at.desc(), DeviceEvent.id.desc())).label("n")
    ).where(DeviceEvent.device_id.in_(device_ids)).subquery()
    return dict(db.session.execute(select(ranked.c.device_id, ranked.c.kind).where(ranked.c.n == 1)).all())


def _reprocess_queue(actor: Actor, site: Site) -> dict[str, list[Device]]:
    """clean-before-sterilise: which devices wait for which step (their last step decides)."""
    devices = list(db.session.scalars(device_services.devices_query(actor, site_id=site.id)
                                      .where(Device.status.in_(("dirty", "in_reprocessing")))
                                      .options(selectinload(Device.device_type))))
    last = _last_steps([d.id for d in devices])
    queue: dict[str, list[Device]] = {step: [] for step in REPROCESS_STEPS}
    for device in devices:
        step = last.get(device.id)
        if step == "cleaned":
            queue["inspect"].append(device)
        elif step == "inspected":
            queue["pack"].append(device)
        elif device.status == "dirty" or step not in ("packed", "loaded"):
            queue["clean"].append(device)
    return queue


def _waiting_packs(actor: Actor, site: Site) -> list[Pack]:
    return list(db.session.scalars(services.packs_query(actor, site_id=site.id, status="packed")
                                   .where(Pack.cycle_id.is_(None))))


def _decon_page(actor: Actor, site: Site, scan_form: ScanForm, status: int = 200):
    now = utcnow()
    sterilisers = _sterilisers(actor, site)
    queue = _reprocess_queue(actor, site) if actor.can("devices.read") else {s: [] for s in REPROCESS_STEPS}
    return render_template(
        "sterilisation/decon_home.html", site=site, now=now, scan_form=scan_form,
        boards=_boards(actor, site, sterilisers, now), awaiting=_awaiting_loads(actor, site),
        pending=_pending_spore_tests(actor, site), queue_counts={k: len(v) for k, v in queue.items()},
        waiting_packs=_waiting_packs(actor, site)), status


@bp.get("/decontamination")
@requires("reprocess.record")
def decon_home():
    actor = current_actor()
    return _decon_page(actor, _site_in_context(actor), ScanForm(formdata=None))


@bp.post("/decontamination/scan")
@requires("reprocess.record")
def scan_pack():
    """A scanned QR (the label's URL) or a typed code: open that pack's page."""
    actor = current_actor()
    site = _site_in_context(actor)
    form = ScanForm()
    status = 422
    if form.validate_on_submit():
        try:
            pack = services.find_pack(actor, form.code.data or "")
        except ServiceError as exc:
            status = refuse_at_field(form, exc, fallback="code", on_form=True)
        else:
            return redirect(url_for("sterilisation.show_pack", code=pack.label_code))
    return _decon_page(actor, site, form, status)


@bp.get("/decontamination/summary")
@requires("sterilisation.read")
def now_summary():
    """The Now screen's sterilisation part (loaded by htmx): loads to release, sterilisers out of service."""
    actor = current_actor()
    site = _site_in_context(actor)
    out = [s for s in _sterilisers(actor, site) if not s.is_in_service]
    return render_template("sterilisation/_now_summary.html", site=site, awaiting=_awaiting_loads(actor, site),
                           out_of_service=out)


# --- steriliser tests ----------------------------------------------------------------------------

KEY_ALIAS = {"idempotency_key": None}  # a refused key is said on the form, not at its hidden field


def new_key() -> str:
    """A fresh idempotency key for a new test or load form."""
    return secrets.token_urlsafe(16)


def _keyed(form, operation):
    """The operation; when it refuses the form's key (used for another record), the form gets a fresh one."""
    def run():
        try:
            return operation()
        except ServiceError as exc:
            if exc.field == "idempotency_key":
                form.idempotency_key.data = new_key()
            raise

    return run


@bp.route("/decontamination/tests/new", methods=["GET", "POST"])
@requires("tests.record")
def record_test():
    actor = current_actor()
    site = _site_in_context(actor)
    sterilisers = _sterilisers(actor, site)
    form = SteriliserTestForm(sterilisers=sterilisers)
    if request.method == "GET":
        wanted = arg_id("steriliser")
        form.steriliser_id.data = wanted if any(s.id == wanted for s in sterilisers) else (
            sterilisers[0].id if sterilisers else None)
        form.kind.data = request.args.get("kind") if request.args.get("kind") in TEST_KIND_LABELS else "air_removal"
        form.idempotency_key.data = new_key()
    outcome = submit(form, _keyed(form, lambda: services.record_test(actor, form.values(site.timezone), utcnow())),
                     _test_recorded, on_form=True, aliases=KEY_ALIAS)
    if not isinstance(outcome, int):
        return outcome
    return render_template("sterilisation/test_form.html", form=form, site=site, sterilisers=sterilisers,
                           pending=_pending_spore_tests(actor, site)), outcome


def _test_recorded(test: SteriliserTest):
    """Say what a recorded test (or spore result) means, and go back to the room's screen."""
    kind = TEST_KIND_LABELS[test.kind]
    if test.result == "pending":
        flash(_("%(kind)s started on %(steriliser)s. Read its result after incubation: it waits on the "
                "decontamination room screen.", kind=kind, steriliser=test.steriliser.name), "success")
    elif test.result == "pass":
        flash(_("%(kind)s on %(steriliser)s recorded: pass.", kind=kind, steriliser=test.steriliser.name),
              "success")
    else:
        flash(_("%(kind)s on %(steriliser)s recorded: FAIL. The steriliser is out of service until a passing "
                "test.", kind=kind, steriliser=test.steriliser.name), "error")
        if test.kind == "spore":
            flash(_("Every load since the last passing spore test is recalled. Tell the manager now."), "error")
    return redirect(url_for("sterilisation.decon_home", site=_site_arg()))


@bp.route("/decontamination/tests/<int:test_id>/result", methods=["GET", "POST"])
@requires("tests.record")
def record_test_result(test_id: int):
    actor = current_actor()
    test = services.get_test(actor, test_id)
    site = _site_of(test.site_id)
    form = SporeResultForm()
    outcome = submit(form, lambda: services.record_test_result(actor, test.id, form.values(), utcnow()),
                     _test_recorded, on_form=True)
    if not isinstance(outcome, int):
        return outcome
    return render_template("sterilisation/test_result_form.html", form=form, test=test, site=site), outcome


# --- cycles (loads) ------------------------------------------------------------------------------

def _submit_judged(form, operation, success, confirm) -> Response | int:
    """submit(), except that a failing verdict not yet confirmed goes to confirm(verdict): nothing is stored."""
    if not form.validate_on_submit():
        return 422 if form.is_submitted() else 200
    try:
        result = operation()
    except services.UnconfirmedFailure as exc:
        db.session.rollback()
        return confirm(exc.verdict)
    except ServiceError as exc:
        return refuse_at_field(form, exc, on_form=True, aliases=KEY_ALIAS)
    db.session.commit()
    return success(result)


def _confirming() -> bool:
    """The person answered "yes, these are the figures on the printout" to a failing verdict."""
    return request.form.get("confirm_failure") == "1"


def _correcting() -> bool:
    """The person chose to go back to the form, with what they typed, from the failing verdict."""
    return request.method == "POST" and request.form.get("step") == "correct"


def _typed_figures(form) -> list[tuple[str, str]]:
    """The figures as typed, for "are these the figures on the printout?"."""
    indicator = _("Pass") if form.indicator_result.data == "pass" else _("Fail")
    if form.indicator_class.data:
        indicator = _("%(result)s (class %(class_)s)", result=indicator, class_=form.indicator_class.data)
    rows = [(form.temperature_c.label.text, _("%(value)s °C", value=form.temperature_c.data or "—")),
            (form.holding_seconds.label.text, _("%(value)s s", value=form.holding_seconds.data or "—"))]
    if form.pressure_kpa.data:
        rows.append((form.pressure_kpa.label.text, _("%(value)s kPa", value=form.pressure_kpa.data)))
    rows += [(_("Chemical indicator"), indicator), (_("Printout"), form.printout_ref.data or _("none"))]
    return rows


def _confirm_page(form, verdict: rules.Verdict, *, layout: str, title: str, action: str, confirm_label: str):
    """The rules would fail the load: every reason, and "are these the figures on the printout?"."""
    names = [f.name for f in form if f.name != "csrf_token"]
    hidden = [(name, value) for name in names for value in request.form.getlist(name)]
    return render_template("sterilisation/confirm_figures.html", layout=layout, title=title, action=action,
                           hidden=hidden, figures=_typed_figures(form), confirm_label=confirm_label,
                           reasons=[reason_text(r.as_dict()) for r in verdict.reasons])


@bp.route("/decontamination/cycles/new", methods=["GET", "POST"])
@requires("cycles.record")
def record_cycle():
    actor = current_actor()
    site = _site_in_context(actor)
    sterilisers = _sterilisers(actor, site)
    form = CycleForm(sterilisers=sterilisers)
    if request.method == "GET":
        wanted = arg_id("steriliser")
        in_service = [s for s in sterilisers if s.is_in_service] or sterilisers
        form.steriliser_id.data = wanted if any(s.id == wanted for s in sterilisers) else (
            in_service[0].id if in_service else None)
        form.pack_codes.data = "\n".join(c for c in request.args.get("packs", "").split(",") if c.strip())
        form.idempotency_key.data = new_key()
    outcome = 200
    if not _correcting():  # else: the form again, with what was typed
        outcome = _submit_judged(
            form, _keyed(form, lambda: services.record_cycle(actor, form.values(site.timezone), utcnow(),
                                                             confirm_failure=_confirming())),
            lambda cycle: redirect(url_for("sterilisation.show_verdict", cycle_id=cycle.id)),
            lambda verdict: _confirm_page(form, verdict, layout=TABLET, title=_("Record a cycle"),
                                          action=url_for("sterilisation.record_cycle", site=_site_arg()),
                                          confirm_label=_("Yes: record the load as failed")))
        if not isinstance(outcome, int):
            return outcome
    chosen = next((s for s in sterilisers if s.id == form.steriliser_id.data), None)
    programme = next((p for p in chosen.programmes if p.is_active), None) if chosen else None
    board = _boards(actor, site, [chosen], utcnow())[0] if chosen else None
    next_number = services.next_cycle_number(chosen.id) if chosen else None
    if next_number:
        form.cycle_number.description = _("Leave empty for the next number: %(n)s.", n=next_number)
    return render_template("sterilisation/cycle_form.html", form=form, site=site, sterilisers=sterilisers,
                           chosen=chosen, programme=programme, board=board, next_number=next_number,
                           waiting_packs=_waiting_packs(actor, site)), outcome


@dataclass(frozen=True)
class FigureRow:
    label: str
    reached: str
    required: str
    ok: bool | None  # None: nothing to compare with
    original: str | None = None  # as first recorded, when the figures were corrected since


@dataclass(frozen=True)
class PackRow:
    pack: Pack
    state: str
    expires_on: date | None
    contents: str


@dataclass(frozen=True)
class CorrectionRow:
    correction: CycleCorrection
    changes: list[tuple[str, str, str]]  # (figure, before, after) of the figures that changed
    disagreeing: list[str]  # machine record: the typed figures off the machine's (a finding)


def _one(value) -> str:
    """A reading with one decimal, in the reader's number format (134,5 in Indonesian)."""
    return number(value, places=1)


def _figure_texts(f: rules.CycleFigures) -> dict[str, str]:
    """Each figure of a load as the reader reads it."""
    indicator = _("Pass") if f.indicator_passed else _("Fail")
    if f.indicator_class:
        indicator = _("%(result)s (class %(class_)s)", result=indicator, class_=f.indicator_class)
    return {"temperature": _("%(value)s °C", value=_one(f.temperature_c)),
            "holding": _("%(value)s s", value=f.holding_seconds),
            "pressure": _("%(value)s kPa", value=_one(f.pressure_kpa)) if f.pressure_kpa is not None else "—",
            "indicator": indicator, "printout": f.printout_ref or _("none")}


def _figure_labels() -> dict[str, str]:
    return {"temperature": _("Temperature"), "holding": _("Holding time"), "pressure": _("Pressure"),
            "indicator": _("Chemical indicator"), "printout": _("Printout")}


def _figures(cycle: Cycle, original: rules.CycleFigures | None = None) -> list[FigureRow]:
    """The load's figures next to what its programme asks (the stored reasons stay the verdict), and the
    figures first recorded when they were corrected since."""
    programme = cycle.programme
    limits = services.limits_for(pack_for_site(cycle.site_id))
    low, high = programme.temperature_c, programme.temperature_c + limits.max_temperature_over_set_c
    now, labels = _figure_texts(services.figures_of(cycle)), _figure_labels()
    first = _figure_texts(original) if original is not None else {}
    rows = [
        FigureRow(labels["temperature"], now["temperature"],
                  _("%(low)s to %(high)s °C", low=_one(low), high=_one(high)),
                  low <= cycle.temperature_c <= high, first.get("temperature")),
        FigureRow(labels["holding"], now["holding"], _("at least %(value)s s", value=programme.min_holding_seconds),
                  cycle.holding_seconds >= programme.min_holding_seconds, first.get("holding")),
    ]
    if programme.min_pressure_kpa is not None or cycle.pressure_kpa is not None or (
            original is not None and original.pressure_kpa is not None):
        rows.append(FigureRow(
            labels["pressure"], now["pressure"],
            _("at least %(value)s kPa", value=_one(programme.min_pressure_kpa))
            if programme.min_pressure_kpa is not None else "—",
            None if programme.min_pressure_kpa is None else (
                cycle.pressure_kpa is not None and cycle.pressure_kpa >= programme.min_pressure_kpa),
            first.get("pressure")))
    rows.append(FigureRow(labels["indicator"], now["indicator"], _("Pass"), cycle.indicator_passed,
                          first.get("indicator")))
    minimum = limits.min_indicator_class_without_printout
    rows.append(FigureRow(labels["printout"], now["printout"],
                          _("a printout, or a class %(n)s or 6 indicator", n=minimum),
                          bool(cycle.printout_ref.strip()) or (cycle.indicator_class or 0) >= minimum,
                          first.get("printout")))
    return rows


def _before_figures(c: CycleCorrection) -> rules.CycleFigures:
    return rules.CycleFigures(c.temperature_c_before, c.holding_seconds_before, c.pressure_kpa_before,
                              c.indicator_passed_before, c.indicator_class_before, c.printout_ref_before)


def _after_figures(c: CycleCorrection) -> rules.CycleFigures:
    return rules.CycleFigures(c.temperature_c_after, c.holding_seconds_after, c.pressure_kpa_after,
                              c.indicator_passed_after, c.indicator_class_after, c.printout_ref_after)


def _correction_rows(corrections: list[CycleCorrection]) -> list[CorrectionRow]:
    from .curve_views import figure_names  # noqa: PLC0415
    labels, names = _figure_labels(), figure_names()
    rows = []
    for c in corrections:
        before, after = _figure_texts(_before_figures(c)), _figure_texts(_after_figures(c))
        rows.append(CorrectionRow(c, [(labels[k], before[k], after[k]) for k in labels if before[k] != after[k]],
                                  [names.get(d["figure"], d["figure"]) for d in c.disagreements or []]))
    return rows


def _pack_rows(packs: Iterable[Pack], tz: str, now: datetime) -> list[PackRow]:
    return [PackRow(p, rules.pack_state(p.status, p.expires_at, now),
                    to_local(p.expires_at, tz).date() if p.expires_at else None,
                    ", ".join(f"{i.device.device_type.name} {i.device.serial}" for i in p.items))
            for p in packs]


def _load_page(actor: Actor, cycle: Cycle, layout: str, release_form: ReleaseForm | None = None,
               fail_form: FailForm | None = None, status: int = 200):
    site = _site_of(cycle.site_id)
    view = "tablet" if layout == TABLET else "desk"
    release_form = release_form or ReleaseForm(formdata=None, view=view)
    fail_form = fail_form or FailForm(formdata=None, view=view)
    recall_id = db.session.scalar(select(RecallLoad.recall_id).where(RecallLoad.cycle_id == cycle.id)
                                  .order_by(RecallLoad.recall_id.desc()).limit(1))
    corrections = services.corrections_of(actor, cycle.id)
    can_correct = actor.can("cycles.correct") and services.correction_refusal(cycle) is None
    from .curve_services import curve_for_load, reconciliation  # noqa: PLC0415
    from .curve_views import figure_names  # noqa: PLC0415
    machine_record = curve_for_load(actor, cycle)
    disagreeing = [figure_names()[c.figure] for c in reconciliation(machine_record, cycle) if c.disagrees] \
        if machine_record is not None else []
    return render_template(
        "sterilisation/load.html", layout=layout, cycle=cycle, site=site, machine_record=machine_record,
        disagreeing=disagreeing, machine_applied=any(c.kind == "machine_record" for c in corrections),
        figures=_figures(cycle, _before_figures(corrections[0]) if corrections else None),
        loaded_by=_author(cycle.loaded_by, cycle.api_key_id, _machine_names([cycle.api_key_id])) or "—",
        reasons=[reason_text(r) for r in cycle.reasons], packs=_pack_rows(cycle.packs, site.timezone, utcnow()),
        recall_id=recall_id, release_form=release_form, fail_form=fail_form,
        corrections=_correction_rows(corrections), can_correct=can_correct,
        can_decide=actor.can("cycles.decide") and cycle.status == "awaiting_release"), status


def _load_url(cycle: Cycle, layout: str) -> str:
    endpoint = "sterilisation.show_verdict" if layout == TABLET else "sterilisation.show_load"
    return url_for(endpoint, cycle_id=cycle.id)


@bp.get("/decontamination/loads/<int:cycle_id>")
@requires("sterilisation.read")
def show_verdict(cycle_id: int):
    """Right after a load is recorded on the tablet: its verdict, large, and the release or fail buttons."""
    actor = current_actor()
    return _load_page(actor, services.get_cycle(actor, cycle_id), TABLET)


@bp.get("/loads/<int:cycle_id>")
@requires("sterilisation.read")
def show_load(cycle_id: int):
    actor = current_actor()
    return _load_page(actor, services.get_cycle(actor, cycle_id), DESK)


def _after_decision(cycle: Cycle, view: str | None):
    endpoint = "sterilisation.show_verdict" if view == "tablet" else "sterilisation.show_load"
    return redirect(url_for(endpoint, cycle_id=cycle.id))


@bp.post("/loads/<int:cycle_id>/release")
@requires("cycles.decide")
def release_load(cycle_id: int):
    actor = current_actor()
    cycle = services.get_cycle(actor, cycle_id)
    form = ReleaseForm()
    layout = TABLET if form.view.data == "tablet" else DESK

    def released(decided: Cycle):
        flash(ngettext("Load %(number)s released: its pack is sterile.",
                       "Load %(number)s released: its %(num)s packs are sterile.", len(decided.packs),
                       number=decided.cycle_number), "success")
        return _after_decision(decided, form.view.data)

    outcome = submit(form, lambda: services.release_cycle(actor, cycle.id, utcnow()), released, on_form=True)
    if not isinstance(outcome, int):
        return outcome
    return _load_page(actor, services.get_cycle(actor, cycle_id), layout, release_form=form, status=outcome)


@bp.post("/loads/<int:cycle_id>/fail")
@requires("cycles.decide")
def fail_load(cycle_id: int):
    actor = current_actor()
    cycle = services.get_cycle(actor, cycle_id)
    form = FailForm()
    layout = TABLET if form.view.data == "tablet" else DESK

    def failed(decided: Cycle):
        flash(_("Load %(number)s failed. Its packs must not be used; the devices go back to be reprocessed.",
                number=decided.cycle_number), "success")
        return _after_decision(decided, form.view.data)

    outcome = submit(form, lambda: services.fail_cycle(actor, cycle.id, form.note.data or "", utcnow()), failed,
                     on_form=True)
    if not isinstance(outcome, int):
        return outcome
    return _load_page(actor, services.get_cycle(actor, cycle_id), layout, fail_form=form, status=outcome)


@bp.route("/loads/<int:cycle_id>/correct", methods=["GET", "POST"])
@requires("cycles.correct")
def correct_load(cycle_id: int):
    """A manager corrects a load's mistyped figures with a reason, while none of its packs was used."""
    actor = current_actor()
    cycle = services.get_cycle(actor, cycle_id)
    site = _site_of(cycle.site_id)
    layout = TABLET if _is_tablet() else DESK
    refusal = services.correction_refusal(cycle)
    if refusal:
        flash(refusal, "error")
        return redirect(_load_url(cycle, layout))
    form = CorrectionForm()
    if request.method == "GET":
        form.prefill(cycle)

    def corrected(correction: CycleCorrection):
        number = correction.cycle.cycle_number
        if correction.status_after == correction.status_before:
            message = _("Figures of load %(number)s corrected.", number=number)
        elif correction.status_after == "awaiting_release":
            message = _("Figures of load %(number)s corrected: it passes its checks now and awaits release.",
                        number=number)
        else:
            message = _("Figures of load %(number)s corrected: it fails. Its packs must not be used; the devices go "
                        "back to be reprocessed.", number=number)
        flash(message, "success")
        return redirect(_load_url(correction.cycle, layout))

    outcome = 200
    if not _correcting():
        outcome = _submit_judged(
            form, lambda: services.correct_cycle(actor, cycle.id, form.values(), utcnow(),
                                                 confirm_failure=_confirming()),
            corrected,
            lambda verdict: _confirm_page(form, verdict, layout=layout,
                                          title=_("Correct the figures of load %(n)s", n=cycle.cycle_number),
                                          action=url_for("sterilisation.correct_load", cycle_id=cycle.id),
                                          confirm_label=_("Yes: store the correction, the load fails")))
        if not isinstance(outcome, int):
            return outcome
    return render_template("sterilisation/correct_form.html", layout=layout, form=form, cycle=cycle,
                           site=site, figures=_figures(cycle), back_url=_load_url(cycle, layout)), outcome


# --- reprocessing devices ------------------------------------------------------------------------

STEP_FORMS = {"clean": CleaningForm, "inspect": InspectionForm, "pack": PackForm}


def _reprocess_page(actor: Actor, site: Site, step: str, form=None, status: int = 200):
    queue = _reprocess_queue(actor, site)
    if form is None:
        form = STEP_FORMS[step](formdata=None)
        # The devices just cleaned are inspected together; which go into one pack is chosen each time.
        wanted = {int(x) for x in request.args.get("ids", "").split(",") if x.strip().isdigit()}
        form.device_ids.data = [d.id for d in queue[step] if d.id in wanted] if step == "inspect" else []
        if step == "clean":
            form.method.data = "ultrasonic"
        if step == "pack":
            form.packaging.data = "pouch"
    form.device_ids.choices = [(d.id, d.serial) for d in queue[step]]
    return render_template("sterilisation/reprocess.html", site=site, step=step, form=form, queue=queue,
                           devices=queue[step]), status


@bp.get("/decontamination/reprocess")
@requires("reprocess.record")
def reprocess_devices():
    actor = current_actor()
    site = _site_in_context(actor)
    step = request.args.get("step")
    if step not in REPROCESS_STEPS:
        queue = _reprocess_queue(actor, site)
        step = next((s for s in REPROCESS_STEPS if queue[s]), "clean")
    return _reprocess_page(actor, site, step)


def _reprocess_step(step: str, run):
    actor = current_actor()
    site = _site_in_context(actor)
    form = STEP_FORMS[step]()
    # run makes the service call, flashes and returns the redirect; submit commits after it.
    outcome = submit(form, lambda: run(actor, {k: v for k, v in form.data.items() if k != "csrf_token"}, utcnow()),
                     lambda response: response, on_form=True)
    if not isinstance(outcome, int):
        return outcome
    return _reprocess_page(actor, site, step, form, outcome)


@bp.post("/decontamination/reprocess/clean")
@requires("reprocess.record")
def record_cleaning():
    def run(actor, data, now):
        devices = services.record_cleaning(actor, data, now)
        flash(ngettext("%(num)s device cleaned. Inspect it next.", "%(num)s devices cleaned. Inspect them next.",
                       len(devices)), "success")
        return redirect(url_for("sterilisation.reprocess_devices", step="inspect", site=_site_arg(),
                                ids=",".join(str(d.id) for d in devices)))
    return _reprocess_step("clean", run)


@bp.post("/decontamination/reprocess/inspect")
@requires("reprocess.record")
def record_inspection():
    def run(actor, data, now):
        devices = services.record_inspection(actor, data, now)
        if devices[0].status == "quarantined":
            flash(ngettext("%(num)s device quarantined. A manager decides whether to repair or retire it.",
                           "%(num)s devices quarantined. A manager decides whether to repair or retire them.",
                           len(devices)), "error")
            return redirect(url_for("sterilisation.reprocess_devices", step="inspect", site=_site_arg()))
        flash(ngettext("%(num)s device inspected. Pack it next.",
                       "%(num)s devices inspected. Pack them next: tick the devices for one pack.", len(devices)),
              "success")
        return redirect(url_for("sterilisation.reprocess_devices", step="pack", site=_site_arg()))
    return _reprocess_step("inspect", run)


@bp.post("/decontamination/reprocess/pack")
@requires("reprocess.record")
def pack_devices():
    def run(actor, data, now):
        packs = services.create_packs(actor, data, now)
        if len(packs) == 1:
            return redirect(url_for("sterilisation.show_packed", pack_id=packs[0].id))
        flash(_("%(num)s packs made, one per device: print their labels.", num=len(packs)), "success")
        return redirect(url_for("sterilisation.print_labels", ids=",".join(str(p.id) for p in packs),
                                format="label"))
    return _reprocess_step("pack", run)


@bp.get("/decontamination/packs/<int:pack_id>")
@requires("reprocess.record")
def show_packed(pack_id: int):
    """A new pack: its label to print, and the way on to a load."""
    actor = current_actor()
    pack = services.get_pack(actor, pack_id)
    site = _site_of(pack.site_id)
    return render_template("sterilisation/packed.html", pack=pack, site=site,
                           label=_labels_for([pack], utcnow())[0])


# --- labels and packs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Label:
    code: str
    qr_svg: Markup
    state: str
    steriliser: str
    cycle_number: int | None
    sterilised_on: date | None
    expires_on: date | None
    packed_on: date
    contents: str


def _labels_for(packs: list[Pack], now: datetime) -> list[Label]:
    zones: dict[int, str] = {}
    labels = []
    for pack in packs:
        if pack.site_id not in zones:
            zones[pack.site_id] = db.session.get(Site, pack.site_id).timezone
        tz = zones[pack.site_id]
        cycle = pack.cycle
        state = rules.pack_state(pack.status, pack.expires_at, now)
        sterilised = cycle is not None and state in ("sterile", "expired", "used")
        qr = segno.make(label_url(pack.label_code), error="m").svg_inline(scale=4, omitsize=True)
        labels.append(Label(
            code=pack.label_code, qr_svg=Markup(qr), state=state,
            steriliser=cycle.steriliser.name if cycle else "", cycle_number=cycle.cycle_number if cycle else None,
            sterilised_on=to_local(cycle.started_at, tz).date() if sterilised else None,
            expires_on=to_local(pack.expires_at, tz).date() if sterilised and pack.expires_at else None,
            packed_on=to_local(pack.packed_at, tz).date(),
            contents=", ".join(sorted({i.device.device_type.name for i in pack.items}))))
    return labels


@bp.get("/packs/labels")
@requires("sterilisation.read")
def print_labels():
    """A printable sheet of pack labels: ?ids=1,2 or ?cycle=ID; ?format=a4 (label sheet) or label (50 × 30 mm)."""
    actor = current_actor()
    cycle = None
    packs: list[Pack] = []
    if request.args.get("cycle"):
        cycle_id = arg_id("cycle")
        if cycle_id is None:
            abort(404)
        cycle = services.get_cycle(actor, cycle_id)
        packs = list(cycle.packs)
    elif request.args.get("ids"):
        try:
            ids = list(dict.fromkeys(int(x) for x in request.args["ids"].split(",") if x.strip()))
        except ValueError:
            abort(404)
        packs = [services.get_pack(actor, pack_id) for pack_id in ids[:200]]
    fmt = request.args.get("format")
    if fmt not in ("a4", "label"):
        fmt = "label" if len(packs) == 1 else "a4"
    if packs:
        _site_of(packs[0].site_id)
    else:
        _site_in_context(actor)
    return render_template("sterilisation/labels.html", labels=_labels_for(packs, utcnow()), fmt=fmt, cycle=cycle,
                           packs=packs)


@dataclass(frozen=True)
class HistoryRow:
    event: DeviceEvent
    device: Device


def _pack_page(actor: Actor, pack: Pack, form: CompromiseForm | None = None, status: int = 200):
    site = _site_of(pack.site_id)
    now = utcnow()
    devices = {i.device_id: i.device for i in pack.items}
    history = [HistoryRow(e, devices.get(e.device_id) or db.session.get(Device, e.device_id))
               for e in services.pack_history(pack)]
    state = rules.pack_state(pack.status, pack.expires_at, now)
    return render_template(
        "sterilisation/pack.html", layout=TABLET if _is_tablet() else DESK, pack=pack, site=site, state=state,
        row=_pack_rows([pack], site.timezone, now)[0], history=history,
        compromised_by=db.session.get(User, pack.compromised_by_id) if pack.compromised_by_id else None,
        form=form or CompromiseForm(formdata=None),
        can_compromise=actor.can("reprocess.record") and pack.status in ("packed", "loaded", "sterile")), status


@bp.get("/p/<code>")
@requires("sterilisation.read")
def show_pack(code: str):
    """Where a label's QR code leads: the pack's state, contents, load and history."""
    actor = current_actor()
    return _pack_page(actor, services.find_pack(actor, code))


@bp.post("/p/<code>/compromise")
@requires("reprocess.record")
def compromise_pack(code: str):
    actor = current_actor()
    pack = services.find_pack(actor, code)
    form = CompromiseForm()
    outcome = submit(form, lambda: services.compromise_pack(actor, pack.label_code, {"reason": form.reason.data,
                                                                                    "note": form.note.data or ""},
                                                             utcnow()),
                     lambda done: flash_redirect(
                         _("Pack %(code)s marked compromised. Its devices go back to be reprocessed.",
                           code=done.label_code),
                         url_for("sterilisation.show_pack", code=done.label_code)), on_form=True)
    if not isinstance(outcome, int):
        return outcome
    return _pack_page(actor, services.find_pack(actor, code), form, outcome)


# --- the logbook ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogbookFilters:
    site: Site
    sites: list[Site]
    sterilisers: list[Steriliser]
    steriliser_id: int | None
    date_from: date | None
    date_to: date | None
    status: str | None
    verdict: str | None
    kind: str | None
    result: str | None
    tab: str

    @property
    def utc_from(self) -> datetime | None:
        return local_day_start(self.date_from, self.site.timezone) if self.date_from else None

    @property
    def utc_to(self) -> datetime | None:  # the end of the last day, exclusive
        return local_day_start(self.date_to + timedelta(days=1), self.site.timezone) if self.date_to else None

    @property
    def active(self) -> bool:
        return any((self.steriliser_id, self.date_from, self.date_to, self.status, self.verdict, self.kind,
                    self.result))


def _logbook_filters(actor: Actor) -> LogbookFilters:
    steriliser_id = arg_id("steriliser")
    if steriliser_id:
        steriliser = device_services.get_steriliser(actor, steriliser_id)  # another site's: 404
        site = _site_of(steriliser.site_id)
    else:
        site = _site_in_context(actor)

    def pick(name: str, options) -> str | None:
        value = request.args.get(name)
        return value if value in options else None

    return LogbookFilters(
        site=site, sites=_sites_in_reach(actor),
        sterilisers=list(db.session.scalars(device_services.sterilisers_query(actor, site_id=site.id,
                                                                              include_inactive=True))),
        steriliser_id=steriliser_id or None, date_from=arg_day("from"), date_to=arg_day("to"),
        status=pick("status", CYCLE_STATUS_LABELS), verdict=pick("verdict", ("pass", "fail")),
        kind=pick("kind", TEST_KIND_LABELS), result=pick("result", TEST_RESULT_LABELS),
        tab="tests" if request.args.get("tab") == "tests" else "loads")


def _ascending() -> bool:
    return request.args.get("sort") == "date"


def _cycles_stmt(actor: Actor, f: LogbookFilters):
    stmt = services.cycles_query(actor, steriliser_id=f.steriliser_id, status=f.status, verdict=f.verdict,
                                 date_from=f.utc_from, date_to=f.utc_to).where(Cycle.site_id == f.site.id)
    order = sort_clause({"date": Cycle.started_at}, "-date")
    return stmt.order_by(None).order_by(order, Cycle.id.asc() if _ascending() else Cycle.id.desc()).options(
        selectinload(Cycle.steriliser), selectinload(Cycle.programme), selectinload(Cycle.loaded_by),
        selectinload(Cycle.decided_by))


def _tests_stmt(actor: Actor, f: LogbookFilters):
    stmt = services.tests_query(actor, steriliser_id=f.steriliser_id, kind=f.kind, result=f.result,
                                date_from=f.utc_from, date_to=f.utc_to).where(SteriliserTest.site_id == f.site.id)
    order = sort_clause({"date": SteriliserTest.performed_at}, "-date")
    return stmt.order_by(None).order_by(order, SteriliserTest.id.asc() if _ascending() else SteriliserTest.id.desc()
                                        ).options(
        selectinload(SteriliserTest.steriliser), selectinload(SteriliserTest.performed_by),
        selectinload(SteriliserTest.result_by))


def _machine_names(key_ids: Iterable[int | None]) -> dict[int, str]:
    """The names of the site keys (data loggers) that posted loads or tests."""
    ids = {i for i in key_ids if i}
    return dict(db.session.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(ids))).all()) if ids else {}


def _author(user, key_id: int | None, machines: dict[int, str], fallback: str = "") -> str:
    if user is not None:
        return user.name
    if key_id:
        return _("data logger “%(name)s”", name=machines.get(key_id, key_id))
    return fallback


def _local_text(value: datetime | None, tz: str) -> str:
    return to_local(value, tz).strftime("%Y-%m-%d %H:%M") if value else ""


def _cycle_csv_rows(cycles: Iterable[Cycle], tz: str, machines: dict[int, str]) -> Iterator[list]:
    from .curve_services import figure_sources  # noqa: PLC0415
    yield [_("Started"), _("Time zone"), _("Steriliser"), _("Cycle number"), _("Programme"), _("Temperature (°C)"),
           _("Holding time (s)"), _("Pressure (kPa)"), _("Chemical indicator"), _("Indicator class"),
           _("Printout"), _("Verdict"), _("Reasons"), _("Status"), _("Loaded by"), _("Decided by"),
           _("Decided at"), _("Decision note"), _("Source of the figures")]
    cycles = list(cycles)
    sources = figure_sources(cycles)
    for c in cycles:
        yield [_local_text(c.started_at, tz), tz, csv_cell(c.steriliser.name), c.cycle_number,
               csv_cell(c.programme.name), c.temperature_c, c.holding_seconds,
               "" if c.pressure_kpa is None else c.pressure_kpa, "pass" if c.indicator_passed else "fail",
               c.indicator_class or "", csv_cell(c.printout_ref), "pass" if c.is_verdict_pass else "fail",
               csv_cell(reasons_text(c.reasons)), c.status,
               csv_cell(_author(c.loaded_by, c.api_key_id, machines)),
               csv_cell(c.decided_by.name if c.decided_by else ""), _local_text(c.decided_at, tz),
               csv_cell(c.decision_note), str(FIGURE_SOURCE_LABELS.get(sources[c.id], sources[c.id]))]


def _test_csv_rows(tests: Iterable[SteriliserTest], tz: str, machines: dict[int, str]) -> Iterator[list]:
    yield [_("Done at"), _("Time zone"), _("Steriliser"), _("Test"), _("Result"), _("Indicator lot"),
           _("Control"), _("Measured value"), _("Certificate"), _("Done by"), _("Result read at"), _("Notes")]
    for t in tests:
        yield [_local_text(t.performed_at, tz), tz, csv_cell(t.steriliser.name), t.kind, t.result,
               csv_cell(t.indicator_lot), t.control_result or "",
               "" if t.measured_value is None else t.measured_value, csv_cell(t.certificate_ref),
               csv_cell(_author(t.performed_by, t.api_key_id, machines, t.performed_by_name)),
               _local_text(t.result_at, tz), csv_cell(t.notes)]


def _csv_response(rows: list[list], filename: str) -> Response:
    """Stream rows that are already plain values: a WSGI server reads the body after Flask has torn the
    request down (its database session closed, the signed-in person detached), so nothing here may touch the
    database, the person or the request's language."""
    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            writer.writerow(row)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    return Response(generate(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


@bp.get("/logbook")
@requires("sterilisation.read")
def logbook():
    """The steriliser logbook of one site: loads, or steriliser tests, filtered; as a page or as CSV."""
    actor = current_actor()
    f = _logbook_filters(actor)
    stmt = _tests_stmt(actor, f) if f.tab == "tests" else _cycles_stmt(actor, f)
    if request.args.get("format") == "csv":
        # Recorded (and committed) before the rows are read: a commit would close PostgreSQL's server-side cursor.
        record_export(actor, f"logbook-{f.tab}", "csv", f.site.id, request.args.to_dict())
        rows = db.session.scalars(stmt.execution_options(yield_per=500))
        make = _test_csv_rows if f.tab == "tests" else _cycle_csv_rows
        machines = dict(db.session.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.site_id == f.site.id)).all())
        # Every cell is made here, in the request (ORM objects, the person's language); only text is streamed.
        return _csv_response(list(make(rows, f.site.timezone, machines)),
                             f"{f.tab}-{f.site.id}-{to_local(utcnow(), f.site.timezone):%Y%m%d-%H%M}.csv")
    page = paginate(stmt)
    reasons = {} if f.tab == "tests" else {c.id: [reason_text(r) for r in c.reasons] for c in page.items}
    machines = _machine_names(row.api_key_id for row in page.items)
    authors = {row.id: _author(row.loaded_by if f.tab == "loads" else row.performed_by, row.api_key_id, machines,
                               "" if f.tab == "loads" else row.performed_by_name) or "—" for row in page.items}
    records, gaps, machine_records, sources = [], {}, {}, {}
    if f.tab == "loads":
        from . import curve_services  # noqa: PLC0415 - curve_services is independent of the views; kept local
        records = list(db.session.scalars(curve_services.curves_query(actor, steriliser_id=f.steriliser_id)
                                          .where(CycleCurve.site_id == f.site.id).limit(RECENT_RECORDS)))
        gaps = {sid: ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)
                for sid, runs in curve_services.cycle_number_gaps(
                    actor, [s.id for s in f.sterilisers if not f.steriliser_id or s.id == f.steriliser_id]).items()}
        machine_records = curve_services.curves_for_loads(page.items)
        sources = curve_services.figure_sources(page.items)
    return render_template("sterilisation/logbook.html", f=f, page=page, reasons=reasons, authors=authors,
                           records=records, gaps=gaps, machine_records=machine_records,
                           sources=sources, FIGURE_SOURCE_LABELS=FIGURE_SOURCE_LABELS,
                           steriliser_names={s.id: s.name for s in f.sterilisers}, source_labels=CURVE_SOURCE_LABELS)


# --- recalls -------------------------------------------------------------------------------------

@bp.get("/recalls")
@requires("recalls.read")
def list_recalls():
    actor = current_actor()
    state = request.args.get("state") if request.args.get("state") in ("open", "closed") else None
    stmt = services.recalls_query(actor, open_only=state == "open")
    if state == "closed":
        stmt = stmt.where(Recall.closed_at.is_not(None))
    page = paginate(stmt.options(selectinload(Recall.steriliser).selectinload(Steriliser.site),
                                 selectinload(Recall.loads)))
    return render_template("sterilisation/recalls.html", page=page, state=state,
                           many_sites=len(actor.site_ids) > 1)


@dataclass(frozen=True)
class RecalledLoad:
    link: RecallLoad
    packs: list[PackRow] = field(default_factory=list)


def _recall_page(actor: Actor, recall: Recall, contacted_form: ContactedForm | None = None,
                 close_form: CloseRecallForm | None = None, status: int = 200):
    site = _site_of(recall.site_id)
    now = utcnow()
    loads = [RecalledLoad(link, _pack_rows(link.cycle.packs, site.timezone, now)) for link in recall.loads]
    return render_template(
        "sterilisation/recall.html", recall=recall, site=site, loads=loads,
        trigger_curve=services.recall_trigger_curve(recall),
        treatments=recall_treatments(actor, recall.id), show_clients=actor.can("trace.read"),
        checklist=services.recall_checklist(recall), contacted_form=contacted_form or ContactedForm(formdata=None),
        close_form=close_form or CloseRecallForm(formdata=None),
        can_manage=actor.can("recalls.manage") and recall.closed_at is None,
        pack_count=sum(len(load.packs) for load in loads)), status


@bp.get("/recalls/<int:recall_id>")
@requires("recalls.read")
def show_recall(recall_id: int):
    actor = current_actor()
    return _recall_page(actor, services.get_recall(actor, recall_id))


@bp.post("/recalls/<int:recall_id>/contacted")
@requires("recalls.manage")
def mark_clients_contacted(recall_id: int):
    actor = current_actor()
    recall = services.get_recall(actor, recall_id)
    form = ContactedForm()
    outcome = submit(form, lambda: services.mark_clients_contacted(actor, recall.id, form.note.data or "", utcnow()),
                     lambda _done: flash_redirect(_("Recorded that the clients were contacted."),
                                                  url_for("sterilisation.show_recall", recall_id=recall.id)),
                     on_form=True)
    if not isinstance(outcome, int):
        return outcome
    return _recall_page(actor, services.get_recall(actor, recall_id), contacted_form=form, status=outcome)


@bp.post("/recalls/<int:recall_id>/close")
@requires("recalls.manage")
def close_recall(recall_id: int):
    actor = current_actor()
    recall = services.get_recall(actor, recall_id)
    form = CloseRecallForm()
    outcome = submit(form, lambda: services.close_recall(actor, recall.id, form.note.data or "", utcnow()),
                     lambda _done: flash_redirect(_("Recall closed."),
                                                  url_for("sterilisation.show_recall", recall_id=recall.id)),
                     on_form=True)
    if not isinstance(outcome, int):
        return outcome
    return _recall_page(actor, services.get_recall(actor, recall_id), close_form=form, status=outcome)
from . import curve_views, load_pdf  # noqa: E402,F401  (register the cycle-record and load PDF routes on this blueprint)
