"""Checklist templates, runs, answers, amendments and corrective actions: actor + values + now in, never committed."""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dataclasses import dataclass

import yaml
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, case, distinct, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from .. import validation as v
from ..labels import field_label
from ..auth.actor import Actor
from ..errors import Conflict, Duplicate, Invalid, NotFound, ServiceError
from ..extensions import db
from ..guidelines import load_pack
from ..sites.models import Room, Site
from ..timeutil import local_today
from . import rules
from .manage_forms import ITEM_KIND_LABELS, NOTE_WHEN_LABELS, TEMPLATE_KIND_LABELS  # a refused choice's words
from ..schedule import services as schedule
from .models import (
    ITEM_KINDS,
    NOTE_WHEN,
    TEMPLATE_KINDS,
    Answer,
    ChecklistRun,
    ChecklistTemplate,
    CorrectiveAction,
    TemplateItem,
    TemplateVersion,
)

DEFAULT_TEMPLATES = Path(__file__).with_name("default_templates.yaml")
ACTION_DUE_DAYS = 1
IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg"}
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
KEY_RE = re.compile(r"[a-z0-9][a-z0-9_]*")
MAX_ITEMS = 100
MAX_CHOICES = 30
LIMIT_MAX = Decimal("1e8")

ANSWER_MESSAGES = {
    "tick_expected": _l("tap to tick it"),
    "yes_no_expected": _l("answer yes or no"),
    "number_expected": _l("this is not a number"),
    "choice_expected": _l("choose one of: %(choices)s"),
    "text_expected": _l("write something"),
    "text_too_long": _l("at most %(max)s characters"),
    "file_expected": _l("a photo or signature is needed"),
    "unknown_kind": _l("this question cannot be answered"),
}


# --- templates ---------------------------------------------------------------------------------

def _limit(spec: dict, name: str) -> Decimal | None:
    raw = spec.get(name)
    if raw is None or str(raw).strip() == "":
        return None
    try:
        number = Decimal(str(raw).strip().replace(",", "."))
    except InvalidOperation:
        raise Invalid(_l("%(field)s must be a number", field=field_label(name)), field=name) from None
    # The column holds 10 digits with 2 decimals; a limit with more places would be rounded silently.
    if not number.is_finite() or abs(number) >= LIMIT_MAX or number != number.quantize(Decimal("0.01")):
        raise Invalid(_l("%(field)s must be a number below 100,000,000 with at most 2 decimals",
                         field=field_label(name)),
                      field=name)
    return number


def _choices(spec: dict) -> list[str] | None:
    raw = spec.get("choices")
    if raw in (None, "", []):
        return None
    values = [str(c).strip() for c in (raw.split(",") if isinstance(raw, str) else raw) if str(c).strip()]
    if len(values) > MAX_CHOICES or any(len(c) > 80 for c in values) or len(set(values)) != len(values):
        raise Invalid(_l("at most %(max)s different choices of at most 80 characters each", max=MAX_CHOICES),
                      field="choices")
    return values or None


