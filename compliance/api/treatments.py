"""Single-use stock and treatments over JSON: read input → one service call → commit → respond.

The point-of-use gate answers 201 with the usage when it accepts a pack or unit, and 409 with every reason when
it refuses. A refusal is still committed: the stored attempt (who tried what, which rule refused it) is the
record a manager's override points at and an inspector reads. A site's API key (a data logger) reads and writes
nothing here (403): people receive stock and treat clients.
"""
from __future__ import annotations


from flask import jsonify
from flask.views import MethodView
from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from ..auth.actor import Actor
from ..errors import NotFound
from ..extensions import db
from ..stock import services as stock
from ..stock.models import ItemType, Lot, Unit
from ..timeutil import local_today, utcnow
from ..treatments import services
from ..treatments.models import (
    AdverseEvent,
    GateAttempt,
    GateOverride,
    LookBack,
    SharpsContainer,
    Treatment,
    TreatmentPack,
    TreatmentUnit,
)
from ..guidelines.services import pack_for_site
from ..treatments.messages import instead_text, is_overridable
from ..treatments.services import GateResult
from .auth import api_actor, authenticate_request, error_docs
from .blueprint import Blueprint
from .sites import PAGE, _created, _page
from .sterilisation import _With
from .treatments_schemas import (
    AbandonInputSchema,
    AdverseEventInputSchema,
    AdverseEventSchema,
    ClientInputSchema,
    ClientSchema,
    CloseContainerInputSchema,
    FinishInputSchema,
    GateRefusalSchema,
    ItemTypeInputSchema,
    ItemTypeQuerySchema,
    ItemTypeSchema,
    LookBackQuerySchema,
    LotDetailSchema,
    LotInputSchema,
    LotQuerySchema,
    LotSchema,
    LotStatusInputSchema,
    OverrideInputSchema,
    OverrideResultSchema,
    ScanInputSchema,
    ScreeningInputSchema,
    SharpsContainerInputSchema,
    SharpsContainerQuerySchema,
    SharpsContainerSchema,
    TreatmentDetailSchema,
    TreatmentInputSchema,
    TreatmentPackSchema,
    TreatmentQuerySchema,
    TreatmentSchema,
    TreatmentUnitSchema,
    UnitLabelsInputSchema,
    UnitLabelsSchema,
    WindowQuerySchema,
    gate_reason_text,
)

blp = Blueprint("api_treatments", __name__, url_prefix="/api/v1", description=(
    "Single-use item types, lots and unit labels, sharps containers, clients, treatments with the point-of-use "
    "gate, overrides, adverse events and look-back. A site's API key reads and writes nothing here (403)."))

TAGS = [
    {"name": "item types", "description": "Single-use products, with the GTIN of their GS1 barcode"},
    {"name": "lots", "description": "Lots received at a site (by GS1 scan or typed), quarantine, recall and labels "
                                    "for units without a serial"},
    {"name": "sharps containers", "description": "Containers the single-use units are disposed into"},
    {"name": "clients", "description": "Clients by pseudonymous code; names and phones for managers only"},
    {"name": "treatments", "description": "Treatments, screening, finishing and adverse events"},
    {"name": "point-of-use gate", "description": "Packs and units checked before they touch skin: 201 when used, "
                                                 "200 with already_added when scanned again for the same "
                                                 "treatment, 409 with the reasons (and the stored attempt) when "
                                                 "refused"},
    {"name": "look-back", "description": "Treatments exposed to a load, device, lot, steriliser or practitioner"},
]


blp.before_request(authenticate_request)
_errors = error_docs(blp)


def _gate(func_):
    """Document the gate's 409: the refusal with its reasons and the stored attempt."""
    return blp.alt_response(409, schema=GateRefusalSchema, description=(
        "Refused by the point-of-use gate: reasons and attempt_id; the attempt is stored, nothing is used. (A "
        "treatment that is no longer open, a refusal already overridden, or an override of a reason that is never "
        "overridden answers 409 with errors and the rule instead.)"))(func_)


# --- stock ---------------------------------------------------------------------------------------

def _lots_out(lots: list[Lot]) -> list[_With]:
    """Lots with their units known and used (two grouped queries) and whether each is past its expiry today."""
    ids = [lot.id for lot in lots]
    known = dict(db.session.execute(select(Unit.lot_id, func.count()).where(Unit.lot_id.in_(ids))
                                    .group_by(Unit.lot_id)).all()) if ids else {}
    used = dict(db.session.execute(
        select(Unit.lot_id, func.count()).join(TreatmentUnit, TreatmentUnit.unit_id == Unit.id)
        .where(Unit.lot_id.in_(ids)).group_by(Unit.lot_id)).all()) if ids else {}
    now = utcnow()
    return [_With(lot, units_known=known.get(lot.id, 0), units_used=used.get(lot.id, 0),
                  is_expired=lot.expires_on < local_today(lot.site.timezone, now)) for lot in lots]


