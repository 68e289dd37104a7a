"""Checklist screens on the tablet: the day's checklists, a run answered one tap (one request) at a time,
corrections with a reason, and the Now screen's checklist summary."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_from_directory,
                   url_for)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import inspect, select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.util import identity_key
from werkzeug.wrappers import Response

from ..auth.actor import Actor
from ..errors import ServiceError
from ..extensions import db
from ..i18n import decimal_symbol as locale_decimal_symbol
from ..i18n import local_datetime, local_time, number
from ..schedule import services as schedule
from ..schedule import subjects as schedule_subjects
from ..schedule.labels import kind_label
from ..sites.models import Room, Site, User
from ..timeutil import local_today, utcnow
from ..validation import TooLong
from ..web import current_actor, paginate, requires, wants_partial
from . import rules, services
from .forms import PER_CLIENT, ROOM_KINDS, received_key, signature_bytes
from .models import Answer, ChecklistRun, ChecklistTemplate, CorrectiveAction, TemplateItem

bp = Blueprint("checklists", __name__)

FILE_KINDS = ("photo", "signature")
WEEK = timedelta(days=6)  # a weekly checklist counts as done for 7 local days, today included
RUNS_SHOWN = 10  # today's runs listed per checklist on the Checklists page; the others are a page away


def new_key() -> str:
    """A fresh idempotency key, rendered into each unanswered item's form: a double tap sends it twice."""
    return secrets.token_urlsafe(16)


def _lang() -> str:
    return str(get_locale())


def _pick(texts: dict | None, fallback: str = "") -> str:
    """The text in the reader's language (titles and labels come from the data in both languages)."""
    texts = texts or {}
    return texts.get(_lang()) or texts.get("en") or fallback


def _number(value: Decimal | str | None) -> str:
    return "" if value is None else number(Decimal(str(value)).normalize())


def _upload_folder() -> Path:
    return Path(current_app.instance_path) / "uploads"


def _site_in_context(actor: Actor) -> Site:
    """The enrolled tablet's site, else the person's first site in reach; sets g.site."""
    site = None
    if g.get("tablet") is not None and g.tablet.site_id in actor.site_ids:
        site = g.tablet.site
    else:
        site = next((s for s in current_user.sites if s.id in actor.site_ids), None)
        if site is None and actor.site_ids:  # an admin of the organisation who belongs to no site
            site = db.session.get(Site, min(actor.site_ids))
    if site is None:
        abort(404, description=_("You are not assigned to a site yet. Ask a manager."))
    g.site = site
    return site


def _run(actor: Actor, run_id: int, options=()) -> ChecklistRun:
    run = services.get_run(actor, run_id, options)  # another site's: 404
    g.site = db.session.get(Site, run.site_id)  # the tablet's site is in the session already: no query
    return run


def _users(ids) -> dict[int, User]:
    """People by id: those the session holds loaded (the person signed in) without a query, the others in one."""
    ids = {i for i in ids if i}
    found = {}
    for user_id in ids:
        user = db.session.identity_map.get(identity_key(User, user_id))
        if user is not None and "name" not in inspect(user).unloaded:
            found[user_id] = user
    if missing := ids - found.keys():
        found.update({u.id: u for u in db.session.scalars(select(User).where(User.id.in_(missing)))})
    return found


def _progress(run: ChecklistRun, answered_ids) -> tuple[int, int]:
    """Answered required items out of all required ones (every item when none is required)."""
    required = [i.id for i in run.version.items if i.is_required] or [i.id for i in run.version.items]
    return rules.progress(required, answered_ids)


# --- today's checklists ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RunLine:
    id: int
    room: str
    started_at: datetime
    started_by: str
    answered: int
    total: int
    completed_at: datetime | None

    @property
    def is_complete(self) -> bool:
        return self.completed_at is not None


@dataclass(frozen=True)
class TemplateLine:
    id: int
    kind: str
    title: str
    runs: list[RunLine]       # today's newest (at most RUNS_SHOWN), newest first; empty on the Now screen
    started_today: int        # every run of today, counted in SQL
    completed_today: int
    open_run: RunLine | None  # today's newest run not complete (also when older than those listed)
    rooms: list[Room]         # where it is done (the room picker); empty: the whole site
    is_done: bool             # complete today (a weekly one: within the last 7 days)
    per_client: bool          # done once per client: counted, never "not done"
    start_key: str = field(default_factory=new_key)  # in the start form: a double tap or a replay makes one run

    @property
    def has_open(self) -> bool:
        return self.started_today > self.completed_today

    @property
    def more(self) -> int:
        """Today's runs not listed here (a page away)."""
        return self.started_today - len(self.runs)


