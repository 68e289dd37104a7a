"""Devices and sterilisation over JSON: read input → one service call → commit → respond.

A site's API key is the steriliser's data logger: it reads its own site's sterilisers, tests, cycles, cycle records
and packs (not devices, device kinds or recalls) and may post steriliser tests, cycles and cycle records
(the rules judge them), but it may not release or fail a load, nor change devices, packs or recalls.
"""
from __future__ import annotations


import io
import json

from flask import current_app, request, send_file
from flask.views import MethodView
from sqlalchemy import select
from sqlalchemy.orm import defer, selectinload

from ..boundary import raw_body
from ..devices import services as devices
from ..devices.models import Device, Steriliser
from ..extensions import db
from ..sterilisation import curve_services, rules
from ..sterilisation import services
from ..sterilisation.models import Cycle, CurveFile, CycleCurve, Pack, PackItem, Recall, RecallLoad
from ..timeutil import utcnow
from .auth import api_actor, authenticate_request, error_docs
from .blueprint import Blueprint
from .sites import PAGE, _created, _page
from .sterilisation_schemas import (
    CleaningInputSchema,
    CompromiseInputSchema,
    CycleCorrectionInputSchema,
    CycleDetailSchema,
    CycleInputSchema,
    CycleQuerySchema,
    CycleSchema,
    DecisionNoteInputSchema,
    DeviceDetailSchema,
    DeviceInputSchema,
    DeviceKindInputSchema,
    DeviceKindQuerySchema,
    DeviceKindSchema,
    DeviceQuerySchema,
    DeviceSchema,
    DeviceStatusInputSchema,
    FailNoteInputSchema,
    InspectionInputSchema,
    OutOfServiceInputSchema,
    PackDetailSchema,
    PackInputSchema,
    PackQuerySchema,
    PackSchema,
    ProgrammeInputSchema,
    ProgrammeSchema,
    RecallDetailSchema,
    RecallNoteInputSchema,
    RecallQuerySchema,
    RecallSchema,
    SteriliserInputSchema,
    SteriliserQuerySchema,
    SteriliserSchema,
    SteriliserTestInputSchema,
    SteriliserTestQuerySchema,
    SteriliserTestSchema,
    TestResultInputSchema,
    CurveFileQuerySchema,
    CurveImportInputSchema,
    CurveImportResultSchema,
    CycleRecordDetailSchema,
    CycleRecordItemQuerySchema,
    CycleRecordQuerySchema,
    CycleRecordSchema,
    curve_verdict,
)

blp = Blueprint("api_sterilisation", __name__, url_prefix="/api/v1", description=(
    "Devices, sterilisers, steriliser tests, cycles (loads), packs and recalls. A site's API key (a steriliser's "
    "data logger) reads its own site's sterilisers, tests, cycles and packs and may post tests and cycles; only "
    "people release or fail a load."))

# The operations' tags, in the order the document lists them (registered in compliance/api/__init__.py).
TAGS = [
    {"name": "device kinds", "description": "Kinds of reusable device with their Spaulding class"},
    {"name": "devices", "description": "Reusable devices by serial, with their history"},
    {"name": "sterilisers", "description": "Sterilisers and their programmes"},
    {"name": "steriliser tests", "description": "Air-removal, spore, leak, validation and calibration tests; a "
                                                "failed spore test recalls every load since the last passing one"},
    {"name": "cycles", "description": "Loads with the rules' verdict; a person releases or fails them"},
    {"name": "reprocessing", "description": "Cleaning and inspection before packing"},
    {"name": "packs", "description": "Pouches and wraps by label code"},
    {"name": "recalls", "description": "Recalls after a failed spore test, with their closing checklist"},
]


REPLAY = "A retry with an idempotency key already used for this record: nothing new is stored"

blp.before_request(authenticate_request)
_errors = error_docs(blp)


class _With:
    """A row with values the view worked out (a pack's state now, its label URL), for the output schema."""

    def __init__(self, row, **extra):
        self._row = row
        self.__dict__.update(extra)

    def __getattr__(self, name):
        return getattr(self._row, name)


def _pack_out(pack: Pack, now, **extra) -> _With:
    return _With(pack, state=rules.pack_state(pack.status, pack.expires_at, now),
                 label_url=f"{current_app.config['BASE_URL'].rstrip('/')}/p/{pack.label_code}",
                 devices=[item.device for item in pack.items], **extra)


