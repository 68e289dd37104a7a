"""Checklists over JSON: read input → one service call → commit → respond.

Answers are appended, never edited: a tablet (or any client) makes an idempotency key per answer, so that a retry
after a lost connection stores nothing new and gets the first answer back (200 instead of 201). A wrong answer is
corrected by a new one with a reason (POST /answers/{answer_id}/amend). Starting a run takes an optional
idempotency key too: a retry gets the run started the first time (201 again, with the same run). A site's API key
(a data logger) neither reads nor answers checklists (403): people fill them in.
"""
from __future__ import annotations


from flask.views import MethodView
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..auth.actor import Actor
from ..checklists import services
from ..checklists.models import Answer, ChecklistRun, ChecklistTemplate, CorrectiveAction, TemplateItem, TemplateVersion
from ..errors import Invalid
from ..extensions import db
from ..timeutil import utcnow
from .auth import api_actor, authenticate_request, error_docs
from .blueprint import Blueprint
from .checklists_schemas import (
    ActionQuerySchema,
    AmendInputSchema,
    AnswerInputSchema,
    AnswerSchema,
    ChecklistRunDetailSchema,
    ChecklistRunSchema,
    ChecklistTemplateDetailSchema,
    ChecklistTemplateSchema,
    CloseActionInputSchema,
    CorrectiveActionSchema,
    RunInputSchema,
    RunQuerySchema,
)
from .sites import PAGE, _created, _page
from .sterilisation import _With

blp = Blueprint("api_checklists", __name__, url_prefix="/api/v1", description=(
    "Checklist templates (versioned, in English and Indonesian), runs, answers with idempotency keys, corrections "
    "and corrective actions. A site's API key reads and answers none of them (403)."))

TAGS = [
    {"name": "checklists", "description": "Checklist templates; every version a run has used is kept as it was"},
    {"name": "checklist runs", "description": "Runs of a checklist at a site; answers appended once per "
                                              "idempotency key, corrected by a new answer with a reason"},
    {"name": "corrective actions", "description": "Opened by a \"no\" or an out-of-limit answer that needs a "
                                                  "note; closed by a manager with what was done"},
]
FILE_KINDS = ("photo", "signature")
REPLAY = "A retry with an idempotency key already used for this answer: nothing new is stored"


blp.before_request(authenticate_request)
_errors = error_docs(blp)


def _replay(func):
    return blp.alt_response(200, schema=AnswerSchema, description=REPLAY)(func)


def _is_stored(key: str) -> bool:
    # A replay answers 200. (Two requests with one key at the same instant: both may answer 201 with the same
    # answer; the service still stores it once.)
    return db.session.scalar(select(Answer.id).where(Answer.idempotency_key == key)) is not None


def _refuse_files(actor: Actor, run: ChecklistRun, item: TemplateItem | None) -> None:
    """A photo or signature is taken on the tablet, which uploads the picture; JSON carries none."""
    if item is not None and item.version_id == run.version_id and item.kind in FILE_KINDS:
        raise Invalid(_l("a photo or signature is taken on the tablet"), field="value")


def _run_detail(run: ChecklistRun) -> _With:
    current = services.current_answers(run)
    positions = {i.id: i.position for i in run.version.items}
    actions = list(db.session.scalars(select(CorrectiveAction).where(CorrectiveAction.run_id == run.id)
                                      .order_by(CorrectiveAction.id)))
    return _With(run, answers=sorted(current.values(), key=lambda a: positions.get(a.item_id, 0)),
                 history=list(run.answers), corrective_actions=actions)


# --- templates -----------------------------------------------------------------------------------

@blp.route("/checklist-templates", tags=["checklists"])
class ChecklistTemplates(MethodView):
    @blp.response(200, ChecklistTemplateSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters):
        """List the organisation's checklists with their current version."""
        stmt = services.templates_query(api_actor()).options(
            selectinload(ChecklistTemplate.versions).selectinload(TemplateVersion.items))
        return _page(stmt, pagination_parameters)


@blp.route("/checklist-templates/<int:template_id>", tags=["checklists"])
class ChecklistTemplateItem(MethodView):
    @blp.response(200, ChecklistTemplateDetailSchema)
    @_errors(403, 404)
    def get(self, template_id):
        """One checklist: its current version with the items, and the list of its versions."""
        template = services.get_template(api_actor(), template_id)
        return _With(template, version=services.current_version(template), versions=list(template.versions))


# --- runs ----------------------------------------------------------------------------------------

