"""The OpenAPI 3 document at /api/v1/openapi.json describes every endpoint, how to authenticate, and no secrets."""
import re

import pytest

from .test_checklists_api import ENDPOINTS as CHECKLIST_ENDPOINTS
from .test_schedule_api import ENDPOINTS as SCHEDULE_ENDPOINTS
from .test_site_numbers_api import ENDPOINTS as SITE_NUMBER_ENDPOINTS
from .test_sterilisation_api import ENDPOINTS as STERILISATION_ENDPOINTS
from .test_treatments_api import ENDPOINTS as TREATMENT_ENDPOINTS

ENDPOINTS = {
    "/api/v1/me": {"get"},
    "/api/v1/sites": {"get", "post"},
    "/api/v1/sites/{site_id}": {"get", "put"},
    "/api/v1/sites/{site_id}/deactivate": {"post"},
    "/api/v1/rooms": {"get", "post"},
    "/api/v1/rooms/{room_id}": {"get", "put"},
    "/api/v1/rooms/{room_id}/deactivate": {"post"},
    "/api/v1/users": {"get", "post"},
    "/api/v1/users/{user_id}": {"get", "put"},
    "/api/v1/users/{user_id}/deactivate": {"post"},
    "/api/v1/users/{user_id}/pin": {"post"},
    "/api/v1/training": {"get", "post"},
    "/api/v1/training/{record_id}": {"get"},
    "/api/v1/training/{record_id}/correct": {"post"},
    "/api/v1/training/{record_id}/withdraw": {"post"},
    **STERILISATION_ENDPOINTS,
    **TREATMENT_ENDPOINTS,
    **CHECKLIST_ENDPOINTS,
    **SCHEDULE_ENDPOINTS,
    **SITE_NUMBER_ENDPOINTS,
}
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture
def spec(client, site):
    # Public: no credentials. (An organisation exists: before the first run's set-up, every API path answers 503.)
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_openapi_document_is_served_as_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] and spec["info"]["version"] == "v1"


def test_openapi_lists_every_endpoint_and_method(spec):
    assert {path: set(item) & HTTP_METHODS for path, item in spec["paths"].items()} == ENDPOINTS


def test_every_api_route_of_the_app_is_documented(app, spec):
    documented = {(path, method) for path, method, _ in _operations(spec)}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule.endswith("openapi.json"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, f"{method} {rule.rule} is missing from the document"


def test_openapi_declares_cookie_csrf_and_bearer_security_schemes(spec):
    schemes = spec["components"]["securitySchemes"]
    assert schemes["sessionCookie"] == {**schemes["sessionCookie"], "type": "apiKey", "in": "cookie",
                                        "name": "session"}
    assert schemes["csrfToken"] == {**schemes["csrfToken"], "type": "apiKey", "in": "header",
                                    "name": "X-CSRFToken"}
    assert schemes["siteApiKey"] == {**schemes["siteApiKey"], "type": "http", "scheme": "bearer"}
    assert schemes["siteApiKeyHeader"] == {**schemes["siteApiKeyHeader"], "type": "apiKey", "in": "header",
                                           "name": "X-API-Key"}
    assert spec["security"] == [{"sessionCookie": []}, {"siteApiKey": []}, {"siteApiKeyHeader": []}]


def test_every_write_operation_requires_the_csrf_header_with_a_session(spec):
    writes = [(path, method, op) for path, method, op in _operations(spec) if method != "get"]
    assert len(writes) == sum(len(methods - {"get"}) for methods in ENDPOINTS.values()) == 13 + 21 + 15 + 4 + 3 + 2
    for path, method, operation in writes:
        assert operation["security"] == [{"sessionCookie": [], "csrfToken": []}, {"siteApiKey": []},
                                         {"siteApiKeyHeader": []}], path


def test_every_operation_documents_401_and_lists_document_pagination(spec):
    for path, method, operation in _operations(spec):
        assert "401" in operation["responses"], f"{method} {path}"
    for path in ("/api/v1/sites", "/api/v1/rooms", "/api/v1/users", "/api/v1/training"):
        get = spec["paths"][path]["get"]
        assert {"page", "page_size"} <= {p["name"] for p in get["parameters"]}
        assert "X-Pagination" in get["responses"]["200"]["headers"]
        assert get["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"


def test_openapi_documents_filters_of_the_lists(spec):
    def names(path):
        return {p["name"] for p in spec["paths"][path]["get"]["parameters"]}

    assert {"site_id", "q"} <= names("/api/v1/rooms")
    assert {"site_id", "role", "q"} <= names("/api/v1/users")
    assert {"user_id", "course"} <= names("/api/v1/training")


def test_openapi_schemas_never_expose_password_or_pin_hashes(spec):
    schemas = spec["components"]["schemas"]
    for name, schema in schemas.items():
        assert not {"password_hash", "pin_hash"} & set(schema.get("properties", {})), name
    assert schemas["UserInput"]["properties"]["pin"]["writeOnly"] is True
    assert schemas["UserInput"]["properties"]["password"]["writeOnly"] is True
    assert {"site_ids", "has_pin"} <= set(schemas["User"]["properties"])
    assert {"is_active", "replaced_by_id", "void_reason"} <= set(schemas["Training"]["properties"])


def test_openapi_inputs_state_max_lengths_and_refuse_unknown_fields(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["SiteInput"]["properties"]["name"]["maxLength"] == 200
    assert schemas["RoomInput"]["properties"]["name"]["maxLength"] == 120
    assert schemas["UserInput"]["properties"]["email"]["maxLength"] == 254
    assert schemas["TrainingCorrection"]["properties"]["reason"]["maxLength"] == 2000
    for name in ("SiteInput", "RoomInput", "UserInput", "PinReset", "TrainingInput", "TrainingCorrection",
                 "TrainingWithdrawal"):
        assert schemas[name]["additionalProperties"] is False, name


def test_openapi_documents_the_error_body_the_api_answers(spec):
    unauthorized = spec["components"]["responses"]["UNAUTHORIZED"]
    assert unauthorized["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ApiError"}
    assert set(spec["components"]["schemas"]["ApiError"]["properties"]) == {"code", "message", "errors", "rule",
                                                                            "existing_id"}