def _rooms_for(kind: str, site: Site) -> list[Room]:
    wanted = ROOM_KINDS.get(kind)
    if wanted is None:
        return []
    rooms = [r for r in site.rooms if r.is_active]
    matching = [r for r in rooms if r.kind == wanted]
    return matching or ([] if wanted == "decontamination" else rooms)


def _run_lines(runs: list[ChecklistRun], site: Site) -> list[RunLine]:
    """Runs ready to list, their progress counted in SQL (a fixed number of queries for any number of runs)."""
    progress = services.progress_of(runs)
    people = _users(r.started_by_id for r in runs)
    rooms = {r.id: r.name for r in site.rooms}
    lines = []
    for r in runs:
        answered, total = progress[r.id]
        by = people.get(r.started_by_id)
        lines.append(RunLine(r.id, rooms.get(r.room_id, ""), r.started_at, by.name if by else "", answered, total,
                             r.completed_at))
    return lines


def _today(actor: Actor, site: Site, now: datetime, with_runs: bool = True) -> list[TemplateLine]:
    """Every active checklist of the organisation with the site's runs of today counted, and (for the
    Checklists page) the newest of them listed: the same queries however many runs the site keeps."""
    today = local_today(site.timezone, now)
    templates = list(db.session.scalars(services.templates_query(actor).options(
        selectinload(ChecklistTemplate.versions))))
    counts = services.day_counts(actor, site.id, today, today - WEEK)
    latest = services.latest_runs_of_day(actor, site.id, today, RUNS_SHOWN) if with_runs else []
    run_lines = _run_lines([run for run, _template_id in latest], site)
    lines = []
    for template in templates:
        c = counts.get(template.id) or services.DayCounts(0, 0, False)
        mine = [line for line, (_run, template_id) in zip(run_lines, latest) if template_id == template.id]
        lines.append(TemplateLine(
            template.id, template.kind, _pick(services.current_version(template).title, template.key),
            mine[:RUNS_SHOWN], c.started, c.completed, next((r for r in mine if not r.is_complete), None),
            _rooms_for(template.kind, site), c.done_in_window if template.kind == "weekly" else c.completed > 0,
            template.kind in PER_CLIENT))
    return lines


@dataclass(frozen=True)
class ActionLine:
    what: str                 # the question in the reader's language, the answer and its note
    checklist: str
    run_id: int
    item_key: str
    due_on: date
    opened_at: datetime


def _open_actions(actor: Actor, site: Site) -> list[ActionLine]:
    """The site's open corrective actions, told from their answers (the stored text is in English only)."""
    actions = list(db.session.scalars(services.actions_query(actor, open_only=True, site_id=site.id).options(
        selectinload(CorrectiveAction.answer).selectinload(Answer.item),
        selectinload(CorrectiveAction.answer).selectinload(Answer.run).selectinload(ChecklistRun.version))))
    lines = []
    for action in actions:
        answer, item = action.answer, action.answer.item
        what = f"{_pick(item.label, item.key)}: {_answer_text(item, answer.value)}"
        lines.append(ActionLine(f"{what} — {answer.note}" if answer.note else what, _pick(answer.run.version.title),
                                answer.run_id, item.key, action.due_on, action.opened_at))
    return lines


@dataclass(frozen=True)
class DueLine:
    what: str                 # the kind of duty, in the reader's language
    subject: str              # which steriliser, container, pack … ("" for the site itself)
    when: str                 # the local due time (with the date when it is not today)
    state: str                # ok (later today), due, overdue, snoozed


def _due(actor: Actor, site: Site, now: datetime) -> list[DueLine]:
    """The site's staff duties (and the person's own) overdue or falling due before the end of the local day."""
    if not actor.can("obligations.read"):
        return []
    rows = schedule.due_for_tablet(site.id, now, actor.user_id)
    names = schedule_subjects.labels(rows)
    today = local_today(site.timezone, now)
    lines = []
    for o in rows:
        subject = "" if o.subject_type == "site" else names.get((o.subject_type, o.subject_id), "")
        when = (local_time(o.next_due_at, site.timezone) if local_today(site.timezone, o.next_due_at) == today
                else local_datetime(o.next_due_at, site.timezone, "short"))
        lines.append(DueLine(kind_label(o.kind), subject, when, schedule.state_of(o, now)))
    return lines


