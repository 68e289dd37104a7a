"""Releases and fails of loads are conditional UPDATEs (two tablets, one decision): each still lands in the
audit trail, with the values before and after and who decided."""
from sqlalchemy import select

from compliance.audit.models import AuditEntry
from compliance.audit.services import verify
from compliance.sterilisation import services

from tests.sterilisation.conftest import NOW, good_cycle


def _decisions(db, cycle):
    return list(db.session.scalars(select(AuditEntry).where(
        AuditEntry.entity_type == "cycles", AuditEntry.entity_id == str(cycle.id), AuditEntry.action == "update")
        .order_by(AuditEntry.seq)))


def test_a_release_is_audited_with_before_and_after(db, actor, ready_steriliser, packed, manager):
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()]), NOW)
    services.release_cycle(actor, cycle.id, NOW, note="printout checked")
    db.session.commit()
    [entry] = [e for e in _decisions(db, cycle) if (e.after or {}).get("status") == "released"]
    assert entry.before["status"] == "awaiting_release" and entry.after["decision_note"] == "printout checked"
    assert entry.actor_user_id == manager.id and entry.site_id == cycle.site_id
    assert verify() == []


def test_a_fail_is_audited(db, actor, ready_steriliser, packed):
    cycle = services.record_cycle(actor, good_cycle(ready_steriliser, [packed()]), NOW)
    services.fail_cycle(actor, cycle.id, "wet packs", NOW)
    db.session.commit()
    [entry] = [e for e in _decisions(db, cycle) if (e.after or {}).get("status") == "failed"]
    assert (entry.before["status"], entry.after["decision_note"]) == ("awaiting_release", "wet packs")


def test_a_logbook_csv_export_is_audited(db, manager, login_as, ready_steriliser):
    response = login_as(manager).get("/logbook?tab=tests&format=csv")
    assert response.status_code == 200 and response.get_data()
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export"))
    assert (entry.entity_id, entry.after["format"], entry.actor_user_id) == ("logbook-tests", "csv", manager.id)
