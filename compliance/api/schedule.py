"""Obligations (what falls due when, for which subject, and who answers for it) and the email outbox over JSON:
read input → one service call → commit → respond.

Times come twice: in UTC (`next_due_at`, `overdue_at`) and in the site's own zone with its offset
(`next_due_local`, `overdue_local`): the same instant. `status` is what is stored (ok, overdue, paused, ended);
`state` is how a person reads it now (ok, due, overdue, paused, snoozed, ended). A manager pauses, resumes and
snoozes an obligation, always with a reason. A site's API key (a data logger) reads nothing here (403): neither
obligations nor emails.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy.orm import defer, selectinload

from ..extensions import db
from ..schedule import services, subjects
from ..schedule.labels import kind_label
from ..schedule.models import (
    ACTIONS,
    MESSAGE_KINDS,
    OBLIGATION_STATUSES,
    OCCURRENCE_STATES,
    OUTBOX_STATES,
    Obligation,
    OutboxMessage,
)
from ..timeutil import utcnow
from .auth import api_actor, authenticate_request, error_docs
from .blueprint import Blueprint
from .schemas import BoundedSchema, InputSchema, UTCDateTimeField, _text
from .sites import PAGE, _page
from .sterilisation import _With

blp = Blueprint("api_schedule", __name__, url_prefix="/api/v1", description=(
    "Obligations (what falls due when, by subject, with who answers for it), their history and findings; a "
    "manager's pause, resume and snooze; the email outbox. A site's API key reads nothing here (403)."))

TAGS = [
    {"name": "obligations", "description": "Duties made from the guideline pack (a steriliser's daily test, a site's "
                                           "opening checklist, a training renewal); times in UTC and in the site's "
                                           "zone; paused, resumed and snoozed by a manager with a reason"},
    {"name": "outbox", "description": "The emails the scan queued (reminders, overdue alerts, escalations, repeats, "
                                      "digests) and whether they were sent; without their bodies"},
]
STATES = ("ok", "due", "overdue", "paused", "snoozed", "ended")
MAX_REASON = 500  # the service's limit
MAX_SNOOZE_HOURS = int(services.MAX_SNOOZE.total_seconds() // 3600)


blp.before_request(authenticate_request)
_errors = error_docs(blp)


# --- what goes out -------------------------------------------------------------------------------

class LocalDateTimeField(fields.DateTime):
    """An aware datetime as ISO 8601 in a site's zone, with its offset, e.g. 2026-11-26T09:00:00+07:00."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime in {attr}")
        return value.isoformat()


class ObligationSchema(BoundedSchema):
    """An obligation. `next_due_at` and `next_due_local` are the same instant (UTC; the site's zone)."""

    id = fields.Integer()
    site_id = fields.Integer()
    site_timezone = fields.String(metadata={"description": "The site's IANA zone; the *_local times are in it"})
    kind = fields.String(metadata={"description": "The pack's obligation key, e.g. air-removal-test"})
    kind_label = fields.String(metadata={"description": "The kind in the caller's language"})
    rule_id = fields.String(metadata={"description": "The guideline rule it serves"})
    subject_type = fields.String(metadata={"description": "steriliser, site, sharps_container, pack, "
                                                          "training_record or corrective_action"})
    subject_id = fields.Integer()
    subject_label = fields.String(metadata={"description": "A short name of the subject (\"\" when it is gone)"})
    responsible = fields.String(metadata={"enum": ["staff", "manager", "person"]})
    responsible_user_id = fields.Integer(allow_none=True)
    status = fields.String(metadata={"enum": list(OBLIGATION_STATUSES), "description": "As stored"})
    state = fields.String(metadata={"enum": list(STATES), "description": "As a person reads it now"})
    schedule = fields.Dict(metadata={"description": (
        "As stored: {\"cron\": {...}} or {\"every_days\": n} or {\"once\": true}, with grace_minutes and "
        "closed_days")})
    next_due_at = UTCDateTimeField()
    next_due_local = LocalDateTimeField()
    overdue_at = UTCDateTimeField(metadata={"description": "next_due_at + the grace"})
    overdue_local = LocalDateTimeField()
    next_action = fields.String(allow_none=True, metadata={"enum": list(ACTIONS), "description": (
        "What the scan does next for it (null: nothing more, e.g. paused)")})
    next_action_at = UTCDateTimeField(allow_none=True, attribute="action_at")
    snoozed_until = UTCDateTimeField(allow_none=True)
    last_done_at = UTCDateTimeField(allow_none=True)
    ended_at = UTCDateTimeField(allow_none=True)