def _item_row(position: int, spec: dict, keys: set[str]) -> TemplateItem:
    """One item, checked: a key unique in the version, limits only on numbers, choices only on choice items."""
    key = v.text(spec, "key", 40)
    if not KEY_RE.fullmatch(key):
        raise Invalid(_l("use lower-case letters, digits and _ only (for example fridge_temp)"), field="key")
    if key in keys:
        raise Invalid(_l("item keys must be unique (%(key)s)", key=key), field="key")
    keys.add(key)
    kind = v.choice(spec, "kind", ITEM_KINDS, labels=ITEM_KIND_LABELS)
    label = {"en": v.text(spec, "en", 300), "id": v.text(spec, "id", 300)}
    rule_id = str(spec.get("rule") or "").strip() or None
    if rule_id is not None and rule_id not in load_pack().rules:
        raise Invalid(_l("no guideline rule %(rule)s", rule=rule_id[:64]), field="rule")
    note_when = v.choice({"note_when": spec.get("note_when") or "never"}, "note_when", NOTE_WHEN,
                         labels=NOTE_WHEN_LABELS)
    min_value, max_value = _limit(spec, "min"), _limit(spec, "max")
    if kind != "number" and (min_value is not None or max_value is not None):
        raise Invalid(_l("limits apply to number questions only"), field="min" if min_value is not None else "max")
    if min_value is not None and max_value is not None and min_value > max_value:
        raise Invalid(_l("the minimum is above the maximum"), field="min")
    if note_when == "no" and kind != "yes_no":
        raise Invalid(_l("a note on “no” applies to yes/no questions only"), field="note_when")
    if note_when == "out_of_limits" and (kind != "number" or (min_value is None and max_value is None)):
        raise Invalid(_l("a note when out of limits needs a number question with a minimum or a maximum"),
                      field="note_when")
    choices = _choices(spec)
    if kind == "choice" and not choices:
        raise Invalid(_l("a choice item needs its choices (%(key)s)", key=key), field="choices")
    if kind != "choice" and choices:
        raise Invalid(_l("choices apply to choice questions only"), field="choices")
    return TemplateItem(
        position=position, key=key, kind=kind, label=label, rule_id=rule_id,
        is_required=spec.get("required", True) not in (False, "false", "0"), note_when=note_when,
        min_value=min_value, max_value=max_value, unit=v.text(spec, "unit", 16, required=False), choices=choices)


def _item_rows(items: list[dict]) -> list[TemplateItem]:
    """The items of a version. A refusal names its row and field ("items.2.en"), so a form or an API client
    can show it where it belongs."""
    if not items:
        raise Invalid(_l("a checklist needs at least one item"), field="items")
    if len(items) > MAX_ITEMS:
        raise Invalid(_l("a checklist has at most %(max)s items", max=MAX_ITEMS), field="items")
    rows, keys = [], set()
    for index, spec in enumerate(items):
        if not isinstance(spec, dict):
            raise Invalid(_l("each item must be an object"), field=f"items.{index}")
        try:
            rows.append(_item_row(index + 1, spec, keys))
        except ServiceError as exc:
            exc.field = f"items.{index}.{exc.field}"
            raise
    return rows


def _title(data: dict) -> dict:
    title = data.get("title")
    title = title if isinstance(title, dict) else {}
    try:
        return {"en": v.text(title, "en", 200), "id": v.text(title, "id", 200)}
    except ServiceError as exc:
        exc.field = f"title.{exc.field}"
        raise


def create_template(organisation_id: int, data: dict, user_id: int | None, now: datetime) -> ChecklistTemplate:
    """A template with its first version (from the default file, the admin screen or the API)."""
    key = v.text(data, "key", 40)
    if not KEY_RE.fullmatch(key):
        raise Invalid(_l("use lower-case letters, digits and _ only (for example fridge_temp)"), field="key")
    if existing := db.session.scalar(select(ChecklistTemplate.id).where(
            ChecklistTemplate.organisation_id == organisation_id, ChecklistTemplate.key == key)):
        raise Duplicate(_l("a checklist with this key already exists"), existing, field="key")  # read org-wide
    template = ChecklistTemplate(organisation_id=organisation_id, key=key,
                                 kind=v.choice(data, "kind", TEMPLATE_KINDS, labels=TEMPLATE_KIND_LABELS),
                                 created_at=now)
    version = TemplateVersion(number=1, title=_title(data), created_by_id=user_id, created_at=now,
                              items=_item_rows(data.get("items") or []))
    template.versions.append(version)
    db.session.add(template)
    db.session.flush()
    return template


def load_default_templates(organisation_id: int, now: datetime) -> int:
    """Add the default checklists an organisation does not have yet; returns how many were added."""
    with open(DEFAULT_TEMPLATES, encoding="utf-8") as fh:
        specs = yaml.safe_load(fh)["templates"]
    added = 0
    for spec in specs:
        exists = db.session.scalar(select(ChecklistTemplate.id).where(
            ChecklistTemplate.organisation_id == organisation_id, ChecklistTemplate.key == spec["key"]))
        if not exists:
            create_template(organisation_id, spec, None, now)
            added += 1
    return added