@blp.route("/checklist-runs", tags=["checklist runs"])
class ChecklistRuns(MethodView):
    @blp.arguments(RunQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, ChecklistRunSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403, 404)
    def get(self, pagination_parameters, site_id, template_id, complete, date_from, date_to):
        """List the runs of the caller's sites, newest first; days are the sites' local dates."""
        actor = api_actor()
        if template_id is not None:
            services.get_template(actor, template_id)  # another organisation's checklist: 404
        stmt = services.runs_query(actor, site_id=site_id, template_id=template_id, complete=complete,
                                   day_from=date_from, day_to=date_to)
        return _page(stmt.options(selectinload(ChecklistRun.version)), pagination_parameters)

    @blp.arguments(RunInputSchema)
    @blp.response(201, ChecklistRunSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data):
        """Start a run of a checklist's current version at a site (people only); the version is frozen.

        With an idempotency_key, a replay (same key, person, site and checklist) starts nothing new and answers
        201 with the run started the first time; the key of another run answers 409."""
        run = services.start_run(api_actor(), data, utcnow())
        db.session.commit()
        return _created(run, ".ChecklistRunItem", run_id=run.id)


@blp.route("/checklist-runs/<int:run_id>", tags=["checklist runs"])
class ChecklistRunItem(MethodView):
    @blp.response(200, ChecklistRunDetailSchema)
    @_errors(403, 404)
    def get(self, run_id):
        """One run: the items of its own version, the answer in force for each, every answer and correction."""
        return _run_detail(services.get_run(api_actor(), run_id))


@blp.route("/checklist-runs/<int:run_id>/answers", tags=["checklist runs"])
class ChecklistRunAnswers(MethodView):
    @blp.arguments(AnswerInputSchema)
    @blp.response(201, AnswerSchema)
    @_replay
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, run_id):
        """Answer one item (people only). 201 with the answer; 200 with the same answer when the idempotency key
        was already used for it (nothing new is stored). A "no" or an out-of-limit number on an item that asks
        for it needs a note and opens a corrective action. An item answered already is corrected through
        /answers/{answer_id}/amend (409 here)."""
        actor = api_actor()
        actor.require("checklists.answer")
        run = services.get_run(actor, run_id)
        _refuse_files(actor, run, db.session.get(TemplateItem, data["item_id"]))
        replay = _is_stored(data["idempotency_key"])
        row = services.answer(actor, run.id, data, utcnow())
        db.session.commit()
        if replay:
            return row, 200
        return _created(row, ".ChecklistRunItem", run_id=run.id)


@blp.route("/answers/<int:answer_id>/amend", tags=["checklist runs"])
class AnswerAmend(MethodView):
    @blp.arguments(AmendInputSchema)
    @blp.response(201, AnswerSchema)
    @_replay
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, answer_id):
        """Correct the answer in force with a new one and the reason (people only); the old one is kept.
        200 for a retry with the same idempotency key."""
        actor = api_actor()
        actor.require("checklists.answer")
        old = db.session.get(Answer, answer_id)
        if old is not None and old.run.site_id in actor.site_ids:
            _refuse_files(actor, old.run, old.item)
        replay = _is_stored(data["idempotency_key"])
        row = services.amend(actor, answer_id, data, utcnow())
        db.session.commit()
        if replay:
            return row, 200
        return _created(row, ".ChecklistRunItem", run_id=row.run_id)


# --- corrective actions --------------------------------------------------------------------------

@blp.route("/corrective-actions", tags=["corrective actions"])
class CorrectiveActions(MethodView):
    @blp.arguments(ActionQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, CorrectiveActionSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, site_id, state):
        """List the corrective actions of the caller's sites: open ones first, the earliest due first."""
        stmt = services.actions_query(api_actor(), open_only=state == "open", site_id=site_id)
        if state == "closed":
            stmt = stmt.where(CorrectiveAction.closed_at.is_not(None))
        stmt = stmt.order_by(None).order_by(CorrectiveAction.closed_at.is_not(None), CorrectiveAction.due_on,
                                            CorrectiveAction.id)
        return _page(stmt, pagination_parameters)


@blp.route("/corrective-actions/<int:action_id>/close", tags=["corrective actions"])
class CorrectiveActionClose(MethodView):
    @blp.arguments(CloseActionInputSchema)
    @blp.response(200, CorrectiveActionSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, action_id):
        """Close a corrective action with what was done (managers, admins)."""
        row = services.close_action(api_actor(), action_id, data["note"], utcnow())
        db.session.commit()
        return row