def _today_page(actor: Actor, site: Site, status: int = 200):
    now = utcnow()
    treatment_id = request.values.get("treatment_id") or request.args.get("treatment") or ""
    return render_template("checklists/today.html", site=site, templates=_today(actor, site, now),
                           actions=_open_actions(actor, site), today=local_today(site.timezone, now),
                           due=_due(actor, site, now),
                           treatment_id=treatment_id if treatment_id.isdigit() else "",
                           can_answer=actor.can("checklists.answer")), status


@bp.get("/tablet/checklists")
@requires("checklists.answer")
def today():
    """The day's checklists for the tablet's site: what is done, what is under way, and where to start."""
    actor = current_actor()
    return _today_page(actor, _site_in_context(actor))


@bp.get("/tablet/checklists/summary")
@requires("checklists.read")
def now_summary():
    """The Now screen's checklist part (loaded by htmx): today's checklists, done or not."""
    actor = current_actor()
    site = _site_in_context(actor)
    now = utcnow()
    return render_template("checklists/_now_summary.html", site=site,
                           templates=_today(actor, site, now, with_runs=False),
                           action_count=services.open_action_count(actor, site.id), due=_due(actor, site, now))


@bp.get("/tablet/checklists/<int:template_id>/today")
@requires("checklists.read")
def day_runs(template_id: int):
    """Every run of one checklist today at the tablet's site, a page at a time."""
    actor = current_actor()
    site = _site_in_context(actor)
    template = services.get_template(actor, template_id)  # another organisation's: 404
    today = local_today(site.timezone, utcnow())
    page = paginate(services.runs_query(actor, site_id=site.id, template_id=template.id, day_from=today,
                                        day_to=today))
    page.items = _run_lines(page.items, site)
    return render_template("checklists/day_runs.html", site=site, today=today, page=page,
                           title=_pick(services.current_version(template).title, template.key),
                           template_id=template.id)


@bp.post("/tablet/checklists/start")
@requires("checklists.answer")
def start_run():
    """Start a run of a checklist here (a room, a treatment) and open it."""
    actor = current_actor()
    site = _site_in_context(actor)
    data = {"site_id": site.id, "template_id": request.form.get("template_id"),
            "room_id": request.form.get("room_id") or None, "treatment_id": None,
            "idempotency_key": request.form.get("idempotency_key") or None}
    room = str(data["room_id"] or "")
    if data["idempotency_key"] and room.isdigit() and len(data["idempotency_key"]) <= 48:
        # One start form has a button per room and one key: each room's button starts its own run.
        data["idempotency_key"] = f"{data['idempotency_key']}-r{room}"
    treatment_id = (request.form.get("treatment_id") or "").strip()
    try:
        if treatment_id and not treatment_id.isdigit():  # the service would take int() of it
            abort(404)
        data["treatment_id"] = treatment_id or None
        run = services.start_run(actor, data, utcnow())
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _today_page(actor, site, exc.status)
    db.session.commit()
    return redirect(url_for("checklists.show_run", run_id=run.id))


# --- a run ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AnswerView:
    id: int
    text: str
    raw: str                  # the value as a form sends it (to prefill a correction)
    is_bad: bool              # a "no", or a number outside its limits
    note: str
    file_url: str
    by: str
    at: datetime
    action_due: date | None   # the corrective action it opened, while open
    received_at: datetime | None = None  # set when it reached the server over a minute after it was given


@dataclass(frozen=True)
class HistoryLine:
    old: AnswerView           # the answer that was corrected
    reason: str
    by: str
    at: datetime


@dataclass(frozen=True)
class Attempt:
    """What was sent and refused, given back at its field; `mode` says which form it came from."""
    mode: str                 # answer | amend
    key: str
    value: str = ""
    note: str = ""
    reason: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def value_error(self) -> str:
        return next((m for f, m in self.errors.items() if f not in ("note", "reason")), "")