@blp.route("/item-types", tags=["item types"])
class ItemTypes(MethodView):
    @blp.arguments(ItemTypeQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, ItemTypeSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, q):
        """List the organisation's single-use item types, by name."""
        stmt = stock.item_types_query(api_actor())
        if q:
            like = f"%{q.strip()}%"
            stmt = stmt.where(or_(ItemType.name.ilike(like), ItemType.maker.ilike(like),
                                  ItemType.product_code.ilike(like), ItemType.gtin.ilike(like)))
        return _page(stmt, pagination_parameters)

    @blp.arguments(ItemTypeInputSchema)
    @blp.response(201, ItemTypeSchema)
    @_errors(400, 403, 409, 422, write=True)
    def post(self, data):
        """Add an item type (managers, admins); a GTIN must have a right check digit and be new."""
        row = stock.create_item_type(api_actor(), data, utcnow())
        db.session.commit()
        return _created(row, ".ItemTypeItem", type_id=row.id)


@blp.route("/item-types/<int:type_id>", tags=["item types"])
class ItemTypeItem(MethodView):
    @blp.response(200, ItemTypeSchema)
    @_errors(403, 404)
    def get(self, type_id):
        """One item type of the caller's organisation."""
        row = db.session.scalar(stock.item_types_query(api_actor()).where(ItemType.id == type_id))
        if row is None:
            raise NotFound(_("no such item type"), field="type_id")
        return row


@blp.route("/lots", tags=["lots"])
class Lots(MethodView):
    @blp.arguments(LotQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, LotSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, site_id, status, q):
        """List the lots of the caller's sites, soonest expiry first."""
        stmt = stock.lots_query(api_actor(), site_id=site_id, status=status, search=q)
        stmt = stmt.options(selectinload(Lot.site), selectinload(Lot.item_type))
        return _lots_out(_page(stmt, pagination_parameters))

    @blp.arguments(LotInputSchema)
    @blp.response(201, LotDetailSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data):
        """Receive a lot at a site (people only): scan the GS1 barcode, or give item type, lot and expiry. A
        barcode that cannot be read (422) or whose GTIN no item type has (404) names the barcode field; a lot
        received twice at a site is a 409."""
        lot = stock.receive_lot(api_actor(), data, utcnow())
        db.session.commit()
        return _created(_lots_out([lot])[0], ".LotItem", lot_id=lot.id)


@blp.route("/lots/<int:lot_id>", tags=["lots"])
class LotItem(MethodView):
    @blp.response(200, LotDetailSchema)
    @_errors(403, 404)
    def get(self, lot_id):
        """One lot with its item type and how many of its units are known and used."""
        return _lots_out([stock.get_lot(api_actor(), lot_id)])[0]


@blp.route("/lots/<int:lot_id>/status", tags=["lots"])
class LotStatus(MethodView):
    @blp.arguments(LotStatusInputSchema)
    @blp.response(200, LotSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data, lot_id):
        """Quarantine, recall or release a lot from quarantine, with the reason (managers, admins). The gate
        refuses units of a quarantined or recalled lot; a recall is final (409)."""
        lot = stock.set_lot_status(api_actor(), lot_id, data, utcnow())
        db.session.commit()
        return _lots_out([lot])[0]


@blp.route("/lots/<int:lot_id>/unit-labels", tags=["lots"])
class LotUnitLabels(MethodView):
    @blp.arguments(UnitLabelsInputSchema)
    @blp.response(201, UnitLabelsSchema)
    @_errors(400, 403, 404, write=True)
    def post(self, data, lot_id):
        """Make labels for units without a serial of their own (people only). Location is the lot."""
        units = stock.generate_unit_labels(api_actor(), lot_id, data["count"], utcnow())
        db.session.commit()
        return _created({"lot_id": lot_id, "codes": [u.serial for u in units]}, ".LotItem", lot_id=lot_id)


# --- sharps containers ---------------------------------------------------------------------------