# --- device kinds --------------------------------------------------------------------------------

@blp.route("/device-kinds", tags=["device kinds"])
class DeviceKinds(MethodView):
    @blp.arguments(DeviceKindQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, DeviceKindSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, include_inactive):
        """List the organisation's device kinds, by name."""
        return _page(devices.device_types_query(api_actor(), include_inactive), pagination_parameters)

    @blp.arguments(DeviceKindInputSchema)
    @blp.response(201, DeviceKindSchema)
    @_errors(400, 403, 409, write=True)
    def post(self, data):
        """Add a device kind (managers, admins)."""
        row = devices.create_device_type(api_actor(), data, utcnow())
        db.session.commit()
        return _created(row, ".DeviceKindItem", type_id=row.id)


@blp.route("/device-kinds/<int:type_id>", tags=["device kinds"])
class DeviceKindItem(MethodView):
    @blp.response(200, DeviceKindSchema)
    @_errors(403, 404)
    def get(self, type_id):
        """One device kind of the caller's organisation."""
        return devices.get_device_type(api_actor(), type_id)


# --- devices -------------------------------------------------------------------------------------

@blp.route("/devices", tags=["devices"])
class Devices(MethodView):
    @blp.arguments(DeviceQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, DeviceSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, site_id, status, q, device_type_id):
        """List the devices of the caller's sites, by kind and serial."""
        stmt = devices.devices_query(api_actor(), site_id=site_id, search=q, status=status,
                                     device_type_id=device_type_id)
        return _page(stmt.options(selectinload(Device.device_type)), pagination_parameters)

    @blp.arguments(DeviceInputSchema)
    @blp.response(201, DeviceSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data):
        """Register a device (managers, admins); it starts dirty."""
        device = devices.create_device(api_actor(), data, utcnow())
        db.session.commit()
        return _created(device, ".DeviceItem", device_id=device.id)


@blp.route("/devices/<int:device_id>", tags=["devices"])
class DeviceItem(MethodView):
    @blp.response(200, DeviceDetailSchema)
    @_errors(403, 404)
    def get(self, device_id):
        """One device with its history, newest first."""
        actor = api_actor()
        return _With(devices.get_device(actor, device_id), history=devices.device_history(actor, device_id))


@blp.route("/devices/<int:device_id>/status", tags=["devices"])
class DeviceStatus(MethodView):
    @blp.arguments(DeviceStatusInputSchema)
    @blp.response(200, DeviceSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data, device_id):
        """Quarantine, retire or send back to dirty by hand, with a reason (managers, admins)."""
        device = devices.set_device_status(api_actor(), device_id, data, utcnow())
        db.session.commit()
        return device


# --- sterilisers ---------------------------------------------------------------------------------

@blp.route("/sterilisers", tags=["sterilisers"])
class Sterilisers(MethodView):
    @blp.arguments(SteriliserQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, SteriliserSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, site_id, include_inactive):
        """List the sterilisers of the caller's sites, with their programmes."""
        stmt = devices.sterilisers_query(api_actor(), site_id=site_id, include_inactive=include_inactive)
        return _page(stmt.options(selectinload(Steriliser.programmes)), pagination_parameters)

    @blp.arguments(SteriliserInputSchema)
    @blp.response(201, SteriliserSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data):
        """Add a steriliser (managers, admins); it starts in service."""
        row = devices.create_steriliser(api_actor(), data, utcnow())
        db.session.commit()
        return _created(row, ".SteriliserItem", steriliser_id=row.id)


@blp.route("/sterilisers/<int:steriliser_id>", tags=["sterilisers"])
class SteriliserItem(MethodView):
    @blp.response(200, SteriliserSchema)
    @_errors(403, 404)
    def get(self, steriliser_id):
        """One steriliser with its programmes."""
        return devices.get_steriliser(api_actor(), steriliser_id)

    @blp.arguments(SteriliserInputSchema)
    @blp.response(200, SteriliserSchema)
    @_errors(400, 403, 404, 409, write=True)
    def put(self, data, steriliser_id):
        """Change a steriliser (managers, admins); every field is replaced."""
        row = devices.update_steriliser(api_actor(), steriliser_id, data)
        db.session.commit()
        return row