@dataclass
class ItemView:
    id: int
    key: str
    position: int
    kind: str
    label: str
    is_required: bool
    note_when: str
    unit: str
    min_value: str
    max_value: str
    choices: list[str]
    current: AnswerView | None
    history: list[HistoryLine]
    attempt: Attempt
    amend_key: str = field(default_factory=new_key)

    @property
    def limits(self) -> str:
        if self.min_value and self.max_value:
            return f"{self.min_value} – {self.max_value} {self.unit}".strip()
        if self.min_value:
            return f"≥ {self.min_value} {self.unit}".strip()
        if self.max_value:
            return f"≤ {self.max_value} {self.unit}".strip()
        return ""

    @property
    def options(self) -> list[tuple[str, str]]:
        """(value, label) of a yes/no or choice item, for the correction form's tiles."""
        return [("yes", _("Yes")), ("no", _("No"))] if self.kind == "yes_no" else [(c, c) for c in self.choices]

    @property
    def has_file(self) -> bool:
        return self.kind in FILE_KINDS

    @property
    def show_note(self) -> bool:
        return bool(self.attempt.mode == "answer" and (self.attempt.note or "note" in self.attempt.errors))

    @property
    def amend_open(self) -> bool:
        return self.attempt.mode == "amend" and bool(self.attempt.errors)


@dataclass(frozen=True)
class ForTreatment:
    id: int
    client_code: str
    is_open: bool
    screened: bool          # the screening questions are answered (the gate lets packs and units through)
    contraindicated: bool   # an answer says the client must not be treated


def _for_treatment(run: ChecklistRun) -> ForTreatment | None:
    if run.treatment_id is None:
        return None
    from ..treatments.models import Treatment

    treatment = db.session.get(Treatment, run.treatment_id)
    screening = treatment.screening or {}
    return ForTreatment(treatment.id, treatment.client.code, treatment.status == "open", bool(screening),
                        bool(screening.get("active_skin_infection")))


@dataclass(frozen=True)
class RunView:
    id: int
    title: str
    room: str
    day: date
    timezone: str
    answered: int
    total: int
    completed_at: datetime | None
    items: list[ItemView]
    can_answer: bool
    treatment: "ForTreatment | None" = None  # a run of a treatment: its client and where its screening stands

    @property
    def is_complete(self) -> bool:
        return self.completed_at is not None

    @property
    def has_signature(self) -> bool:
        return any(i.kind == "signature" for i in self.items)

    def item(self, item_id: int) -> ItemView:
        return next(i for i in self.items if i.id == item_id)


def _answer_text(item: TemplateItem, value) -> str:
    if item.kind == "tick":
        return _("Done ✓")
    if item.kind == "yes_no":
        return _("Yes") if value is True else _("No")
    if item.kind == "number":
        return f"{_number(value)} {item.unit or ''}".strip()
    if item.kind == "photo":
        return _("Photo")
    if item.kind == "signature":
        return _("Signed")
    return str(value)


def _raw(item: TemplateItem, value) -> str:
    if item.kind in FILE_KINDS:
        return ""
    if item.kind in ("tick", "yes_no"):
        return "yes" if value is True else "no"
    return str(value)


def _is_bad(item: TemplateItem, value) -> bool:
    if item.kind == "yes_no":
        return value is False
    spec = rules.ItemSpec(item.kind, item.is_required, item.note_when, item.min_value, item.max_value)
    return item.kind == "number" and rules.is_out_of_limits(spec, value)


def _chain(answer: Answer | None, by_id: dict[int, Answer]) -> list[Answer]:
    """An answer in force and the answers it corrected, newest first."""
    chain = []
    while answer is not None:
        chain.append(answer)
        answer = by_id[answer.amends_id] if answer.amends_id else None
    return chain


def _open_actions_of(run: ChecklistRun, only: int | None = None) -> dict[int, CorrectiveAction]:
    """Answer id -> its open corrective action, for the run's answers (with `only`, that item's answers)."""
    stmt = select(CorrectiveAction).where(CorrectiveAction.closed_at.is_(None))
    if only is None:
        stmt = stmt.where(CorrectiveAction.run_id == run.id)
    else:
        by_id = {a.id: a for a in run.answers}
        shown = [a.id for a in _chain(services.current_answers(run).get(only), by_id)]
        if not shown:
            return {}
        stmt = stmt.where(CorrectiveAction.answer_id.in_(shown))
    return {a.answer_id: a for a in db.session.scalars(stmt)}