def templates_query(actor: Actor) -> Select:
    actor.require("checklists.read")
    return select(ChecklistTemplate).where(ChecklistTemplate.organisation_id == actor.organisation_id,
                                           ChecklistTemplate.is_active.is_(True)).order_by(ChecklistTemplate.id)


def get_template(actor: Actor, template_id: int) -> ChecklistTemplate:
    actor.require("checklists.read")
    row = db.session.get(ChecklistTemplate, template_id)
    if row is None or row.organisation_id != actor.organisation_id:
        raise NotFound(_l("no such checklist"), field="template_id")
    return row


def current_version(template: ChecklistTemplate) -> TemplateVersion:
    return template.versions[-1]


def edit_template(actor: Actor, template_id: int, data: dict, now: datetime) -> TemplateVersion:
    """Change a template's title and items. A version a run has used is frozen: the edit makes a new version."""
    actor.require("checklists.manage")
    template = get_template(actor, template_id)
    latest = current_version(template)
    title = _title(data)
    items = _item_rows(data.get("items") or [])
    if latest.is_frozen:
        version = TemplateVersion(number=latest.number + 1, title=title, created_by_id=actor.user_id,
                                  created_at=now, items=items)
        template.versions.append(version)
    else:
        version = latest
        for old in list(version.items):
            db.session.delete(old)
        db.session.flush()
        version.title, version.items = title, items
    db.session.flush()
    return version


# --- runs and answers --------------------------------------------------------------------------

RUN_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _run_key(data: dict) -> str | None:
    raw = data.get("idempotency_key")
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or not RUN_KEY.fullmatch(raw):
        raise Invalid(_l("idempotency_key must be 16 to 64 letters, digits, _ or -"), field="idempotency_key")
    return raw


def _replayed_run(key: str, actor: Actor, site_id: int, template_id: int) -> ChecklistRun | None:
    existing = db.session.scalar(select(ChecklistRun).where(ChecklistRun.idempotency_key == key))
    if existing is None:
        return None
    if (existing.site_id != site_id or existing.started_by_id != actor.user_id
            or existing.version.template_id != template_id):
        raise Duplicate(_l("this idempotency key was used for another checklist run"),
                        existing.id if existing.site_id in actor.site_ids else None, field="idempotency_key")
    return existing


def start_run(actor: Actor, data: dict, now: datetime) -> ChecklistRun:
    """Start today's run of a checklist for a site and room (or for a treatment); its version is frozen.
    With an idempotency key, a replay by the same person for the same site and checklist gets the first run."""
    actor.require("checklists.answer")
    key = _run_key(data)
    site_id = v.ident(data, "site_id")
    actor.require_site(site_id)
    template = get_template(actor, v.ident(data, "template_id"))
    room_id = data.get("room_id")
    if room_id not in (None, ""):
        room = db.session.get(Room, int(room_id)) if str(room_id).isdigit() else None
        if room is None or room.site_id != site_id:
            raise NotFound(_l("no such room"), field="room_id")
        room_id = room.id
    else:
        room_id = None
    treatment_id = data.get("treatment_id")
    if treatment_id not in (None, ""):
        from ..treatments.services import get_treatment

        treatment = get_treatment(actor, v.ident(data, "treatment_id"))
        if treatment.site_id != site_id:
            raise NotFound(_l("no such treatment"), field="treatment_id")
        treatment_id = treatment.id
        if template.kind == "before_client":  # answered once for a client: the treatment's one run
            from ..treatments.screening import run_for

            if (existing := run_for(treatment.id)) is not None:
                return existing
            if treatment.status != "open":
                raise Conflict(_l("this treatment is %(status)s", status=treatment.status), field="treatment_id")
    else:
        treatment_id = None
    if key is not None and (replay := _replayed_run(key, actor, site_id, template.id)) is not None:
        return replay
    version = current_version(template)
    version.is_frozen = True
    site = db.session.get(Site, site_id)
    run = ChecklistRun(site_id=site_id, room_id=room_id, version_id=version.id, treatment_id=treatment_id,
                       day=local_today(site.timezone, now), started_by_id=actor.user_id, started_at=now,
                       idempotency_key=key)
    if key is None:
        db.session.add(run)
        db.session.flush()
        return run
    try:
        with db.session.begin_nested():
            db.session.add(run)
    except IntegrityError:  # the same key arrived twice at once: the first run stands
        if (winner := _replayed_run(key, actor, site_id, template.id)) is None:
            raise
        return winner
    return run


