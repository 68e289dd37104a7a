"""The JSON API under /api/v1, documented by an OpenAPI 3 document at /api/v1/openapi.json."""
from __future__ import annotations

from flask import Flask

from ..extensions import api, csrf

DESCRIPTION = """\
Sites, rooms, people and training records; reusable devices, sterilisers, steriliser tests,
sterilisation cycles (loads), packs and recalls; single-use item types, lots and unit labels, sharps
containers, clients, treatments with the point-of-use gate, adverse events and look-back; checklists (versioned
templates, runs, answers with idempotency keys, corrections, corrective actions); obligations (what falls
due when, paused, resumed and snoozed by a manager), the email outbox and each site's own guideline numbers
(within the range the pack allows, with their history) of one organisation.

**Authentication.** Either the session cookie of a signed-in person (writes also need the
`X-CSRFToken` header, the token of the page's `csrf-token` meta tag), or a site's API key as
`Authorization: Bearer <key>` (or, for a data logger that can only add a header of its own, as
`X-API-Key: <key>`; when both are sent, `Authorization` is used).

**A site's API key** is an autoclave's data logger. It reads its own site's sterilisers (with their
programmes), steriliser tests, cycles and packs, and `/me`; it posts steriliser tests, spore test results and
cycles. Everything else answers 403 to it: people, training, rooms, sites, devices, recalls, treatments,
checklists, obligations and the site's numbers. People decide releases, receive stock and treat clients.

**Scope.** Anything outside the caller's sites answers 404, as if it did not exist.

**Idempotency.** `POST /steriliser-tests` and `POST /cycles` take an optional `idempotency_key` (8 to 64
characters, made by the client, one per record; as for checklist answers). A retry with the same key, from the
same caller, for the same site and with the same values stores nothing new and answers 200 with the record
stored the first time; the key sent with other values, for another site or by another caller answers 409 with
`existing_id`. Two requests with one key at the same moment store one record.

**Lists** are paginated: `?page=` (from 1) and `?page_size=` (default 25, at most 100). The body is a
JSON array; the `X-Pagination` header is JSON text, e.g.
`{"total": 42, "total_pages": 2, "first_page": 1, "last_page": 2, "page": 1, "next_page": 2}`
(`previous_page` and `next_page` only where there is one; an empty list has `total` and `total_pages` only).

**Errors** are `{"code", "message", "errors"}`. A request that cannot be read (wrong type, too
long, not one of the choices, a field this endpoint does not know) answers 422 with
`errors: {"json": {field: [messages]}}` (or `"query"`). A refusal by the business rules names the
field directly: `errors: {field: [messages]}` (409 for a duplicate, 422 for an invalid value,
403 for a role that may not, 404 for something out of reach); a 409 for a duplicate (a cycle number
recorded before, the same steriliser test again, an idempotency key used for another request, a name, serial,
label, checklist key or email taken) adds `existing_id`, the id of the record that exists, when the caller may
read it. A body over 16 MB answers 413
and a URL over 4096 characters 414, both as JSON. Nothing is stored when an error is
answered, with one exception: when the point-of-use gate refuses a pack or a unit, it answers 409 with
`{"code", "message", "rule", "reasons": [{rule, code, values, message}], "attempt_id"}` and the
refused attempt is stored (nothing is used); a manager may override it by its `attempt_id`.
"""

# Reads: either scheme. Writes add csrfToken to the cookie (see compliance/api/sites.py).
SECURITY_SCHEMES = {
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session",
                      "description": "The session cookie of a person signed in at /login"},
    "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                  "description": "Needed with the session cookie on every write"},
    "siteApiKey": {"type": "http", "scheme": "bearer",
                   "description": "A site's API key (ck_...), made by an admin; reads its own site only"},
    "siteApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                         "description": "The same site API key in a header of its own, for a data logger that "
                                        "cannot set Authorization (Authorization wins when both are sent)"},
}


def init_api(app: Flask) -> None:
    from .blueprint import PAGINATION_HEADER, PAGINATION_HEADER_ID
    from .schemas import ApiErrorSchema

    app.config.setdefault("API_TITLE", "Clinic compliance API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": DESCRIPTION},
        "security": [{"sessionCookie": []}, {"siteApiKey": []}, {"siteApiKeyHeader": []}],
    })
    # Document the error body compliance/web.py actually answers with (no "status" field, an optional "rule").
    api.ERROR_SCHEMA = ApiErrorSchema
    api.init_app(app)
    cookie = dict(SECURITY_SCHEMES["sessionCookie"], name=app.config.get("SESSION_COOKIE_NAME", "session"))
    for name, scheme in {**SECURITY_SCHEMES, "sessionCookie": cookie}.items():
        api.spec.components.security_scheme(name, scheme)
    api.spec.components.header(PAGINATION_HEADER_ID, PAGINATION_HEADER)

    from .checklists import TAGS as CHECKLIST_TAGS
    from .checklists import blp as checklists_blp
    from .guidelines import TAGS as GUIDELINE_TAGS
    from .guidelines import blp as guidelines_blp
    from .schedule import TAGS as SCHEDULE_TAGS
    from .schedule import blp as schedule_blp
    from .sites import blp as sites_blp
    from .sterilisation import TAGS as STERILISATION_TAGS
    from .sterilisation import blp as sterilisation_blp
    from .treatments import TAGS as TREATMENT_TAGS
    from .treatments import blp as treatments_blp

    # CSRF is checked by the API's own auth hook: required for cookie sessions, not for API keys.
    csrf.exempt(sites_blp)
    api.register_blueprint(sites_blp)
    csrf.exempt(sterilisation_blp)
    api.register_blueprint(sterilisation_blp)
    csrf.exempt(treatments_blp)
    api.register_blueprint(treatments_blp)
    csrf.exempt(checklists_blp)
    api.register_blueprint(checklists_blp)
    csrf.exempt(schedule_blp)
    api.register_blueprint(schedule_blp)
    csrf.exempt(guidelines_blp)
    api.register_blueprint(guidelines_blp)
    for tag in STERILISATION_TAGS + TREATMENT_TAGS + CHECKLIST_TAGS + SCHEDULE_TAGS + GUIDELINE_TAGS:
        api.spec.tag(tag)
