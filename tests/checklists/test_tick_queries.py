"""The tick (one tap answering one checklist item on the tablet) stays cheap: a bounded number of SQL statements
in one transaction, the same with 10 answers already in the run as with 60. Statements are counted with an
SQLAlchemy `before_cursor_execute` listener (a behaviour bound, not a timing; bench/tick_profile.py shows them)."""
from __future__ import annotations

import re
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from compliance.audit.models import AuditEntry
from compliance.audit.services import verify
from compliance.auth.actor import actor_for_user
from compliance.checklists import services
from compliance.checklists.models import Answer
from compliance.timeutil import utcnow
from tests.conftest import PIN

HTMX = {"HX-Request": "true"}
ITEMS = 70
# Measured: 18 on SQLite (its BEGIN IMMEDIATE, the savepoint's two, the audit head's three), 16 on PostgreSQL
# (the audit entries and the head's move are one statement there). It was 29, in two transactions.
MAX_STATEMENTS = 18


@contextmanager
def statements(db):
    """Every SQL statement the request sends while the block runs, and the transactions it begins. (On
    PostgreSQL the audit entries are then sealed into their chain by a short transaction of its own, after the
    request's commit, on a connection marked `audit_sealer`: not the request's, and not counted here.)"""
    seen: list[str] = []
    begun: list[int] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not conn.get_execution_options().get("audit_sealer"):
            seen.append(statement)

    def begin(conn):
        if not conn.get_execution_options().get("audit_sealer"):
            begun.append(1)

    event.listen(db.engine, "before_cursor_execute", record)
    event.listen(db.engine, "begin", begin)
    try:
        yield seen, begun
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
        event.remove(db.engine, "begin", begin)


@pytest.fixture
def run(db, client, enrol_tablet, site, nurse):
    """A run of a checklist of ITEMS tick items, started by the nurse signed in on the site's tablet."""
    template = services.create_template(site.organisation_id, {
        "key": "many_ticks", "kind": "before_client", "title": {"en": "Many ticks", "id": "Banyak centang"},
        "items": [{"key": f"tick_{n}", "kind": "tick", "en": f"Tick {n}", "id": f"Centang {n}"}
                  for n in range(ITEMS)]}, None, utcnow())
    db.session.commit()
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 302
    response = client.form_post("/tablet/checklists/start", {"template_id": template.id})
    run_id = int(re.search(r"/tablet/runs/(\d+)$", response.headers["Location"]).group(1))
    return services.get_run(actor_for_user(nurse), run_id)


def answer_directly(db, nurse, run, items) -> None:
    actor = actor_for_user(nurse)
    for item in items:
        services.answer(actor, run.id, {"item_id": item.id, "value": "yes", "idempotency_key": uuid.uuid4().hex},
                        utcnow())
    db.session.commit()


def tick(client, run_id: int, item_id: int, key: str | None = None):
    return client.form_post(f"/tablet/runs/{run_id}/answers",
                            {"item_id": item_id, "value": "yes", "idempotency_key": key or uuid.uuid4().hex},
                            headers=HTMX)


def measured_tick(db, client, run_id: int, item_id: int):
    client.csrf_token()  # outside the count: the token the form carries comes from a page
    token = client.csrf_token()
    with statements(db) as (seen, begun):
        response = client.post(f"/tablet/runs/{run_id}/answers", headers=HTMX, data={
            "item_id": item_id, "value": "yes", "idempotency_key": uuid.uuid4().hex, "csrf_token": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response, list(seen), len(begun)


def test_an_answer_takes_a_bounded_number_of_statements_in_one_transaction_whatever_the_run_holds(
        db, client, nurse, run):
    items = list(run.version.items)
    run_id = run.id
    answer_directly(db, nurse, run, items[:10])
    _response, at_10, transactions = measured_tick(db, client, run_id, items[10].id)
    assert transactions == 1, at_10
    assert len(at_10) <= MAX_STATEMENTS, "\n".join(at_10)

    answer_directly(db, nurse, services.get_run(actor_for_user(nurse), run_id), items[11:60])
    response, at_60, transactions = measured_tick(db, client, run_id, items[60].id)
    assert transactions == 1
    assert len(at_60) == len(at_10), "\n".join(at_60)
    # Only the answered item comes back, with the progress counted over the whole run.
    html = response.get_data(as_text=True)
    assert html.count('class="checklist-item') == 1 and 'id="item-tick_60"' in html
    assert "61 of 70 done" in html
    # What was stored is stored as before: the answer, and its audit entry in an unbroken chain.
    assert db.session.scalar(select(func.count()).select_from(Answer).where(Answer.run_id == run_id)) == 61
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.entity_type == "answers")) == 61
    assert verify() == []


def test_the_last_answer_completes_the_run_in_the_answer_sent_back(db, client, nurse, run):
    items = list(run.version.items)
    run_id = run.id
    answer_directly(db, nurse, run, items[:-1])
    key = uuid.uuid4().hex
    html = tick(client, run_id, items[-1].id, key).get_data(as_text=True)
    assert "70 of 70 done" in html and "run-complete" in html
    assert services.get_run(actor_for_user(nurse), run_id).completed_at is not None
    # A replay of the same tap (told from the run's answers) is answered with the same row, stores nothing more
    # and does not announce the completion twice.
    again = tick(client, run_id, items[-1].id, key)
    assert again.status_code == 200 and 'class="run-complete"' not in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Answer).where(Answer.run_id == run_id)) == ITEMS
    # The key of another item's answer is refused, and nothing is stored.
    assert tick(client, run_id, items[0].id, key).status_code == 409
    assert db.session.scalar(select(func.count()).select_from(Answer).where(Answer.run_id == run_id)) == ITEMS