class ObligationChangeSchema(BoundedSchema):
    at = UTCDateTimeField()
    from_status = fields.String()
    to_status = fields.String(metadata={"enum": [*OBLIGATION_STATUSES, "snoozed"]})
    due_at = UTCDateTimeField(metadata={"description": "The due time in force at the change"})
    by_id = fields.Integer(allow_none=True, metadata={"description": "The person; null when the system did it"})
    reason = fields.String()
    until = UTCDateTimeField(allow_none=True, metadata={"description": "A snooze's end"})


class FindingSchema(BoundedSchema):
    """An overdue obligation, once per due time, with the guideline version and site overrides in force."""

    id = fields.Integer()
    rule_id = fields.String()
    due_at = UTCDateTimeField()
    gap_until = UTCDateTimeField(allow_none=True, metadata={"description": (
        "Set when the scheduler was not running: the due times from due_at until this one were beyond the "
        "look-back and were not checked one by one")})
    opened_at = UTCDateTimeField()
    resolved_at = UTCDateTimeField(allow_none=True)
    severity = fields.String()
    guideline_version = fields.String()
    overrides = fields.Dict()


class OccurrenceSchema(BoundedSchema):
    """One due time and what became of it; the compliance rates are counted from these."""

    due_at = UTCDateTimeField()
    local_day = fields.Date(metadata={"description": "The due time's day in the site's zone"})
    state = fields.String(metadata={"enum": list(OCCURRENCE_STATES)})
    done_at = UTCDateTimeField(allow_none=True)
    done_by_id = fields.Integer(allow_none=True)
    record = fields.String(metadata={"description": "What did it, e.g. steriliser_test:12"})
    note = fields.String(metadata={"description": "Why it was excused"})


class ObligationDetailSchema(ObligationSchema):
    occurrences = fields.List(fields.Nested(OccurrenceSchema), metadata={"description": "The latest 30, newest first"})
    history = fields.List(fields.Nested(ObligationChangeSchema), metadata={"description": "Newest first"})
    findings = fields.List(fields.Nested(FindingSchema), metadata={"description": "Newest due time first"})


class OutboxMessageSchema(BoundedSchema):
    """An email (without its body)."""

    id = fields.Integer()
    kind = fields.String(metadata={"enum": list(MESSAGE_KINDS)})
    site_id = fields.Integer(allow_none=True)
    obligation_id = fields.Integer(allow_none=True)
    recipient = fields.String()
    language = fields.String()
    subject = fields.String()
    state = fields.String(metadata={"enum": list(OUTBOX_STATES)})
    attempts = fields.Integer()
    next_attempt_at = UTCDateTimeField()
    last_error = fields.String()
    created_at = UTCDateTimeField()
    sent_at = UTCDateTimeField(allow_none=True)


# --- what comes in -------------------------------------------------------------------------------

class ObligationQuerySchema(BoundedSchema):
    site_id = fields.Integer(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(OBLIGATION_STATUSES), metadata={
        "description": "As stored; without it, every obligation but the ended ones"})
    kind = fields.String(load_default=None, validate=validate.Length(max=40))


class OutboxQuerySchema(BoundedSchema):
    site_id = fields.Integer(load_default=None)
    state = fields.String(load_default=None, validate=validate.OneOf(OUTBOX_STATES))
    kind = fields.String(load_default=None, validate=validate.OneOf(MESSAGE_KINDS))
    q = fields.String(load_default="", validate=validate.Length(max=200),
                      metadata={"description": "Part of the recipient or the subject"})


class ReasonInputSchema(InputSchema):
    reason = _text(MAX_REASON, metadata={"description": "Why (kept in the obligation's history)"})


class SnoozeInputSchema(ReasonInputSchema):
    hours = fields.Integer(required=True, strict=True, validate=validate.Range(1, MAX_SNOOZE_HOURS), metadata={
        "description": "Nobody is told for this long; then the alerts resume by themselves"})


# --- views ---------------------------------------------------------------------------------------

def _out(o: Obligation, now: datetime, names: dict, **extra) -> _With:
    tz = ZoneInfo(o.site.timezone)
    overdue_at = o.next_due_at + services.grace_of(o)
    return _With(o, site_timezone=o.site.timezone, kind_label=kind_label(o.kind),
                 subject_label=names.get((o.subject_type, o.subject_id), ""), state=services.state_of(o, now),
                 next_due_local=o.next_due_at.astimezone(tz), overdue_at=overdue_at,
                 overdue_local=overdue_at.astimezone(tz), **extra)


def _detail(o: Obligation, now: datetime) -> _With:
    return _out(o, now, subjects.labels([o]), history=services.history(o), findings=services.findings_of(o),
                occurrences=services.occurrences_of(o))


