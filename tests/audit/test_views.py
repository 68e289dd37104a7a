"""The audit log screen: who may read it, what they see, and a verification on demand."""
from datetime import datetime, timezone

from sqlalchemy import update

from compliance.audit.models import AuditEntry
from compliance.auth.actor import actor_for_user
from compliance.treatments.services import create_client

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


def _client_with_a_name(db, site, manager):
    client = create_client(actor_for_user(manager), {"site_id": site.id, "name": "Siti Rahayu",
                                                     "phone": "+62 812 0000 1111"}, NOW)
    db.session.commit()
    return client


def test_a_manager_reads_the_log_with_client_details(db, site, manager, login_as):
    client = _client_with_a_name(db, site, manager)
    page = login_as(manager).get("/audit?entity=clients")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert client.code in html and "Siti Rahayu" in html


def test_an_auditor_reads_the_log_but_no_client_name_or_phone(db, site, manager, auditor, login_as):
    client = _client_with_a_name(db, site, manager)
    html = login_as(auditor).get("/audit").get_data(as_text=True)
    assert client.code in html
    assert "Siti Rahayu" not in html and "0000 1111" not in html and "[hidden]" in html


def test_staff_may_not_read_the_log(db, site, nurse, login_as):
    assert login_as(nurse).get("/audit").status_code == 403


def test_another_organisations_entries_are_not_listed(db, site, other_site, manager, outsider, login_as):
    _client_with_a_name(db, site, manager)
    html = login_as(outsider).get("/audit?entity=clients").get_data(as_text=True)
    assert "Siti Rahayu" not in html


def test_verify_on_demand_says_intact_then_names_the_broken_entry(db, site, manager, login_as):
    _client_with_a_name(db, site, manager)
    browser = login_as(manager)
    assert "The chain is intact" in browser.get("/audit?verify=1").get_data(as_text=True)
    db.session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(actor_label="someone else"))
    db.session.commit()
    html = browser.get("/audit?verify=1").get_data(as_text=True)
    assert "The chain is broken at entry 1" in html
