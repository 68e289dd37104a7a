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
`Authorization: Bearer <key>`. A key reads its own site only; it may post steriliser tests, their
results and cycles (an autoclave's data logger), and nothing else: people decide releases, receive
stock and treat clients.

**Scope.** Anything outside the caller's sites answers 404, as if it did not exist.

**Lists** are paginated: `?page=` (from 1) and `?page_size=` (default 25, at most 100). The body is a
JSON array; the `X-Pagination` header holds `{"total", "total_pages", "page", "first_page",
"last_page", "previous_page", "next_page"}`.

**Errors** are `{"code", "message", "errors"}`. A request that cannot be read (wrong type, too
long, not one of the choices, a field this endpoint does not know) answers 422 with
`errors: {"json": {field: [messages]}}` (or `"query"`). A refusal by the business rules names the
field directly: `errors: {field: [messages]}` (409 for a duplicate, 422 for an invalid value,
403 for a role that may not, 404 for something out of reach). Nothing is stored when an error is
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
}


def init_api(app: Flask) -> None:
    from .schemas import ApiErrorSchema

    app.config.setdefault("API_TITLE", "Clinic compliance API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": DESCRIPTION},
        "security": [{"sessionCookie": []}, {"siteApiKey": []}],
    })
    # Document the error body compliance/web.py actually answers with (no "status" field, an optional "rule").
    api.ERROR_SCHEMA = ApiErrorSchema
    api.init_app(app)
    cookie = dict(SECURITY_SCHEMES["sessionCookie"], name=app.config.get("SESSION_COOKIE_NAME", "session"))
    for name, scheme in {**SECURITY_SCHEMES, "sessionCookie": cookie}.items():
        api.spec.components.security_scheme(name, scheme)

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
