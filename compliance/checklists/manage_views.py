"""Manager screens for checklists: templates and their versions, runs with their answers and corrections,
corrective actions. (The tablet's screens, where staff fill checklists in, are in views.py.)"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Iterable

from flask import Blueprint, abort, current_app, g, render_template, request, send_from_directory, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from ..auth.actor import Actor
from ..errors import ServiceError
from ..extensions import db
from ..guidelines import load_pack
from ..i18n import select_timezone
from ..labels import LANGUAGE_LABELS
from ..sites import services as site_services
from ..sites.models import Room, Site, User
from ..timeutil import local_today, utcnow
from ..web import (
    arg_day, arg_id, current_actor, flash_redirect, paginate, refuse_at_field, requires, sort_clause, submit,
)
from . import rules, services
from .manage_forms import (
    BLANK_ROWS,
    ITEM_KIND_LABELS,
    MORE_ROWS,
    NOTE_WHEN_LABELS,
    TEMPLATE_KIND_LABELS,
    CloseActionForm,
    TemplateForm,
)
from .models import (
    TEMPLATE_KINDS,
    Answer,
    ChecklistRun,
    ChecklistTemplate,
    CorrectiveAction,
    TemplateItem,
    TemplateVersion,
)

bp = Blueprint("checklists_admin", __name__)

# Photos and signatures are stored under <instance>/uploads by services.store_upload with this name shape.
FILE_NAME = re.compile(r"[0-9a-f]{32}\.(png|jpg)")
FILE_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
ITEM_FIELD = re.compile(r"items\.(\d+)\.(\w+)")
# A refusal's field → the template form's field ("" : shown above the form).
TEMPLATE_FIELDS = {"title.en": "title_en", "title.id": "title_id", "items": ""}
RUN_STATUSES = ("complete", "incomplete")
ACTION_STATES = ("open", "closed", "all")


def _lang() -> str:
    return "id" if str(get_locale()).startswith("id") else "en"


def in_lang(texts: dict | None, language: str | None = None) -> str:
    """A stored {"en", "id"} text in the reader's language (English when that one is missing)."""
    texts = texts or {}
    return texts.get(language or _lang()) or texts.get("en") or ""


@bp.context_processor
def _labels() -> dict:
    return {"TEMPLATE_KIND_LABELS": TEMPLATE_KIND_LABELS, "ITEM_KIND_LABELS": ITEM_KIND_LABELS,
            "NOTE_WHEN_LABELS": NOTE_WHEN_LABELS, "in_lang": in_lang}


# --- helpers -------------------------------------------------------------------------------------

def _reach_sites(actor: Actor) -> list[Site]:
    return list(db.session.scalars(select(Site).where(Site.id.in_(actor.site_ids)).order_by(Site.name)))


def _filter_site(actor: Actor) -> int | None:
    site_id = arg_id("site")
    if site_id is not None:
        site_services.get_site(actor, site_id)  # a site outside the actor's reach is a 404, not an empty list
    return site_id