@blp.route("/sterilisers/<int:steriliser_id>/programmes", tags=["sterilisers"])
class SteriliserProgrammes(MethodView):
    @blp.arguments(ProgrammeInputSchema)
    @blp.response(201, ProgrammeSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data, steriliser_id):
        """Add a programme (managers, admins). Location is the steriliser, which lists its programmes."""
        row = devices.add_programme(api_actor(), steriliser_id, data)
        db.session.commit()
        return _created(row, ".SteriliserItem", steriliser_id=steriliser_id)


@blp.route("/sterilisers/<int:steriliser_id>/out-of-service", tags=["sterilisers"])
class SteriliserOutOfService(MethodView):
    @blp.arguments(OutOfServiceInputSchema)
    @blp.response(200, SteriliserSchema)
    @_errors(400, 403, 404, write=True)
    def post(self, data, steriliser_id):
        """Take a steriliser out of service by hand, with a reason (managers, admins); a passing test does not
        return it."""
        row = devices.take_out_of_service(api_actor(), steriliser_id, data["reason"], utcnow())
        db.session.commit()
        return row


# --- steriliser tests ----------------------------------------------------------------------------

@blp.route("/steriliser-tests", tags=["steriliser tests"])
class SteriliserTests(MethodView):
    @blp.arguments(SteriliserTestQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, SteriliserTestSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, steriliser_id, kind, result, date_from, date_to):
        """List the tests of the caller's sites, newest first."""
        stmt = services.tests_query(api_actor(), steriliser_id=steriliser_id, kind=kind, result=result,
                                    date_from=date_from, date_to=date_to)
        return _page(stmt, pagination_parameters)

    @blp.arguments(SteriliserTestInputSchema)
    @blp.response(201, SteriliserTestSchema)
    @blp.alt_response(200, schema=SteriliserTestSchema, description=REPLAY)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data):
        """Record a test (people and site API keys). A failed test takes the steriliser out of service; a failed
        spore test also opens a recall of every load since the last passing one.

        With an idempotency_key, a retry (same key, caller, site and values) answers 200 with the test stored the
        first time; the key used otherwise answers 409 with existing_id. The same test again (steriliser, kind,
        performed_at and result) answers 409 with existing_id."""
        test = services.record_test(api_actor(), data, utcnow())
        db.session.commit()
        if test.replayed:
            return test, 200
        return _created(test, ".SteriliserTestItem", test_id=test.id)


@blp.route("/steriliser-tests/<int:test_id>", tags=["steriliser tests"])
class SteriliserTestItem(MethodView):
    @blp.response(200, SteriliserTestSchema)
    @_errors(403, 404)
    def get(self, test_id):
        """One test."""
        return services.get_test(api_actor(), test_id)


@blp.route("/steriliser-tests/<int:test_id>/result", tags=["steriliser tests"])
class SteriliserTestResult(MethodView):
    @blp.arguments(TestResultInputSchema)
    @blp.response(200, SteriliserTestSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, test_id):
        """Read a pending spore test (people and site API keys); a fail recalls as above."""
        test = services.record_test_result(api_actor(), test_id, data, utcnow())
        db.session.commit()
        return test


# --- cycles --------------------------------------------------------------------------------------

@blp.route("/cycles", tags=["cycles"])
class Cycles(MethodView):
    @blp.arguments(CycleQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, CycleSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, steriliser_id, status, verdict, date_from, date_to):
        """The logbook: loads of the caller's sites, newest first."""
        stmt = services.cycles_query(api_actor(), steriliser_id=steriliser_id, status=status, verdict=verdict,
                                     date_from=date_from, date_to=date_to)
        return _page(stmt.options(selectinload(Cycle.packs)), pagination_parameters)

    @blp.arguments(CycleInputSchema)
    @blp.response(201, CycleDetailSchema)
    @blp.alt_response(200, schema=CycleDetailSchema, description=REPLAY)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data):
        """Record a load (people and site API keys) and answer the rules' verdict: awaiting_release when every
        rule passed, else failed with every reason. A figure outside what a steriliser can show is refused (422).
        A person's figures that fail the rules answer 409 with the reasons, and nothing is stored, unless
        confirm_failure is true; a site's API key is stored at once.

        With an idempotency_key, a retry (same key, caller, site and values) answers 200 with the load stored the
        first time, as it is now; the key used otherwise answers 409 with existing_id. A cycle_number already
        recorded for the steriliser answers 409 with existing_id."""
        confirm = data.pop("confirm_failure")
        cycle = services.record_cycle(api_actor(), data, utcnow(), confirm_failure=confirm)
        db.session.commit()
        if cycle.replayed:
            return cycle, 200
        return _created(cycle, ".CycleItem", cycle_id=cycle.id)


