"""schemathesis over the whole OpenAPI document, in-process, twice: with a site's API key (a data logger) and with a
manager's session (cookie and CSRF header). Every operation gets generated requests — valid ones and ones that
break the schema (wrong types, out-of-range numbers, odd strings) — and every answer must be no server error and
match what the document says of it; an exception in the app stops the run with that exception. Bounded:
FUZZ_EXAMPLES examples per operation and generation mode (positive and negative; default 12, about 4,800 requests
in 45 s on SQLite; 60 made 24,000 requests in 3 min 12 s, with no failure)."""
from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from compliance.auth.actor import actor_for_user
from compliance.auth.services import create_api_key
from compliance.extensions import db as _db
from compliance.timeutil import utcnow
from tests.conftest import PASSWORD

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
CHECKS = (not_a_server_error, response_schema_conformance)


def _fuzz(app, headers: dict[str, str], cookies: dict[str, str] | None = None,
          only: str | None = None) -> tuple[Counter, list[str]]:
    """Run every operation of the document (or those whose label contains `only`); return the statuses answered
    and the failures seen."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    calls, statuses = Counter(), Counter()
    operations = [result.ok() for result in schema.get_all_operations() if only is None or only in result.ok().label]
    for operation, mode in ((op, mode) for op in operations for mode in GenerationMode):

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case):
            response = case.call(headers=headers, cookies=cookies)
            calls[operation.label] += 1
            statuses[response.status_code] += 1
            for check in CHECKS:
                try:
                    case.validate_response(response, checks=[check])
                except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a group of the failures
                    failures.append(f"{operation.label} → {response.status_code}: {str(exc)[:400]}")
                    break

        run()
        _db.session.rollback()  # the app's requests commit their own work; nothing of ours is left open
    return statuses, failures


@pytest.fixture
def fuzz_world(db, site, manager, admin, nurse, make_training):
    make_training(nurse)
    row, key = create_api_key(actor_for_user(admin), site.id, "fuzzing logger", utcnow())
    _db.session.commit()
    return key


def test_a_site_key_finds_no_server_error_and_no_answer_against_the_document(app, fuzz_world):
    statuses, failures = _fuzz(app, {"Authorization": f"Bearer {fuzz_world}"})
    assert failures == [], "\n".join(failures)
    assert sum(statuses.values()) > 1000 and statuses[200] and statuses[403] and statuses[422]


def _signed_in(client, person) -> tuple[dict, dict]:
    """The headers and cookies of a real password sign-in (its session cookie and CSRF token)."""
    response = client.form_post("/login", {"email": person.email, "password": PASSWORD})
    assert response.status_code == 302
    token = client.csrf_token()
    return {"X-CSRFToken": token}, {"session": client.get_cookie("session").value}


def test_a_managers_session_finds_no_server_error_and_no_answer_against_the_document(app, client, manager,
                                                                                     fuzz_world):
    statuses, failures = _fuzz(app, *_signed_in(client, manager))
    assert failures == [], "\n".join(failures)
    # Signed in for real: reads answer 200 and writes get through (201), bad input is refused (422).
    assert sum(statuses.values()) > 1000 and statuses[200] and statuses[201] and statuses[422]


def test_the_fuzzing_sees_a_server_error_and_an_answer_against_the_document(app, client, manager, fuzz_world,
                                                                           monkeypatch):
    """The harness itself can fail: a site whose fields are all null breaks the document, and a bug in a view
    (a 500 in production) stops the run with the bug's own exception."""
    from compliance.api import sites as api_sites

    headers, cookies = _signed_in(client, manager)

    class Blank:  # every field null, which the document says none of them may be
        def __getattr__(self, name):
            return None

    monkeypatch.setattr(api_sites.services, "get_site", lambda actor, site_id: Blank())
    _statuses, failures = _fuzz(app, headers, cookies, only="GET /api/v1/sites/{site_id}")
    assert failures and all("GET /api/v1/sites/{site_id}" in f for f in failures)
    monkeypatch.undo()

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(api_sites.services, "sites_query", broken)
    with pytest.raises(ZeroDivisionError):  # schemathesis re-raises what the app raised, failing the run
        _fuzz(app, headers, cookies, only="GET /api/v1/sites")