def get_run(actor: Actor, run_id: int, options=()) -> ChecklistRun:
    actor.require("checklists.read")
    run = db.session.get(ChecklistRun, run_id, options=options)
    if run is None or run.site_id not in actor.site_ids:
        raise NotFound(_l("no such checklist run"), field="run_id")
    return run


def runs_query(actor: Actor, site_id: int | None = None, template_id: int | None = None,
               complete: bool | None = None, day_from=None, day_to=None) -> Select:
    actor.require("checklists.read")
    stmt = select(ChecklistRun).where(ChecklistRun.site_id.in_(actor.site_ids))
    if site_id:
        stmt = stmt.where(ChecklistRun.site_id == site_id)
    if template_id:
        stmt = stmt.where(ChecklistRun.version_id.in_(
            select(TemplateVersion.id).where(TemplateVersion.template_id == template_id)))
    if complete is not None:
        stmt = stmt.where(ChecklistRun.completed_at.is_not(None) if complete else ChecklistRun.completed_at.is_(None))
    if day_from:
        stmt = stmt.where(ChecklistRun.day >= day_from)
    if day_to:
        stmt = stmt.where(ChecklistRun.day <= day_to)
    return stmt.order_by(ChecklistRun.started_at.desc(), ChecklistRun.id.desc())


@dataclass(frozen=True)
class DayCounts:
    """One checklist's runs at a site on a local day, counted in SQL."""
    started: int              # runs of the day
    completed: int            # … of them complete
    done_in_window: bool      # a run of the window (the day and the days before it asked for) is complete


def day_counts(actor: Actor, site_id: int, day, window_from) -> dict[int, DayCounts]:
    """Template id -> its runs of `day` at the site, and whether one in [window_from, day] is complete: one
    grouped query, whatever the number of runs."""
    on_day = ChecklistRun.day == day
    done = ChecklistRun.completed_at.is_not(None)
    rows = db.session.execute(
        select(TemplateVersion.template_id, func.count().filter(on_day), func.count().filter(on_day & done),
               func.count().filter(done))
        .join(TemplateVersion, TemplateVersion.id == ChecklistRun.version_id)
        .where(ChecklistRun.id.in_(runs_query(actor, site_id=site_id, day_from=window_from, day_to=day)
                                   .with_only_columns(ChecklistRun.id).order_by(None)))
        .group_by(TemplateVersion.template_id)).all()
    return {t: DayCounts(started or 0, completed or 0, bool(window_done))
            for t, started, completed, window_done in rows}


def latest_runs_of_day(actor: Actor, site_id: int, day, per_template: int) -> list[tuple[ChecklistRun, int]]:
    """(run, template id): the `per_template` newest runs of each checklist at the site on the day, and each
    checklist's newest open run even when older; newest first. One query, whatever the number of runs."""
    newest = (ChecklistRun.started_at.desc(), ChecklistRun.id.desc())
    is_open = ChecklistRun.completed_at.is_(None)
    ranked = (select(ChecklistRun.id, is_open.label("is_open"),
                     func.row_number().over(partition_by=TemplateVersion.template_id, order_by=newest).label("n"),
                     func.row_number().over(partition_by=(TemplateVersion.template_id, is_open),
                                            order_by=newest).label("o"))
              .join(TemplateVersion, TemplateVersion.id == ChecklistRun.version_id)
              .where(ChecklistRun.id.in_(runs_query(actor, site_id=site_id, day_from=day, day_to=day)
                                         .with_only_columns(ChecklistRun.id).order_by(None)))
              .subquery())
    wanted = select(ranked.c.id).where(or_(ranked.c.n <= per_template, and_(ranked.c.is_open, ranked.c.o == 1)))
    return [(run, template_id) for run, template_id in db.session.execute(
        select(ChecklistRun, TemplateVersion.template_id)
        .join(TemplateVersion, TemplateVersion.id == ChecklistRun.version_id)
        .where(ChecklistRun.id.in_(wanted)).order_by(*newest)).all()]