@blp.route("/cycles/<int:cycle_id>", tags=["cycles"])
class CycleItem(MethodView):
    @blp.response(200, CycleDetailSchema)
    @_errors(403, 404)
    def get(self, cycle_id):
        """One load with its verdict, packs and the corrections of its figures."""
        return services.get_cycle(api_actor(), cycle_id)


@blp.route("/cycles/<int:cycle_id>/corrections", tags=["cycles"])
class CycleCorrections(MethodView):
    @blp.arguments(CycleCorrectionInputSchema)
    @blp.response(201, CycleDetailSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, cycle_id):
        """Correct a load's mistyped figures with a reason (a manager or admin of its site, by session; never an API
        key), while none of its packs was used, it is in no recall and it was not posted by a data logger. The rules
        judge the corrected figures again: a failed load that now passes awaits release again (its packs loaded,
        its devices in reprocessing); a passing one that now fails fails with its packs. Answers the load with its
        corrections."""
        confirm = data.pop("confirm_failure")
        correction = services.correct_cycle(api_actor(), cycle_id, data, utcnow(), confirm_failure=confirm)
        db.session.commit()
        return _created(correction.cycle, ".CycleItem", cycle_id=cycle_id)


@blp.route("/cycles/<int:cycle_id>/release", tags=["cycles"])
class CycleRelease(MethodView):
    @blp.arguments(DecisionNoteInputSchema, required=False)
    @blp.response(200, CycleSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data, cycle_id):
        """Release a load the rules passed (a manager, or staff with in-date training; never an API key): its
        packs become sterile with their expiry."""
        cycle = services.release_cycle(api_actor(), cycle_id, utcnow(), data["note"])
        db.session.commit()
        return cycle


@blp.route("/cycles/<int:cycle_id>/fail", tags=["cycles"])
class CycleFail(MethodView):
    @blp.arguments(FailNoteInputSchema)
    @blp.response(200, CycleSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data, cycle_id):
        """Fail a load awaiting release, with the reason (people only): its packs can never be used."""
        cycle = services.fail_cycle(api_actor(), cycle_id, data["note"], utcnow())
        db.session.commit()
        return cycle


# --- reprocessing --------------------------------------------------------------------------------

@blp.route("/reprocessing/clean", tags=["reprocessing"])
class ReprocessingClean(MethodView):
    @blp.arguments(CleaningInputSchema)
    @blp.response(200, DeviceSchema(many=True))
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data):
        """Record that dirty devices were cleaned, and how (people only)."""
        rows = services.record_cleaning(api_actor(), data, utcnow())
        db.session.commit()
        return rows


@blp.route("/reprocessing/inspect", tags=["reprocessing"])
class ReprocessingInspect(MethodView):
    @blp.arguments(InspectionInputSchema)
    @blp.response(200, DeviceSchema(many=True))
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data):
        """Record the inspection of cleaned devices (people only); a failed one is quarantined."""
        rows = services.record_inspection(api_actor(), data, utcnow())
        db.session.commit()
        return rows


# --- packs ---------------------------------------------------------------------------------------

@blp.route("/packs", tags=["packs"])
class Packs(MethodView):
    @blp.arguments(PackQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, PackSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, site_id, status, cycle_id):
        """List the packs of the caller's sites, newest first."""
        stmt = services.packs_query(api_actor(), site_id=site_id, status=status, cycle_id=cycle_id)
        stmt = stmt.options(selectinload(Pack.items).selectinload(PackItem.device).selectinload(Device.device_type))
        now = utcnow()
        return [_pack_out(pack, now) for pack in _page(stmt, pagination_parameters)]

    @blp.arguments(PackInputSchema)
    @blp.response(201, PackSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data):
        """Pack cleaned and inspected devices of one site into a pouch or wrap with a new label (people only)."""
        now = utcnow()
        pack = services.create_pack(api_actor(), data, now)
        db.session.commit()
        return _created(_pack_out(pack, now), ".PackItemView", code=pack.label_code)


@blp.route("/packs/<code>", tags=["packs"])
class PackItemView(MethodView):
    @blp.response(200, PackDetailSchema)
    @_errors(403, 404, 422)
    def get(self, code):
        """One pack by its label: its state now, devices, load and history."""
        pack = services.find_pack(api_actor(), code)
        return _pack_out(pack, utcnow(), history=services.pack_history(pack))