def _containers_query(actor: Actor, site_id: int | None = None, state: str | None = None):
    actor.require("treatments.read")
    stmt = select(SharpsContainer).where(SharpsContainer.site_id.in_(actor.site_ids))
    if site_id:
        stmt = stmt.where(SharpsContainer.site_id == site_id)
    if state == "open":
        stmt = stmt.where(SharpsContainer.closed_at.is_(None))
    elif state == "closed":
        stmt = stmt.where(SharpsContainer.closed_at.is_not(None))
    return stmt.order_by(SharpsContainer.opened_at.desc(), SharpsContainer.id.desc())


@blp.route("/sharps-containers", tags=["sharps containers"])
class SharpsContainers(MethodView):
    @blp.arguments(SharpsContainerQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, SharpsContainerSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, site_id, state):
        """List the sharps containers of the caller's sites, newest first."""
        return _page(_containers_query(api_actor(), site_id, state), pagination_parameters)

    @blp.arguments(SharpsContainerInputSchema)
    @blp.response(201, SharpsContainerSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data):
        """Open a sharps container at a site, by the label written on it (people only)."""
        row = services.open_sharps_container(api_actor(), data, utcnow())
        db.session.commit()
        return _created(row, ".SharpsContainerItem", container_id=row.id)


@blp.route("/sharps-containers/<int:container_id>", tags=["sharps containers"])
class SharpsContainerItem(MethodView):
    @blp.response(200, SharpsContainerSchema)
    @_errors(403, 404)
    def get(self, container_id):
        """One sharps container."""
        row = db.session.scalar(_containers_query(api_actor()).where(SharpsContainer.id == container_id))
        if row is None:
            raise NotFound(_("no such sharps container"), field="container_id")
        return row


@blp.route("/sharps-containers/<int:container_id>/close", tags=["sharps containers"])
class SharpsContainerClose(MethodView):
    @blp.arguments(CloseContainerInputSchema)
    @blp.response(200, SharpsContainerSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data, container_id):
        """Close a container at its fill line, with the waste carrier's reference (people only); once only."""
        row = services.close_sharps_container(api_actor(), container_id, data["disposal_ref"], utcnow())
        db.session.commit()
        return row


# --- clients -------------------------------------------------------------------------------------

def _client_out(actor: Actor, client) -> object:
    """The client as this caller may see it: without name, phone and consent note unless clients.contact."""
    if actor.can("clients.contact"):
        return client
    return {k: getattr(client, k) for k in ("id", "code", "site_id", "consent_at", "created_at")}


@blp.route("/clients", tags=["clients"])
class Clients(MethodView):
    @blp.arguments(ClientInputSchema)
    @blp.response(201, ClientSchema)
    @_errors(400, 403, 404, write=True)
    def post(self, data):
        """Register a client at a site (people only); the answer holds the new pseudonymous code."""
        actor = api_actor()
        client = services.create_client(actor, data, utcnow())
        db.session.commit()
        return _created(_client_out(actor, client), ".ClientItem", code=client.code)


@blp.route("/clients/<code>", tags=["clients"])
class ClientItem(MethodView):
    @blp.response(200, ClientSchema)
    @_errors(403, 404)
    def get(self, code):
        """A client by code (registered at, or treated at, one of the caller's sites)."""
        actor = api_actor()
        return _client_out(actor, services.get_client(actor, code=code))


# --- treatments ----------------------------------------------------------------------------------

def _with_people():
    return (selectinload(Treatment.client), selectinload(Treatment.practitioner))


def _treatment_detail(treatment: Treatment) -> _With:
    """A treatment with its packs, units, refusals, overrides and adverse events (a few queries, not per row)."""
    attempts = list(db.session.scalars(select(GateAttempt).where(GateAttempt.treatment_id == treatment.id)
                                       .order_by(GateAttempt.at, GateAttempt.id)))
    overrides = list(db.session.scalars(
        select(GateOverride).join(GateAttempt, GateAttempt.id == GateOverride.attempt_id)
        .where(GateAttempt.treatment_id == treatment.id).order_by(GateOverride.at, GateOverride.id)
        .options(selectinload(GateOverride.manager), selectinload(GateOverride.attempt))))
    overridden = {o.attempt_id: o.id for o in overrides}
    events = list(db.session.scalars(select(AdverseEvent).where(AdverseEvent.treatment_id == treatment.id)
                                     .order_by(AdverseEvent.onset_at, AdverseEvent.id)))
    look_backs = dict(db.session.execute(select(LookBack.adverse_event_id, LookBack.id).where(
        LookBack.adverse_event_id.in_([e.id for e in events]))).all()) if events else {}
    return _With(treatment,
                 attempts=[_With(a, override_id=overridden.get(a.id)) for a in attempts],
                 overrides=overrides,
                 adverse_events=[_With(e, look_back_id=look_backs.get(e.id)) for e in events])