def progress_of(runs: list[ChecklistRun]) -> dict[int, tuple[int, int]]:
    """Run id -> (answered, total) of its required items (every item when none is required), as
    rules.progress counts them, in two grouped queries whatever the number of runs and answers."""
    if not runs:
        return {}
    versions = {r.version_id for r in runs}
    sizes = {v: (required, total) for v, required, total in db.session.execute(
        select(TemplateItem.version_id, func.count().filter(TemplateItem.is_required), func.count())
        .where(TemplateItem.version_id.in_(versions)).group_by(TemplateItem.version_id))}
    # An amended answer's item is the item of the answer that replaced it: distinct items are the items answered.
    answered = {run_id: (required, every) for run_id, required, every in db.session.execute(
        select(Answer.run_id,
               func.count(distinct(case((TemplateItem.is_required, Answer.item_id)))),
               func.count(distinct(Answer.item_id)))
        .join(TemplateItem, TemplateItem.id == Answer.item_id)
        .where(Answer.run_id.in_([r.id for r in runs])).group_by(Answer.run_id))}
    out = {}
    for run in runs:
        required, total = sizes.get(run.version_id, (0, 0))
        done_required, done_every = answered.get(run.id, (0, 0))
        out[run.id] = (done_required, required) if required else (done_every, total)
    return out


def current_answers(run: ChecklistRun) -> dict[int, Answer]:
    """The answer in force for each item: the last of each chain of amendments."""
    amended = {a.amends_id for a in run.answers if a.amends_id}
    return {a.item_id: a for a in run.answers if a.id not in amended}


def _spec(item: TemplateItem) -> rules.ItemSpec:
    return rules.ItemSpec(item.kind, item.is_required, item.note_when, item.min_value, item.max_value,
                          tuple(item.choices or ()))


def _key(data: dict) -> str:
    key = v.text(data, "idempotency_key", 64)
    if len(key) < 8:
        raise Invalid(_l("idempotency_key must be at least 8 characters"), field="idempotency_key")
    return key


def _replayed(key: str, run: ChecklistRun, item_id: int) -> Answer | None:
    existing = db.session.scalar(select(Answer).where(Answer.idempotency_key == key))
    if existing is None:
        return None
    if existing.run_id != run.id or existing.item_id != item_id:
        raise Duplicate(_l("this idempotency key was used for another answer"),
                        existing.id if existing.run.site_id == run.site_id else None, field="idempotency_key")
    return existing


def _read(item: TemplateItem, data: dict) -> tuple[Any, str, bool]:
    try:
        value = rules.read_answer(_spec(item), data.get("value"))
    except rules.AnswerError as exc:
        raise Invalid(_l("%(problem)s", problem=ANSWER_MESSAGES[exc.code] % exc.values if exc.values
                         else ANSWER_MESSAGES[exc.code]), field="value") from None
    attention = rules.needs_attention(_spec(item), value)
    note = v.text(data, "note", 2000, required=attention)
    return value, note, attention


GIVEN_MESSAGES = {
    "future": _l("the time this answer was given is in the future: check the tablet's clock"),
    "before_run": _l("the time this answer was given is before the checklist was started"),
}