def _run_view(actor: Actor, run: ChecklistRun, attempts: dict[int, Attempt] | None = None,
              only: int | None = None, actions: dict[int, CorrectiveAction] | None = None) -> RunView:
    """The run ready to show: every item with its answer in force, the corrections before it, and a fresh key.
    With `only` (an item id), that item alone (the progress still counts them all): what an answer sends back,
    with the people and open actions (`actions`, else looked up) of that item's answers only."""
    attempts = attempts or {}
    site = g.site
    answers = list(run.answers)
    by_id = {a.id: a for a in answers}
    current = services.current_answers(run)
    if only is None:
        shown_items, shown = run.version.items, answers
    else:
        shown_items = [i for i in run.version.items if i.id == only]
        shown = _chain(current.get(only), by_id)
    people = _users(a.answered_by_id for a in shown)
    if actions is None:
        actions = _open_actions_of(run, only)
    items_by_id = {i.id: i for i in run.version.items}

    def view(a: Answer) -> AnswerView:
        item = items_by_id[a.item_id]
        who = people.get(a.answered_by_id)
        action = actions.get(a.id)
        return AnswerView(a.id, _answer_text(item, a.value), _raw(item, a.value), _is_bad(item, a.value),
                          a.note or "",
                          url_for("checklists.answer_file", answer_id=a.id) if a.file_path else "",
                          who.name if who else "", a.answered_at, action.due_on if action else None,
                          a.received_at if a.sent_later else None)

    items = []
    for item in shown_items:
        answer = current.get(item.id)
        history, link = [], answer
        while link is not None and link.amends_id:
            old = by_id[link.amends_id]
            who = people.get(link.answered_by_id)
            history.append(HistoryLine(view(old), link.amend_reason, who.name if who else "", link.answered_at))
            link = old
        shown = None
        if answer is not None:
            # An action opened by an answer since corrected stays open until a manager closes it: show it.
            due = next((line.old.action_due for line in history if line.old.action_due), None)
            shown = view(answer)
            shown = replace(shown, action_due=shown.action_due or due)
        items.append(ItemView(
            item.id, item.key, item.position, item.kind, _pick(item.label, item.key), item.is_required,
            item.note_when, item.unit or "", _number(item.min_value), _number(item.max_value),
            [str(c) for c in item.choices or ()], shown, history,
            attempts.get(item.id) or Attempt("answer", new_key())))
    answered, total = _progress(run, current.keys())
    room = db.session.get(Room, run.room_id) if run.room_id else None
    return RunView(run.id, _pick(run.version.title), room.name if room else "", run.day, site.timezone,
                   answered, total, run.completed_at, items, actor.can("checklists.answer"), _for_treatment(run))


@bp.get("/tablet/runs/<int:run_id>")
@requires("checklists.read")
def show_run(run_id: int):
    """A run: every item as its own small form; answered ones as a row with who, when and corrections."""
    actor = current_actor()
    run = _run(actor, run_id)
    return render_template("checklists/run.html", run=_run_view(actor, run))


def _item_of(run: ChecklistRun, raw) -> TemplateItem | None:
    raw = str(raw or "").strip()
    item = db.session.get(TemplateItem, int(raw)) if raw.isdigit() else None
    return item if item is not None and item.version_id == run.version_id else None


def _received_file(item: TemplateItem) -> str | None:
    """Store the photo or signature sent for a photo or signature item; its file name, or None if none came."""
    if item.kind == "photo":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return None
        # Read one byte past the limit: enough for store_upload to refuse an oversized photo.
        return services.store_upload(_upload_folder(), upload.stream.read(services.MAX_UPLOAD_BYTES + 1))
    if item.kind == "signature":
        raw = request.form.get("signature", "")
        return services.store_upload(_upload_folder(), signature_bytes(raw)) if raw else None
    return None


def _discard(name: str | None) -> None:
    if name:
        (_upload_folder() / name).unlink(missing_ok=True)


def _friendly(exc: ServiceError, form) -> dict[str, str]:
    """The refusal at its field; a missing note or reason said in words a hurried person acts on."""
    name = exc.field or "value"
    if name == "note" and not (form.get("note") or "").strip():
        return {"note": _("A note is needed for this answer. Write it, then answer again.")}
    if name == "reason" and not (form.get("reason") or "").strip():
        return {"reason": _("Give the reason for the correction.")}
    if isinstance(exc, TooLong):  # the limit and the length, as the other screens' long texts (sites.forms.TextLimit)
        return {name: _("At most %(max)d characters: this text has %(length)d. Shorten it; nothing was saved.",
                        max=exc.limit, length=exc.length)}
    return {name: exc.message}