@blp.route("/packs/<code>/compromise", tags=["packs"])
class PackCompromise(MethodView):
    @blp.arguments(CompromiseInputSchema)
    @blp.response(200, PackSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, code):
        """Mark a pack torn, wet, dropped or opened (people only); its devices go back to dirty."""
        now = utcnow()
        pack = services.compromise_pack(api_actor(), code, data, now)
        db.session.commit()
        return _pack_out(pack, now)


# --- recalls -------------------------------------------------------------------------------------

def _recall_loads():
    return selectinload(Recall.loads).selectinload(RecallLoad.cycle).selectinload(Cycle.packs)


@blp.route("/recalls", tags=["recalls"])
class Recalls(MethodView):
    @blp.arguments(RecallQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, RecallSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, open_only):
        """List the recalls of the caller's sites, newest first."""
        stmt = services.recalls_query(api_actor(), open_only=open_only)
        return _page(stmt.options(_recall_loads()), pagination_parameters)


@blp.route("/recalls/<int:recall_id>", tags=["recalls"])
class RecallItem(MethodView):
    @blp.response(200, RecallDetailSchema)
    @_errors(403, 404)
    def get(self, recall_id):
        """One recall with its loads and the checklist that must be done before it is closed."""
        recall = services.get_recall(api_actor(), recall_id)
        return _With(recall, checklist=services.recall_checklist(recall))


@blp.route("/recalls/<int:recall_id>/clients-contacted", tags=["recalls"])
class RecallClientsContacted(MethodView):
    @blp.arguments(RecallNoteInputSchema)
    @blp.response(200, RecallSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data, recall_id):
        """Record that the clients the recalled loads reached were contacted, and how (managers, admins)."""
        recall = services.mark_clients_contacted(api_actor(), recall_id, data["note"], utcnow())
        db.session.commit()
        return recall


@blp.route("/recalls/<int:recall_id>/close", tags=["recalls"])
class RecallClose(MethodView):
    @blp.arguments(RecallNoteInputSchema)
    @blp.response(200, RecallSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data, recall_id):
        """Close a recall once retested, enough spore tests passed and clients were contacted (managers, admins)."""
        recall = services.close_recall(api_actor(), recall_id, data["note"], utcnow())
        db.session.commit()
        return recall


# --- cycle records from the steriliser ----------------------------------------------------------------------

def _outcome_out(o) -> dict:
    curve = o.curve
    verdict = None
    if curve is not None:
        verdict = curve_verdict(curve)
    reasons = [] if curve is None else ([curve.refusal] if curve.refusal else list(curve.reasons))
    change = o.load_change
    load = None if change is None else {
        "cycle_id": change.cycle_id, "status_before": change.status_before, "status_after": change.status_after,
        "correction_id": change.id, "disagreements": list(change.disagreements or [])}
    return {"steriliser_serial": o.steriliser_serial, "cycle_number": o.cycle_number, "outcome": o.outcome,
            "curve_id": curve.id if curve is not None else None, "verdict": verdict, "reasons": reasons,
            "load": load}


def _result_out(result) -> dict:
    return {"sha256": result.sha256, "imported": result.count("imported"), "unchanged": result.count("unchanged"),
            "cycles": [_outcome_out(o) for o in result.outcomes]}


def _typed_load_ids(curves) -> dict[int, int]:
    """{curve id: id of the load typed with the same steriliser and cycle number} for a page of records."""
    curves = list(curves)
    if not curves:
        return {}
    rows = db.session.execute(select(Cycle.id, Cycle.steriliser_id, Cycle.cycle_number).where(
        Cycle.steriliser_id.in_({c.steriliser_id for c in curves}),
        Cycle.cycle_number.in_({c.cycle_number for c in curves})))
    by_key = {(steriliser_id, number): load_id for load_id, steriliser_id, number in rows}
    return {c.id: by_key[(c.steriliser_id, c.cycle_number)] for c in curves
            if (c.steriliser_id, c.cycle_number) in by_key}