def _given_at(data: dict, run: ChecklistRun, now: datetime) -> datetime:
    """When the answer was given: `given_at` (ISO 8601 with an offset) if the tablet sent it (an answer kept
    offline and sent later), else now; refused in the future or before the run started."""
    raw = data.get("given_at")
    if raw in (None, ""):
        return now
    try:
        given = datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(_l("the time the answer was given must be a date and time (ISO 8601)"), field="given_at") from None
    if given.tzinfo is None:
        raise Invalid(_l("the time the answer was given needs a time zone offset"), field="given_at")
    problem = rules.given_time_problem(given, run.started_at, now)
    if problem:
        raise Invalid(GIVEN_MESSAGES[problem], field="given_at")
    return given


def run_options() -> list:
    """Loader options for a run about to be answered and shown: the run with its version, the version's items,
    the run's answers: three statements, instead of a lazy load each time one of them is first touched."""
    return [joinedload(ChecklistRun.version).selectinload(TemplateVersion.items),
            selectinload(ChecklistRun.answers)]


def _replayed_in_run(key: str, run: ChecklistRun, item_id: int) -> Answer | None:
    """The answer of the run (already loaded) stored under this key, as _replayed tells it, without a query; None
    when the key is not one of the run's (it may still be another run's: the unique key refuses it on insert)."""
    existing = next((a for a in run.answers if a.idempotency_key == key), None)
    if existing is not None and existing.item_id != item_id:
        raise Duplicate(_l("this idempotency key was used for another answer"), existing.id,
                        field="idempotency_key")
    return existing