def _names(user_ids: Iterable[int | None]) -> dict[int, str]:
    ids = {i for i in user_ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def _grouped(column, ids: Iterable[int], *where, counted=None) -> dict[int, int]:
    ids = set(ids)
    if not ids:
        return {}
    return dict(db.session.execute(select(column, func.count(counted) if counted is not None else func.count())
                                   .where(column.in_(ids), *where).group_by(column)).all())


def _limit_text(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


def _rule_titles() -> dict[str, str]:
    return {r.id: r.title_in(_lang()) for r in load_pack().rules.values()}


def _kind_order():
    return case({kind: n for n, kind in enumerate(TEMPLATE_KINDS)}, value=ChecklistTemplate.kind, else_=99)


# --- templates -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TemplateRow:
    template: ChecklistTemplate
    version: TemplateVersion
    item_count: int
    runs_this_week: int


@bp.get("/checklist-templates")
@requires("checklists.read")
def list_templates():
    actor = current_actor()
    order = sort_clause({"kind": _kind_order(), "key": ChecklistTemplate.key,
                         "created": ChecklistTemplate.created_at}, "kind")
    page = paginate(services.templates_query(actor).order_by(None).order_by(order, ChecklistTemplate.id)
                    .options(selectinload(ChecklistTemplate.versions)))
    versions = {t.id: services.current_version(t) for t in page.items}
    items = _grouped(TemplateItem.version_id, [v.id for v in versions.values()])
    # "This week" from Monday, by the reader's calendar; a run's day is its site's local date.
    monday = local_today(select_timezone(), utcnow())
    monday -= timedelta(days=monday.weekday())
    runs = dict(db.session.execute(
        select(TemplateVersion.template_id, func.count(ChecklistRun.id))
        .join(ChecklistRun, ChecklistRun.version_id == TemplateVersion.id)
        .where(TemplateVersion.template_id.in_(list(versions)), ChecklistRun.site_id.in_(actor.site_ids),
               ChecklistRun.day >= monday)
        .group_by(TemplateVersion.template_id)).all()) if versions else {}
    rows = [TemplateRow(t, versions[t.id], items.get(versions[t.id].id, 0), runs.get(t.id, 0)) for t in page.items]
    return render_template("checklists_admin/templates.html", page=page, rows=rows, monday=monday)


def _form_data(version: TemplateVersion) -> dict:
    return {"title_en": version.title.get("en", ""), "title_id": version.title.get("id", ""),
            "items": [{"key": i.key, "kind": i.kind, "en": i.label.get("en", ""), "id": i.label.get("id", ""),
                       "rule": i.rule_id or "", "required": i.is_required, "note_when": i.note_when,
                       "min": _limit_text(i.min_value), "max": _limit_text(i.max_value), "unit": i.unit,
                       "choices": ", ".join(i.choices or [])} for i in version.items]}


def _template_form(version: TemplateVersion | None) -> TemplateForm:
    if request.method == "POST":
        form = TemplateForm(language=_lang())
        if "more" in request.form:  # "More rows": the same form again, longer; nothing is saved
            form.add_rows(MORE_ROWS, _lang())
        return form
    form = TemplateForm(data=_form_data(version) if version else None, language=_lang())
    if version is None:
        form.kind.data = request.args.get("kind") if request.args.get("kind") in TEMPLATE_KINDS else "opening"
    form.add_rows(BLANK_ROWS if version else BLANK_ROWS + 2, _lang())
    return form


def _save(form: TemplateForm, operation):
    """Validate, save, commit; a refusal goes to its row and field (the service names them "items.2.en")."""
    if "more" in request.form:
        return 200
    if not form.validate_on_submit():
        return 422 if form.is_submitted() else 200
    data, rows = form.values()
    try:
        result = operation(data)
    except ServiceError as exc:
        match = ITEM_FIELD.fullmatch(exc.field or "")
        if match and int(match[1]) < len(rows):
            return refuse_at_field(form.items[rows[int(match[1])]].form, exc, aliases={exc.field: match[2]},
                                   fallback="key")
        return refuse_at_field(form, exc, aliases=TEMPLATE_FIELDS, on_form=True)
    db.session.commit()
    return result


@bp.route("/checklist-templates/new", methods=["GET", "POST"])
@requires("checklists.manage")
def new_template():
    actor = current_actor()
    form = _template_form(None)
    outcome = _save(form, lambda data: services.create_template(actor.organisation_id, data, actor.user_id,
                                                                 utcnow()))
    if isinstance(outcome, int):
        return render_template("checklists_admin/template_form.html", form=form, template=None,
                               version=None), outcome
    return flash_redirect(_("Checklist “%(title)s” added.", title=in_lang(outcome.versions[-1].title)),
                          url_for("checklists_admin.show_template", template_id=outcome.id))


@bp.route("/checklist-templates/<int:template_id>/edit", methods=["GET", "POST"])
@requires("checklists.manage")
def edit_template(template_id: int):
    actor = current_actor()
    template = services.get_template(actor, template_id)
    version = services.current_version(template)
    number = version.number
    form = _template_form(version)
    outcome = _save(form, lambda data: services.edit_template(actor, template.id, data, utcnow()))
    if isinstance(outcome, int):
        return render_template("checklists_admin/template_form.html", form=form, template=template,
                               version=version), outcome
    if outcome.number != number:
        message = _("Saved as version %(new)s. Runs already done keep version %(old)s.", new=outcome.number,
                    old=number)
    else:
        message = _("Version %(number)s changed.", number=outcome.number)
    return flash_redirect(message, url_for("checklists_admin.show_template", template_id=template.id))


def _preview_words(language: str, ranges: dict[int, str]) -> dict:
    """The words of the answer widgets in one column's language (the preview shows both side by side)."""
    with force_locale(language):
        return {"yes": _("Yes"), "no": _("No"), "tick": _("Done"), "photo": _("Take a photo"),
                "signature": _("Sign here"), "scan": _("Scan the code"), "text": _("Write here"),
                "optional": _("optional"), "note_no": _("A note is needed when the answer is “no”."),
                "note_limits": {item_id: _("A note is needed outside %(range)s.", range=text)
                                for item_id, text in ranges.items() if text}}


def _range_text(item: TemplateItem) -> str:
    low, high, unit = _limit_text(item.min_value), _limit_text(item.max_value), item.unit
    if low and high:
        return f"{low}–{high} {unit}".strip()
    if low:
        return f"≥ {low} {unit}".strip()
    if high:
        return f"≤ {high} {unit}".strip()
    return ""


@bp.get("/checklist-templates/<int:template_id>")
@requires("checklists.read")
def show_template(template_id: int):
    actor = current_actor()
    template = services.get_template(actor, template_id)
    versions = list(template.versions)
    number = arg_id("version")
    version = next((v for v in versions if v.number == number), versions[-1])
    runs = _grouped(ChecklistRun.version_id, [v.id for v in versions], ChecklistRun.site_id.in_(actor.site_ids))
    items = _grouped(TemplateItem.version_id, [v.id for v in versions])
    ranges = {i.id: _range_text(i) for i in version.items}
    return render_template(
        "checklists_admin/template.html", template=template, version=version, versions=list(reversed(versions)),
        current=versions[-1], runs=runs, items=items, names=_names(v.created_by_id for v in versions),
        words={language: _preview_words(language, ranges) for language in LANGUAGE_LABELS},
        languages=LANGUAGE_LABELS, ranges=ranges, rule_titles=_rule_titles())


# --- runs ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunFilters:
    site_id: int | None
    template_id: int | None
    status: str | None
    date_from: date | None
    date_to: date | None

    @property
    def any(self) -> bool:
        return any((self.site_id, self.template_id, self.status, self.date_from, self.date_to))


@dataclass(frozen=True)
class RunRow:
    run: ChecklistRun
    site: Site
    room_name: str
    started_by: str
    answered: int
    total: int
    open_actions: int


@bp.get("/checklist-runs")
@requires("checklists.read")
def list_runs():
    actor = current_actor()
    sites = _reach_sites(actor)
    template_id = arg_id("template")
    if template_id is not None:
        services.get_template(actor, template_id)  # another organisation's checklist is a 404
    status = request.args.get("status") if request.args.get("status") in RUN_STATUSES else None
    f = RunFilters(site_id=_filter_site(actor), template_id=template_id, status=status,
                   date_from=arg_day("from"), date_to=arg_day("to"))
    if len(sites) == 1:
        g.site = sites[0]
    stmt = services.runs_query(actor, site_id=f.site_id, template_id=f.template_id,
                               complete={"complete": True, "incomplete": False}.get(f.status),
                               day_from=f.date_from, day_to=f.date_to)
    stmt = (stmt.join(Site, Site.id == ChecklistRun.site_id)
            .join(TemplateVersion, TemplateVersion.id == ChecklistRun.version_id)
            .join(ChecklistTemplate, ChecklistTemplate.id == TemplateVersion.template_id))
    order = sort_clause({"day": ChecklistRun.day, "started": ChecklistRun.started_at, "site": Site.name,
                         "checklist": _kind_order(), "completed": ChecklistRun.completed_at}, "-started")
    page = paginate(stmt.order_by(None).order_by(order, ChecklistRun.started_at.desc(), ChecklistRun.id.desc())
                    .options(selectinload(ChecklistRun.version).selectinload(TemplateVersion.template)))
    run_ids = [r.id for r in page.items]
    answered = _grouped(Answer.run_id, run_ids, counted=Answer.item_id.distinct())
    totals = _grouped(TemplateItem.version_id, {r.version_id for r in page.items})
    actions = _grouped(CorrectiveAction.run_id, run_ids, CorrectiveAction.closed_at.is_(None))
    room_ids = {r.room_id for r in page.items if r.room_id}
    rooms = dict(db.session.execute(select(Room.id, Room.name).where(Room.id.in_(room_ids))).all()) \
        if room_ids else {}
    names = _names(r.started_by_id for r in page.items)
    by_site = {s.id: s for s in sites}
    rows = [RunRow(r, by_site[r.site_id], rooms.get(r.room_id, ""), names.get(r.started_by_id, ""),
                   answered.get(r.id, 0), totals.get(r.version_id, 0), actions.get(r.id, 0)) for r in page.items]
    templates = [(t.id, in_lang(services.current_version(t).title)) for t in db.session.scalars(
        services.templates_query(actor).order_by(None).order_by(_kind_order(), ChecklistTemplate.id)
        .options(selectinload(ChecklistTemplate.versions)))]
    return render_template("checklists_admin/runs.html", page=page, rows=rows, f=f, sites=sites,
                           templates=templates, many_sites=len(sites) > 1)


@dataclass(frozen=True)
class AnswerView:
    answer: Answer
    text: str
    by_name: str
    file_url: str | None
    out_of_limits: bool


@dataclass(frozen=True)
class Correction:
    old: AnswerView
    new: AnswerView


@dataclass(frozen=True)
class ItemRow:
    item: TemplateItem
    current: AnswerView | None
    corrections: list[Correction]   # oldest first; each old answer with the one that corrected it


def _spec(item: TemplateItem) -> rules.ItemSpec:
    return rules.ItemSpec(item.kind, item.is_required, item.note_when, item.min_value, item.max_value,
                          tuple(item.choices or ()))


def _value_text(item: TemplateItem, value) -> str:
    if item.kind == "tick":
        return _("Done") if value else "—"
    if item.kind == "yes_no":
        return _("Yes") if value is True else _("No") if value is False else str(value)
    if item.kind == "number":
        return f"{value} {item.unit}".strip()
    if item.kind == "photo":
        return _("Photo")
    if item.kind == "signature":
        return _("Signature")
    return str(value)


def _answer_view(run: ChecklistRun, answer: Answer, names: dict[int, str]) -> AnswerView:
    item = answer.item
    try:
        out = rules.is_out_of_limits(_spec(item), answer.value)
    except (ArithmeticError, ValueError):
        out = False
    name = answer.file_path or ""
    file_url = url_for("checklists_admin.run_file", run_id=run.id, name=name) if FILE_NAME.fullmatch(name) else None
    return AnswerView(answer, _value_text(item, answer.value), names.get(answer.answered_by_id, ""), file_url, out)


def _item_rows(run: ChecklistRun) -> tuple[list[ItemRow], list[tuple[TemplateItem, Correction]]]:
    """Each item with its answer in force and the answers it replaced; and every correction, oldest first."""
    answers = list(run.answers)
    names = _names(a.answered_by_id for a in answers)
    views = {a.id: _answer_view(run, a, names) for a in answers}
    in_force = {a.id for a in services.current_answers(run).values()}
    corrections = {a.amends_id: Correction(views[a.amends_id], views[a.id])
                   for a in answers if a.amends_id in views}
    rows, history = [], []
    for item in run.version.items:
        mine = [a for a in answers if a.item_id == item.id]
        current = next((views[a.id] for a in mine if a.id in in_force), None)
        chain = [corrections[a.id] for a in mine if a.id in corrections]
        rows.append(ItemRow(item, current, chain))
        history.extend((item, c) for c in chain)
    history.sort(key=lambda pair: (pair[1].new.answer.answered_at, pair[1].new.answer.id))
    return rows, history


@bp.get("/checklist-runs/<int:run_id>")
@requires("checklists.read")
def show_run(run_id: int):
    actor = current_actor()
    run = services.get_run(actor, run_id)
    site = db.session.get(Site, run.site_id)
    g.site = site
    rows, history = _item_rows(run)
    actions = _action_rows(list(db.session.scalars(select(CorrectiveAction).where(
        CorrectiveAction.run_id == run.id).order_by(CorrectiveAction.id))), {site.id: site})
    room = db.session.get(Room, run.room_id) if run.room_id else None
    names = _names([run.started_by_id])
    return render_template(
        "checklists_admin/run.html", run=run, site=site, room=room, version=run.version,
        template=run.version.template, rows=rows, history=history, actions=actions,
        started_by=names.get(run.started_by_id, ""), answered=sum(1 for r in rows if r.current),
        rule_titles=_rule_titles())


@bp.get("/checklist-runs/<int:run_id>/files/<name>")
@requires("checklists.read")
def run_file(run_id: int, name: str):
    """A photo or signature of a run in the reader's reach; only a stored name that an answer of this run
    points at (never a path), so that no other file of the server can be asked for."""
    actor = current_actor()
    run = services.get_run(actor, run_id)
    match = FILE_NAME.fullmatch(name)
    if match is None or not any(a.file_path == name for a in run.answers):
        abort(404)
    response = send_from_directory(Path(current_app.instance_path) / "uploads", name,
                                   mimetype=FILE_TYPES[match[1]], max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- corrective actions --------------------------------------------------------------------------

@dataclass(frozen=True)
class ActionRow:
    action: CorrectiveAction
    site: Site
    run_title: str
    run_day: date
    item: TemplateItem
    value_text: str
    overdue: bool
    assigned_to: str
    closed_by: str


def _action_rows(actions: list[CorrectiveAction], sites: dict[int, Site]) -> list[ActionRow]:
    now = utcnow()
    names = _names([a.assigned_to_id for a in actions] + [a.closed_by_id for a in actions])
    rows = []
    for a in actions:
        site = sites[a.site_id]
        # Overdue by the site's own calendar: due "tomorrow" in Jakarta is not due by London's date.
        overdue = a.closed_at is None and a.due_on < local_today(site.timezone, now)
        item = a.answer.item
        run = a.answer.run
        rows.append(ActionRow(a, site, in_lang(run.version.title), run.day, item, _value_text(item, a.answer.value),
                              overdue, names.get(a.assigned_to_id, ""), names.get(a.closed_by_id, "")))
    return rows


def _list_args() -> dict:
    return {k: v for k, v in request.args.items() if k in ("state", "site", "page", "sort")}


@bp.get("/corrective-actions")
@requires("checklists.read")
def list_actions():
    actor = current_actor()
    sites = _reach_sites(actor)
    state = request.args.get("state") if request.args.get("state") in ACTION_STATES else "open"
    site_id = _filter_site(actor)
    if len(sites) == 1:
        g.site = sites[0]
    stmt = services.actions_query(actor, open_only=state == "open", site_id=site_id)
    if state == "closed":
        stmt = stmt.where(CorrectiveAction.closed_at.is_not(None))
    # Open ones first, the earliest due at the top; then the closed ones.
    page = paginate(stmt.order_by(None).order_by(CorrectiveAction.closed_at.is_not(None), CorrectiveAction.due_on,
                                                 CorrectiveAction.id)
                    .options(selectinload(CorrectiveAction.answer).selectinload(Answer.item),
                             selectinload(CorrectiveAction.answer).selectinload(Answer.run)
                             .selectinload(ChecklistRun.version)))
    rows = _action_rows(page.items, {s.id: s for s in sites})
    return render_template("checklists_admin/actions.html", page=page, rows=rows, state=state, site_id=site_id,
                           sites=sites, many_sites=len(sites) > 1, args=_list_args())


def _action_page(actor: Actor, action: CorrectiveAction, form: CloseActionForm, status: int = 200):
    site = db.session.get(Site, action.site_id)
    g.site = site
    return render_template("checklists_admin/action.html", row=_action_rows([action], {site.id: site})[0],
                           form=form, rule_titles=_rule_titles(),
                           args=_list_args()), status


@bp.get("/corrective-actions/<int:action_id>")
@requires("checklists.read")
def show_action(action_id: int):
    actor = current_actor()
    return _action_page(actor, services.get_action(actor, action_id), CloseActionForm(formdata=None))


@bp.post("/corrective-actions/<int:action_id>/close")
@requires("checklists.manage")
def close_action(action_id: int):
    actor = current_actor()
    action = services.get_action(actor, action_id)
    form = CloseActionForm()
    outcome = submit(form, lambda: services.close_action(actor, action.id, form.note.data or "", utcnow()),
                     lambda _closed: flash_redirect(_("Corrective action closed."),
                                                    url_for("checklists_admin.list_actions", **_list_args())))
    if not isinstance(outcome, int):
        return outcome
    return _action_page(actor, action, form, outcome)