@blp.route("/treatments", tags=["treatments"])
class Treatments(MethodView):
    @blp.arguments(TreatmentQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, TreatmentSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, site_id, client_id, practitioner_id, status, date_from, date_to):
        """List the treatments of the caller's sites, newest first."""
        stmt = services.treatments_query(api_actor(), site_id=site_id, client_id=client_id,
                                         practitioner_id=practitioner_id, status=status, date_from=date_from,
                                         date_to=date_to)
        return _page(stmt.options(*_with_people()), pagination_parameters)

    @blp.arguments(TreatmentInputSchema)
    @blp.response(201, TreatmentSchema)
    @_errors(400, 403, 404, write=True)
    def post(self, data):
        """Open a treatment for a client in a room (people only; never a site's API key)."""
        treatment = services.start_treatment(api_actor(), data, utcnow())
        db.session.commit()
        return _created(treatment, ".TreatmentItem", treatment_id=treatment.id)


@blp.route("/treatments/<int:treatment_id>", tags=["treatments"])
class TreatmentItem(MethodView):
    @blp.response(200, TreatmentDetailSchema)
    @_errors(403, 404)
    def get(self, treatment_id):
        """One treatment with its packs, units, refused attempts, overrides and adverse events."""
        return _treatment_detail(services.get_treatment(api_actor(), treatment_id))


@blp.route("/treatments/<int:treatment_id>/screening", tags=["treatments"])
class TreatmentScreening(MethodView):
    @blp.arguments(ScreeningInputSchema)
    @blp.response(200, TreatmentSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, treatment_id):
        """Record the client's screening before treatment (a new answer replaces the earlier one)."""
        treatment = services.record_screening(api_actor(), treatment_id, data, utcnow())
        db.session.commit()
        return treatment


def _gate_answer(result: GateResult, treatment_id: int):
    """201 with the usage; 200 with it when it was already added to this treatment (a double scan); or 409 with
    the reasons, after committing the refused attempt."""
    db.session.commit()  # accepted: the usage; refused: the attempt, which must outlive this answer
    if result.already:
        return _With(result.usage, already_added=True), 200
    if result.accepted:
        return _created(_With(result.usage, already_added=False), ".TreatmentItem", treatment_id=treatment_id)
    return _refusal(result)


def _refusal(result: GateResult):
    reasons = [{**r, "message": gate_reason_text(r)} for r in result.reasons]
    guideline = pack_for_site(result.attempt.site_id)
    overridable = is_overridable(result.reasons, guideline.override_for)
    body = {"code": 409, "message": _("Refused at the point of use: %(reasons)s",
                                      reasons=" ".join(r["message"] for r in reasons)),
            "rule": reasons[0]["rule"] if reasons else None, "reasons": reasons, "attempt_id": result.attempt.id,
            "overridable": overridable}
    if not overridable:
        body["instead"] = instead_text(result.reasons, guideline.override_for)
    return jsonify(body), 409


@blp.route("/treatments/<int:treatment_id>/packs", tags=["point-of-use gate"])
class TreatmentPacks(MethodView):
    @blp.arguments(ScanInputSchema)
    @blp.response(201, TreatmentPackSchema)
    @blp.alt_response(200, schema=TreatmentPackSchema, description="Already added to this treatment (a double scan): the "
                                                        "existing usage, already_added true; nothing stored")
    @_gate
    @_errors(400, 403, 404, 422, write=True)
    def post(self, data, treatment_id):
        """Open a sterile pack for the treatment (people only). The gate checks the load was released, the pack
        is in date, intact and unused, the practitioner trained and the client screened."""
        result = services.add_pack(api_actor(), treatment_id, data["code"], utcnow())
        return _gate_answer(result, treatment_id)


@blp.route("/treatments/<int:treatment_id>/units", tags=["point-of-use gate"])
class TreatmentUnits(MethodView):
    @blp.arguments(ScanInputSchema)
    @blp.response(201, TreatmentUnitSchema)
    @blp.alt_response(200, schema=TreatmentUnitSchema, description="Already added to this treatment (a double scan): the "
                                                        "existing usage, already_added true; nothing stored")
    @_gate
    @_errors(400, 403, 404, 422, write=True)
    def post(self, data, treatment_id):
        """Use a single-use unit (people only). The gate checks it was never used anywhere, its lot is in date
        and neither quarantined nor recalled, the practitioner trained and the client screened."""
        result = services.add_unit(api_actor(), treatment_id, data["code"], utcnow())
        return _gate_answer(result, treatment_id)