@blp.route("/cycle-records", tags=["cycles"])
class CycleRecords(MethodView):
    @blp.arguments(CycleRecordQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, CycleRecordSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, steriliser_id):
        """The cycle records imported from the caller's sites' sterilisers, newest first (by the cycle's start),
        without their samples (GET /cycle-records/{curve_id}?samples=true has them)."""
        stmt = curve_services.curves_query(api_actor(), steriliser_id=steriliser_id).options(
            defer(CycleCurve.samples), defer(CycleCurve.machine_log), selectinload(CycleCurve.steriliser),
            selectinload(CycleCurve.programme), selectinload(CycleCurve.curve_file).defer(CurveFile.content))
        page = _page(stmt, pagination_parameters)
        loads = _typed_load_ids(page)
        return [_With(c, load_id=loads.get(c.id)) for c in page]

    @blp.arguments(CurveImportInputSchema)
    @blp.response(200, CurveImportResultSchema)
    @_errors(400, 403, 422, write=True)
    def post(self, data):
        """Import cycle records from the steriliser (a site's API key, or a person who records cycles): one or many
        cycles with their samples (docs/curve-format.md). Each new cycle is judged from its curve (holding time in
        the band, saturated steam from the pressure, refused as too sparse) and kept with the body, whose SHA-256
        is answered. A cycle already on record with the same curve changes nothing ("unchanged"); another curve
        under the same steriliser and cycle number is not imported ("conflict"). A body that can't be read as
        curves answers 422."""
        result = curve_services.import_curves(api_actor(), raw_body(), utcnow(), filename="api.json",
                                              media_type="application/json", error_field="cycles")
        db.session.commit()
        return _result_out(result)


FILE_BODY = {"required": True, "description": (
    "The file as the steriliser (or its USB export) wrote it: the generic CSV or JSON (docs/curve-format.md) or a "
    "SciCan STATCLAVE G4 cycleData JSON; the adapter is chosen from the content"),
    "content": {media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("text/csv", "application/json", "application/octet-stream")}}


@blp.route("/cycle-records/files", tags=["cycles"])
class CycleRecordFiles(MethodView):
    @blp.arguments(CurveFileQuerySchema, location="query", as_kwargs=True)
    @blp.doc(requestBody=FILE_BODY)
    @blp.response(200, CurveImportResultSchema)
    @_errors(400, 403, 404, 413, 422, write=True)
    def post(self, filename, steriliser_id):
        """Import a file of cycle records as it is (a data logger forwarding the steriliser's files): any format an
        adapter reads, one or many cycles, kept byte for byte under its SHA-256 like an upload on the screen. As
        POST /cycle-records otherwise: each cycle's outcome, the load it changed, "unchanged" for a cycle already
        on record. A file that can't be read answers 422 at `file` with the reason."""
        result = curve_services.import_curves(api_actor(), raw_body(), utcnow(), filename=filename,
                                              media_type=request.mimetype or "application/octet-stream",
                                              steriliser_id=steriliser_id)
        db.session.commit()
        return _result_out(result)


@blp.route("/cycle-records/<int:curve_id>", tags=["cycles"])
class CycleRecordItem(MethodView):
    @blp.arguments(CycleRecordItemQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, CycleRecordDetailSchema)
    @_errors(403, 404)
    def get(self, curve_id, samples):
        """One cycle record: its figures, verdict and reasons, its file's SHA-256, the load typed with the same
        number, and with ?samples=true its samples as stored."""
        curve = curve_services.get_curve(api_actor(), curve_id)
        load = curve_services.load_for_curve(curve)
        return _With(curve, load_id=load.id if load is not None else None,
                     samples=json.loads(curve.samples) if samples else None)


@blp.route("/cycle-records/<int:curve_id>/file", tags=["cycles"])
class CycleRecordFile(MethodView):
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="application/octet-stream", description=(
        "The file as it was imported, byte for byte (a body posted to POST /cycle-records is kept as a file "
        "too); its SHA-256 in X-Content-SHA256"), headers={"X-Content-SHA256": {
            "description": "The SHA-256 of the body, as hex", "schema": {"type": "string"}}})
    @_errors(403, 404)
    def get(self, curve_id):
        """The file a cycle record was imported from, as it was imported."""
        actor = api_actor()
        row = curve_services.get_curve_file(actor, curve_services.get_curve(actor, curve_id).curve_file_id)
        name = "".join(c for c in (row.filename or "") if c.isprintable() and c not in '/\\"') or \
            f"cycle-records-{row.id}"
        response = send_file(io.BytesIO(row.content), mimetype="application/octet-stream",
                             as_attachment=True, download_name=name, etag=False, last_modified=None, max_age=0)
        response.headers["X-Content-SHA256"] = row.sha256
        return response