def _refused(actor: Actor, run_id: int, item_id: int, mode: str, exc: ServiceError):
    """Nothing is stored; the item comes back with the message at its field (the whole page without htmx)."""
    db.session.rollback()
    form = request.form
    key = received_key(form.get("idempotency_key"))
    attempt = Attempt(mode, key if key and exc.field != "idempotency_key" else new_key(),
                      form.get("value", "") if form.get("value") is not None else "",
                      form.get("note", ""), form.get("reason", ""), _friendly(exc, form))
    run = _run(actor, run_id)
    view = _run_view(actor, run, {item_id: attempt})
    if wants_partial():
        return render_template("checklists/_item.html", run=view, item=view.item(item_id)), exc.status
    return render_template("checklists/run.html", run=view), exc.status


def _commit_keeping_loaded() -> None:
    """Commit without expiring what the session holds: what the transaction read and wrote is what was just
    committed, so the response is made from it instead of loading the run, its answers, the person and the site
    again in a second transaction."""
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def _saved(actor: Actor, run: ChecklistRun, item: TemplateItem, was_complete: bool) -> Response | tuple:
    """Commit; to htmx the answered item's row alone, the progress bar and (once) the Complete banner, made
    from the run, items and answers the answer loaded (the answers read again after its insert); else the run."""
    if not wants_partial():
        url = url_for("checklists.show_run", run_id=run.id, _anchor=f"item-{item.key}")
        db.session.commit()
        return redirect(url)
    actions = _open_actions_of(run, only=item.id)
    _commit_keeping_loaded()
    view = _run_view(actor, run, only=item.id, actions=actions)
    return render_template("checklists/_saved.html", run=view, item=view.item(item.id),
                           just_completed=view.is_complete and not was_complete)


def _not_in_run(message: str):
    db.session.rollback()
    if wants_partial():
        return render_template("checklists/_gone.html", message=message), 404
    abort(404, description=message)


@bp.post("/tablet/runs/<int:run_id>/answers")
@requires("checklists.answer")
def answer_item(run_id: int):
    """One tap, one request: the answer is stored at once; a replay of its key stores nothing more."""
    actor = current_actor()
    run = _run(actor, run_id, services.run_options())
    item = _item_of(run, request.form.get("item_id"))  # one of the items just loaded: no query
    if item is None:
        return _not_in_run(_("This question is not part of this checklist. Reload the page."))
    item_id, was_complete = item.id, run.completed_at is not None
    stored = None
    try:
        stored = _received_file(item)
        services.answer(actor, run.id, request.form.to_dict(), utcnow(), file_path=stored)
    except ServiceError as exc:
        _discard(stored)
        return _refused(actor, run_id, item_id, "answer", exc)
    return _saved(actor, run, item, was_complete)


@bp.post("/tablet/answers/<int:answer_id>/amend")
@requires("checklists.answer")
def amend_answer(answer_id: int):
    """A correction: a new answer with a reason; the old one stays, struck through, in the item's history."""
    actor = current_actor()
    old = db.session.get(Answer, answer_id)
    if old is None:
        abort(404)
    run = _run(actor, old.run_id, services.run_options())
    run_id, item, was_complete = run.id, old.item, run.completed_at is not None
    stored = None
    try:
        stored = _received_file(item)
        services.amend(actor, old.id, request.form.to_dict(), utcnow(), file_path=stored)
    except ServiceError as exc:
        _discard(stored)
        return _refused(actor, run_id, item.id, "amend", exc)
    return _saved(actor, run, item, was_complete)


@bp.get("/tablet/answers/<int:answer_id>/file")
@requires("checklists.read")
def answer_file(answer_id: int):
    """The photo or signature of an answer, to people who may read its run."""
    actor = current_actor()
    answer = db.session.get(Answer, answer_id)
    if answer is None or not answer.file_path:
        abort(404)
    services.get_run(actor, answer.run_id)  # another site's: 404
    response = send_from_directory(_upload_folder(), answer.file_path, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.app_template_global()
def decimal_symbol() -> str:
    """The decimal separator of the reader's locale, for the number keypad's key."""
    return locale_decimal_symbol()
