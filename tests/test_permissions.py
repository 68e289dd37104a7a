"""Role × page: every page names the action it needs, and each role gets exactly what PERMISSIONS allows.

One test walks every page with every role on the demo data (so the ids in the URLs are real records of
the role's own site), and lists every mismatch at once.
"""
import re

from sqlalchemy import select

from compliance.auth.models import ApiKey, TabletDevice
from compliance.auth.permissions import role_can
from compliance.extensions import db as _db
from compliance.sites.models import Site, TrainingRecord, User

PUBLIC = {"static", "health.favicon", "health.healthz", "setup.setup_page", "auth.home", "auth.login", "auth.logout",
          "auth.tablet", "auth.tablet_pin", "auth.enrol_from_link", "auth.tablet_revoked", "accounts.forgot_password",
          "accounts.reset_password", "accounts.accept_invitation", "offline.service_worker", "offline.offline_page"}
DEMO_USERS = {"staff": "sari@demo.clinic", "manager": "manager@demo.clinic", "admin": "admin@demo.clinic",
              "auditor": "auditor@demo.clinic"}


def _page_rules(app):
    return [r for r in app.url_map.iter_rules()
            if not r.rule.startswith("/api/") and r.endpoint not in PUBLIC]


def test_every_page_names_its_required_action(app):
    missing = [r.endpoint for r in _page_rules(app) if not getattr(app.view_functions[r.endpoint],
                                                                   "required_action", None)]
    assert missing == []


def _first(model, *where):
    return _db.session.scalar(select(model).where(*where).order_by(model.id).limit(1))


def _ids(site):
    """A real record of the site for each URL parameter name (999999 where the demo has none)."""
    from compliance.checklists.models import ChecklistRun, ChecklistTemplate, CorrectiveAction
    from compliance.devices.models import Device, DeviceType, Steriliser
    from compliance.schedule.models import Obligation, OutboxMessage
    from compliance.sterilisation.models import Cycle, CycleCurve, Pack, Recall, SteriliserTest
    from compliance.stock.models import ItemType, Lot
    from compliance.treatments.models import AdverseEvent, Client, GateAttempt, LookBack, SharpsContainer, Treatment

    def row_id(model, *where):
        row = _first(model, *where)
        return row.id if row is not None else 999999

    pack = _first(Pack, Pack.site_id == site.id)
    return {
        "site_id": site.id, "room_id": site.rooms[0].id,
        "user_id": _first(User, User.email == "budi@demo.clinic").id,  # not a signed-in role: POSTs deactivate it
        "record_id": row_id(TrainingRecord),
        "device_id": row_id(Device, Device.site_id == site.id),
        "tablet_id": row_id(TabletDevice), "key_id": row_id(ApiKey),
        "type_id": row_id(DeviceType), "steriliser_id": row_id(Steriliser, Steriliser.site_id == site.id),
        "cycle_id": row_id(Cycle, Cycle.site_id == site.id), "test_id": row_id(SteriliserTest),
        "recall_id": row_id(Recall), "pack_id": pack.id if pack else 999999,
        "curve_id": row_id(CycleCurve, CycleCurve.site_id == site.id),
        "file_id": curve.curve_file_id if (curve := _first(CycleCurve, CycleCurve.site_id == site.id)) else 999999,
        "code": pack.label_code if pack else "PK-NONE2345",
        "lot_id": row_id(Lot, Lot.site_id == site.id), "item_type_id": row_id(ItemType),
        "treatment_id": row_id(Treatment, Treatment.site_id == site.id),
        "client_id": row_id(Client), "attempt_id": row_id(GateAttempt), "look_back_id": row_id(LookBack),
        "event_id": row_id(AdverseEvent), "container_id": row_id(SharpsContainer),
        "template_id": row_id(ChecklistTemplate), "run_id": row_id(ChecklistRun, ChecklistRun.site_id == site.id),
        "action_id": row_id(CorrectiveAction, CorrectiveAction.site_id == site.id),
        "obligation_id": row_id(Obligation, Obligation.site_id == site.id),
        "message_id": row_id(OutboxMessage, OutboxMessage.site_id == site.id),
        "rule_id": "spore-test", "key": "frequency_days",  # a site number of the guideline pack
    }


def test_each_role_gets_what_the_permission_table_allows(app, client, runner, db):
    assert runner.invoke(args=["demo"]).exit_code == 0
    site = _db.session.scalar(select(Site).where(Site.name == "Jakarta Kemang"))
    # A tablet and an API key so that their pages have a row to act on.
    admin = _db.session.scalar(select(User).where(User.email == DEMO_USERS["admin"]))
    _db.session.add(TabletDevice(site_id=site.id, name="T", token_hash="0" * 64))
    _db.session.add(ApiKey(site_id=site.id, name="logger", prefix="abcd", key_hash="1" * 64, created_by_id=admin.id))
    _db.session.commit()
    ids = _ids(site)
    mismatches = []
    for rule in _page_rules(app):
        url = rule.rule
        for name in re.findall(r"<(?:\w+:)?(\w+)>", url):
            url = re.sub(rf"<(?:\w+:)?{name}>", str(ids.get(name, 999999)), url)
        method = "GET" if "GET" in rule.methods else "POST"
        action = app.view_functions[rule.endpoint].required_action
        for role, email in DEMO_USERS.items():
            user_id = _db.session.scalar(select(User.id).where(User.email == email))
            with client.session_transaction() as session:
                session.clear()
                session["_user_id"] = str(user_id)
                session["_fresh"] = True
            response = client.get(url) if method == "GET" else client.form_post(url, {})
            allowed = role_can(role, action)
            refused = response.status_code in (401, 403) or "/login" in response.headers.get("Location", "")
            if allowed and (refused or response.status_code >= 500):
                mismatches.append(f"{role} {method} {url} ({action}): {response.status_code}, expected allowed")
            if not allowed and response.status_code != 403:
                mismatches.append(f"{role} {method} {url} ({action}): {response.status_code}, expected 403")
    assert mismatches == [], "\n".join(mismatches)