@blp.route("/gate-attempts/<int:attempt_id>/override", tags=["point-of-use gate"])
class GateAttemptOverride(MethodView):
    @blp.arguments(OverrideInputSchema)
    @blp.response(201, OverrideResultSchema)
    @_gate
    @_errors(400, 403, 404, write=True)
    def post(self, data, attempt_id):
        """A manager of the site overrides a refusal, confirming with their password or PIN, with a written
        reason; the pack or unit is then used. A used pack or unit is never overridden (409). A wrong password
        or someone who is not a manager there is a 403."""
        result = services.override_attempt(api_actor(), attempt_id, data, utcnow())
        db.session.commit()
        if not result.accepted:
            return _refusal(result)
        usage = result.usage
        override = db.session.get(GateOverride, usage.override_id)
        body = {"override": override, "pack": usage if isinstance(usage, TreatmentPack) else None,
                "unit": usage if isinstance(usage, TreatmentUnit) else None}
        return _created(body, ".TreatmentItem", treatment_id=usage.treatment_id)


@blp.route("/treatments/<int:treatment_id>/finish", tags=["treatments"])
class TreatmentFinish(MethodView):
    @blp.arguments(FinishInputSchema)
    @blp.response(200, TreatmentSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, treatment_id):
        """Finish a treatment: settings, aftercare, products; its units go into an open sharps container and
        its devices become dirty. Passes outside the guideline's range need passes_confirmed (422 otherwise)."""
        if data.get("ended_at") is not None:
            data = {**data, "ended_at": data["ended_at"].isoformat()}
        treatment = services.finish_treatment(api_actor(), treatment_id, data, utcnow())
        db.session.commit()
        return treatment


@blp.route("/treatments/<int:treatment_id>/abandon", tags=["treatments"])
class TreatmentAbandon(MethodView):
    @blp.arguments(AbandonInputSchema)
    @blp.response(200, TreatmentSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, treatment_id):
        """Abandon an open treatment with the reason (people only); ended_at is now. The packs and units already
        used stay used, and the devices of its packs become dirty. A treatment no longer open is a 409."""
        treatment = services.abandon_treatment(api_actor(), treatment_id, data, utcnow())
        db.session.commit()
        return treatment


@blp.route("/treatments/<int:treatment_id>/adverse-events", tags=["treatments"])
class TreatmentAdverseEvents(MethodView):
    @blp.arguments(AdverseEventInputSchema)
    @blp.response(201, AdverseEventSchema)
    @_errors(400, 403, 404, 422, write=True)
    def post(self, data, treatment_id):
        """Record an effect after a treatment (people only); an infection opens a look-back. Location is the
        treatment, which lists its adverse events."""
        if data.get("onset_at") is not None:
            data = {**data, "onset_at": data["onset_at"].isoformat()}
        event = services.record_adverse_event(api_actor(), treatment_id, data, utcnow())
        db.session.commit()
        look_back = db.session.scalar(select(LookBack.id).where(LookBack.adverse_event_id == event.id))
        return _created(_With(event, look_back_id=look_back), ".TreatmentItem", treatment_id=treatment_id)


# --- look-back -----------------------------------------------------------------------------------

@blp.route("/look-back", tags=["look-back"])
class LookBackQuery(MethodView):
    @blp.arguments(LookBackQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, TreatmentSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, cycle_id, device_id, lot_id, steriliser_id, practitioner_id, date_from,
            date_to):
        """Every treatment of the caller's sites exposed to a load, a device, a lot, a steriliser or a practitioner
        (all that are given), oldest first, with the client codes (managers, admins, auditors)."""
        stmt = services.exposed_treatments(api_actor(), cycle_id=cycle_id, device_id=device_id, lot_id=lot_id,
                                           steriliser_id=steriliser_id, practitioner_id=practitioner_id,
                                           date_from=date_from, date_to=date_to)
        return _page(stmt.options(*_with_people()), pagination_parameters)


@blp.route("/treatments/<int:treatment_id>/look-back", tags=["look-back"])
class TreatmentLookBack(MethodView):
    @blp.arguments(WindowQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, TreatmentSchema(many=True))
    @_errors(403, 404)
    def get(self, treatment_id, window_days):
        """The other treatments that shared a device, a load or a single-use lot with this one within the window
        (managers, admins, auditors). Not paginated."""
        return services.look_back(api_actor(), treatment_id, window_days)