@blp.route("/obligations", tags=["obligations"])
class Obligations(MethodView):
    @blp.arguments(ObligationQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, ObligationSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, site_id, status, kind):
        """List the obligations of the caller's sites, the earliest due first (ended ones only when asked)."""
        stmt = services.obligations_query(api_actor(), site_id=site_id, status=status, kind=kind)
        stmt = stmt.options(selectinload(Obligation.site)).order_by(Obligation.next_due_at, Obligation.id)
        rows = _page(stmt, pagination_parameters)
        now, names = utcnow(), subjects.labels(rows)
        return [_out(o, now, names) for o in rows]


@blp.route("/obligations/<int:obligation_id>", tags=["obligations"])
class ObligationItem(MethodView):
    @blp.response(200, ObligationDetailSchema)
    @_errors(403, 404)
    def get(self, obligation_id):
        """One obligation, with its history (newest first) and its findings."""
        return _detail(services.get_obligation(api_actor(), obligation_id), utcnow())


@blp.route("/obligations/<int:obligation_id>/pause", tags=["obligations"])
class ObligationPause(MethodView):
    @blp.arguments(ReasonInputSchema)
    @blp.response(200, ObligationDetailSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, obligation_id):
        """Pause an obligation with the reason (managers, admins): nothing falls due and nobody is told until it
        is resumed (e.g. a steriliser away for repair). 409 when it is paused already or has ended."""
        now = utcnow()
        o = services.pause(api_actor(), obligation_id, data, now)
        db.session.commit()
        return _detail(o, now)


@blp.route("/obligations/<int:obligation_id>/resume", tags=["obligations"])
class ObligationResume(MethodView):
    @blp.arguments(ReasonInputSchema)
    @blp.response(200, ObligationDetailSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, obligation_id):
        """Resume a paused obligation with the reason (managers, admins); a daily duty missed while paused is not
        owed. 409 when it is not paused."""
        now = utcnow()
        o = services.resume(api_actor(), obligation_id, data, now)
        db.session.commit()
        return _detail(o, now)


@blp.route("/obligations/<int:obligation_id>/snooze", tags=["obligations"])
class ObligationSnooze(MethodView):
    @blp.arguments(SnoozeInputSchema)
    @blp.response(200, ObligationDetailSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, obligation_id):
        """Snooze an obligation's alerts for some hours (at most a week) with the reason (managers, admins); its
        due time does not move. 409 when it is paused or has ended."""
        now = utcnow()
        o = services.snooze(api_actor(), obligation_id, data, now)
        db.session.commit()
        return _detail(o, now)


@blp.route("/outbox", tags=["outbox"])
class Outbox(MethodView):
    @blp.arguments(OutboxQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, OutboxMessageSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, site_id, state, kind, q):
        """List the emails of the caller's sites, newest first (managers, admins, auditors; not a site's key)."""
        stmt = services.outbox_query(api_actor(), site_id=site_id, state=state, kind=kind, search=q)
        stmt = stmt.options(defer(OutboxMessage.text_body), defer(OutboxMessage.html_body)).order_by(
            OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        return _page(stmt, pagination_parameters)


# --- compliance rates ----------------------------------------------------------------------------

class RateSchema(BoundedSchema):
    key = fields.String(metadata={"description": "The obligation kind, a checklist's key, or all"})
    due = fields.Integer(attribute="occurrences", metadata={"description": "Due times decided in the period"})
    on_time = fields.Integer(attribute="met")
    not_on_time = fields.Integer(attribute="missed", metadata={"description": "Done late or missed"})
    rate = fields.Float(allow_none=True, metadata={"description": "on_time / due; null when nothing fell due"})


class RatesSchema(BoundedSchema):
    site_id = fields.Integer()
    timezone = fields.String()
    start = fields.Date(metadata={"description": "The first local day counted"})
    end = fields.Date(metadata={"description": "The last local day counted"})
    obligations = fields.List(fields.Nested(RateSchema), metadata={"description": "Per obligation kind"})
    overall = fields.Nested(RateSchema)
    checklists = fields.List(fields.Nested(RateSchema), metadata={"description": "Runs completed / started"})


class RatesQuerySchema(BoundedSchema):
    site_id = fields.Integer(required=True)
    start = fields.Date(load_default=None, data_key="from", metadata={
        "description": "First local day (default: 28 days before the end)"})
    end = fields.Date(load_default=None, data_key="to", metadata={"description": "Last local day (default: yesterday)"})


@blp.route("/rates", tags=["obligations"])
class Rates(MethodView):
    @blp.arguments(RatesQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, RatesSchema)
    @_errors(403, 404, 422)
    def get(self, site_id, start, end):
        """A site's compliance rates over local days, counted from its due times exactly as the dashboard, the
        audit report and its PDF count them: done on time / due, per obligation kind and overall."""
        from ..reports import metrics
        from ..reports.services import rates_for_site

        result = rates_for_site(api_actor(), site_id, start, end, utcnow())
        return {**result, "overall": metrics.overall({r.key: r for r in result["obligations"]})}