def answer(actor: Actor, run_id: int, data: dict, now: datetime, file_path: str | None = None) -> Answer:
    """Store one answer the moment it is given. The tablet's idempotency key makes a double tap or a retry
    store it once; a second answer to the same item needs an amendment with a reason."""
    actor.require("checklists.answer")
    run = get_run(actor, run_id)
    item = db.session.get(TemplateItem, v.ident(data, "item_id"))
    if item is None or item.version_id != run.version_id:
        raise NotFound(_l("this question is not part of this checklist"), field="item_id")
    key = _key(data)
    # A replay of one of this run's answers is told from the run's answers; a key of another run is refused by
    # the unique key when the row is inserted (and told then, below), or here when the item is answered already.
    replay = _replayed_in_run(key, run, item.id)
    if replay is not None:
        return replay
    if item.id in current_answers(run):
        if (replay := _replayed(key, run, item.id)) is not None:
            return replay
        raise Conflict(_l("already answered; correct it with a reason instead"), field="item_id")
    if file_path is not None:
        data = {**data, "value": file_path}
    value, note, attention = _read(item, data)
    given = _given_at(data, run, now)
    row = Answer(run_id=run.id, item_id=item.id, value=value, note=note, file_path=file_path, idempotency_key=key,
                 answered_by_id=actor.user_id, answered_at=given, received_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # the same key arrived twice at once: the first one stands
        db.session.expire(run)
        return _replayed(key, run, item.id)
    _after_answer(run, item, row, attention, note, now)
    return row


def amend(actor: Actor, answer_id: int, data: dict, now: datetime, file_path: str | None = None) -> Answer:
    """A correction: a new answer pointing at the one it amends, with the reason and its author."""
    actor.require("checklists.answer")
    old = db.session.get(Answer, answer_id)
    if old is None:
        raise NotFound(_l("no such answer"), field="answer_id")
    run = get_run(actor, old.run_id)
    key = _key(data)
    replay = _replayed(key, run, old.item_id)
    if replay is not None:
        return replay
    if old.id not in {a.id for a in current_answers(run).values()}:
        raise Conflict(_l("this answer was already corrected; correct the latest one"), field="answer_id")
    reason = v.text(data, "reason", 2000)
    if file_path is not None:
        data = {**data, "value": file_path}
    value, note, attention = _read(old.item, data)
    row = Answer(run_id=run.id, item_id=old.item_id, value=value, note=note, file_path=file_path,
                 idempotency_key=key, amends_id=old.id, amend_reason=reason, answered_by_id=actor.user_id,
                 answered_at=now, received_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        raise Conflict(_l("this answer was already corrected; correct the latest one"), field="answer_id") from None
    _after_answer(run, old.item, row, attention, note, now)
    return row


def _after_answer(run: ChecklistRun, item: TemplateItem, row: Answer, attention: bool, note: str,
                  now: datetime) -> None:
    if attention:
        site = db.session.get(Site, run.site_id)
        db.session.add(CorrectiveAction(
            site_id=run.site_id, run_id=run.id, answer_id=row.id, rule_id=item.rule_id,
            what=f"{item.label.get('en', item.key)}: {row.value} — {note}",
            due_on=local_today(site.timezone, now) + timedelta(days=ACTION_DUE_DAYS), opened_at=now))
    db.session.flush()
    # The run's answers read again, the run locked first: two answers to its last items at once are told in
    # turn, so the second sees the first and completes the run. (The audit chain's head, which used to serialise
    # them, is now held only at the commit.)
    db.session.execute(select(ChecklistRun.id).where(ChecklistRun.id == run.id).with_for_update())
    db.session.expire(run, ["answers"])
    required = [i.id for i in run.version.items if i.is_required]
    if run.completed_at is None and rules.is_complete(required, current_answers(run)):
        run.completed_at = now
        if run.treatment_id is None:  # the day's opening or closing checklist does its obligation
            schedule.checklist_completed(run.site_id, run.version.template.kind, now, record=f"checklist_run:{run.id}",
                                         day=run.day)
    if run.treatment_id is not None:  # a treatment's before-client run is its screening, which the gate reads
        from ..treatments.screening import after_answer

        after_answer(run, current_answers(run), now)
    db.session.flush()


def store_upload(folder: Path, content: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """Keep a photo or signature (PNG or JPEG, by its first bytes, not its name) and return its file name."""
    if not content:
        raise Invalid(_l("the file is empty"), field="file")
    if len(content) > max_bytes:
        raise Invalid(_l("the file is larger than %(mb)s MB", mb=max_bytes // (1024 * 1024)), field="file")
    kind = next((ext for magic, ext in IMAGE_SIGNATURES.items() if content.startswith(magic)), None)
    if kind is None:
        raise Invalid(_l("only PNG or JPEG images are accepted"), field="file")
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{kind}"
    (folder / name).write_bytes(content)
    return name


# --- corrective actions ------------------------------------------------------------------------

def actions_query(actor: Actor, open_only: bool = True, site_id: int | None = None) -> Select:
    actor.require("checklists.read")
    stmt = select(CorrectiveAction).where(CorrectiveAction.site_id.in_(actor.site_ids))
    if site_id:
        stmt = stmt.where(CorrectiveAction.site_id == site_id)
    if open_only:
        stmt = stmt.where(CorrectiveAction.closed_at.is_(None))
    return stmt.order_by(CorrectiveAction.due_on, CorrectiveAction.id)


def get_action(actor: Actor, action_id: int) -> CorrectiveAction:
    actor.require("checklists.read")
    row = db.session.get(CorrectiveAction, action_id)
    if row is None or row.site_id not in actor.site_ids:
        raise NotFound(_l("no such corrective action"), field="action_id")
    return row


def close_action(actor: Actor, action_id: int, note: str, now: datetime) -> CorrectiveAction:
    """A manager closes a corrective action with a note on what was done."""
    actor.require("checklists.manage")
    row = get_action(actor, action_id)
    if row.closed_at is not None:
        raise Conflict(_l("this corrective action is already closed"), field="action_id")
    row.close_note = v.text({"note": note}, "note", 2000)
    row.closed_at, row.closed_by_id = now, actor.user_id
    db.session.flush()
    schedule.subject_closed("corrective_action", row.id, now)
    return row


def open_action_count(actor: Actor, site_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(CorrectiveAction).where(
        CorrectiveAction.site_id == site_id, CorrectiveAction.closed_at.is_(None)))
