"""Readings are never rounded: a decimal with more places than its column stores is refused, by the API (422 naming
the field) and by the tablet's forms alike, and nothing is stored. The API's decimal properties are found by walking
the served OpenAPI document, so that a new one cannot be left out."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from sqlalchemy import func, select

from compliance.errors import Invalid
from compliance.labels import FIELD_LABELS
from compliance.sterilisation.models import Cycle, SteriliserTest
from compliance.validation import DecimalRefused, decimal, parse_decimal
from tests.conftest import PIN
from tests.treatments.conftest import (  # noqa: F401  (fixtures)
    NOW,
    actor,
    add_test,
    client_row,
    make_device,
    make_steriliser,
    packed,
    ready_steriliser,
    start,
    sterile_pack,
    trained_nurse,
)

V1 = "/api/v1"
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def row_counts(db):
    """The number of rows of every table (the domain snapshot leaves some out, e.g. the audit trail)."""

    def take() -> dict[str, int]:
        db.session.commit()
        return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables}

    return take


# --- the one parsing function ----------------------------------------------------------------------

@pytest.mark.parametrize("raw, places, expected", [
    ("134.5", 1, Decimal("134.5")),
    ("134", 1, Decimal("134.0")),
    (" 134,5 ", 1, Decimal("134.5")),      # as typed on an Indonesian tablet
    (134, 1, Decimal("134.0")),
    (134.5, 1, Decimal("134.5")),          # a JSON number: read by its shortest repr
    (1.3, 2, Decimal("1.30")),
    (Decimal("0.5"), 2, Decimal("0.50")),
])
def test_parse_decimal_keeps_the_value_and_only_adds_zeros(raw, places, expected):
    got = parse_decimal(raw, places, Decimal("0"), Decimal("1000"))
    assert got == expected and str(got) == str(expected)


@pytest.mark.parametrize("raw, places, kind", [
    ("133.95", 1, "places"),
    (133.95, 1, "places"),                 # Decimal(133.95) would be 133.9499999…; str() reads 133.95
    ("137.05", 1, "places"),
    ("1.305", 2, "places"),
    ("134.50", 1, "places"),               # trailing zeros count: more precision than is stored
    ("2.100", 1, "places"),                # 2100 with a thousands separator is never read as 2.1
    (0.1 + 0.2, 2, "places"),              # 0.30000000000000004
    ("1e-05", 2, "places"),
    (True, 1, "number"),
    (False, 1, "number"),
    ("NaN", 1, "number"),
    ("Infinity", 1, "number"),
    ("-inf", 1, "number"),
    (float("nan"), 1, "number"),
    (float("inf"), 1, "number"),
    ("hot", 1, "number"),
    ("", 1, "number"),
    ([134], 1, "number"),
    ({"value": 134}, 1, "number"),
    ("1000.5", 1, "range"),
    (-1, 1, "range"),
])
def test_parse_decimal_refuses_without_rounding(raw, places, kind):
    with pytest.raises(DecimalRefused) as exc:
        parse_decimal(raw, places, Decimal("0"), Decimal("1000"))
    assert exc.value.kind == kind
    if kind == "places":
        assert str(exc.value) == f"at most {places} decimal place(s)"


def test_the_forms_validation_refuses_the_same_values_naming_the_field(app):
    with app.test_request_context():
        for name, raw, places in (("temperature_c", "133.95", 1), ("temperature_c", "137,05", 1),
                                  ("measured_value", "1.305", 2), ("temperature_c", "134.50", 1)):
            with pytest.raises(Invalid) as exc:
                decimal({name: raw}, name, Decimal("0"), Decimal("1000"), places=places)
            assert exc.value.field == name
            assert exc.value.message == f"{FIELD_LABELS[name]} has at most {places} decimal places"  # the label
        with pytest.raises(Invalid) as exc:
            decimal({"temperature_c": True}, "temperature_c", Decimal("0"), Decimal("150"))
        assert exc.value.message == "Temperature (°C) must be a number"
        assert decimal({"temperature_c": "134,5"}, "temperature_c", Decimal("0"), Decimal("150")) == Decimal("134.5")


# --- the headline cases, by both doors ------------------------------------------------------------

def _cycle_body(steriliser, **changes):
    body = {"steriliser_id": steriliser.id, "started_at": (NOW - timedelta(minutes=30)).isoformat(),
            "temperature_c": "134.5", "holding_seconds": 200, "indicator_result": "pass", "indicator_class": 5,
            "printout_ref": "LOG-1"}
    body.update(changes)
    return body


@pytest.mark.parametrize("temperature", ["133.95", 133.95, "137.05", 137.05, "134.50"])
def test_api_cycle_with_a_temperature_beyond_one_place_is_refused_and_nothing_is_stored(
        client, login_as, manager, ready_steriliser, snapshot, db, temperature):
    # The programme is 134 °C: rounded, 133.95 would pass and 137.05 would hide an over-temperature.
    c = login_as(manager)
    before = snapshot()
    r = c.api("POST", f"{V1}/cycles", _cycle_body(ready_steriliser, temperature_c=temperature))
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["errors"] == {"json": {"temperature_c": ["at most 1 decimal place(s)"]}}
    assert snapshot() == before and _count(db, Cycle) == 0


def test_api_cycle_figures_within_their_places_are_stored_as_given_and_answered_with_fixed_places(
        client, login_as, manager, ready_steriliser):
    r = login_as(manager).api("POST", f"{V1}/cycles", _cycle_body(ready_steriliser, temperature_c=134,
                                                                  pressure_kpa="210"))
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["temperature_c"], r.get_json()["pressure_kpa"]) == ("134.0", "210.0")


@pytest.mark.parametrize("value, message", [
    (True, "must be a number"), ("NaN", "must be a number"), ("Infinity", "must be a number"),
    # The API reads decimal points only (the forms also read the decimal comma an Indonesian screen shows).
    ("134,55", "must be a number"), ("134,5", "must be a number"),
])
def test_api_refuses_booleans_nan_and_infinity_as_decimals(client, login_as, manager, ready_steriliser, snapshot,
                                                           value, message):
    before = snapshot()
    r = login_as(manager).api("POST", f"{V1}/cycles", _cycle_body(ready_steriliser, temperature_c=value))
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["errors"] == {"json": {"temperature_c": [message]}}
    assert snapshot() == before


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_literals_are_not_json_and_are_refused_at_the_boundary(client, login_as, manager,
                                                                               ready_steriliser, snapshot, value):
    """`NaN` and `Infinity` (what Python's json writes for them) are not JSON (RFC 8259): 400 before any field."""
    before = snapshot()
    r = login_as(manager).api("POST", f"{V1}/cycles", _cycle_body(ready_steriliser, temperature_c=value))
    assert r.status_code == 400 and "send a finite number" in r.get_json()["message"]
    assert snapshot() == before


@pytest.mark.parametrize("rate", ["1.305", 1.305])
def test_api_leak_rate_beyond_two_places_is_refused_not_rounded_to_a_pass(
        client, admin, site, make_key, make_steriliser, snapshot, db, rate):
    steriliser = make_steriliser(site)
    key = make_key(site, by=admin)
    before = snapshot()
    r = client.api("POST", f"{V1}/steriliser-tests", {"steriliser_id": steriliser.id, "kind": "leak", "result": "pass",
                                                     "measured_value": rate}, key=key)
    assert r.status_code == 422, r.get_json()  # 1.30 would pass the 1.3 mbar/min limit
    assert r.get_json()["errors"] == {"json": {"measured_value": ["at most 2 decimal place(s)"]}}
    assert snapshot() == before and _count(db, SteriliserTest) == 0


@pytest.fixture
def on_tablet(client, enrol_tablet, site, nurse):
    enrol_tablet(site)
    assert client.form_post(f"/tablet/pin/{nurse.id}", {"pin": PIN}).status_code == 302
    return client


@pytest.mark.parametrize("temperature", ["133.95", "133,95", "137.05", "134.50"])
def test_tablet_cycle_with_a_temperature_beyond_one_place_is_refused_at_the_field(
        on_tablet, ready_steriliser, row_counts, db, temperature):
    before = row_counts()
    response = on_tablet.form_post("/decontamination/cycles/new", {
        "steriliser_id": str(ready_steriliser.id), "temperature_c": temperature, "holding_seconds": "200",
        "indicator_result": "pass", "printout_ref": "PR-7", "pack_codes": ""})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="temperature_c-error"' in page and "has at most 1 decimal places" in page
    assert row_counts() == before and _count(db, Cycle) == 0


def test_tablet_leak_rate_beyond_two_places_is_refused_at_the_field(on_tablet, make_steriliser, site, row_counts):
    steriliser = make_steriliser(site)
    before = row_counts()
    response = on_tablet.form_post("/decontamination/tests/new", {
        "steriliser_id": steriliser.id, "kind": "leak", "result": "pass", "measured_value": "1,305"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Measured value has at most 2 decimal places" in page
    assert row_counts() == before


# --- every decimal property of the OpenAPI document -----------------------------------------------

def _resolve(spec, schema: dict) -> dict:
    """Follow $ref, and allOf of one schema (how apispec writes a nullable nested schema)."""
    while True:
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        elif len(schema.get("allOf", [])) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "allOf"}, **schema["allOf"][0]}
        else:
            return schema


def _decimals(spec, schema: dict, at: tuple = ()):
    """(where, property) of every decimal property: nested objects and arrays of objects included."""
    schema = _resolve(spec, schema)
    for name, prop in schema.get("properties", {}).items():
        prop = _resolve(spec, prop)
        if prop.get("format") == "decimal":
            yield (*at, name), prop
        elif "properties" in prop:
            yield from _decimals(spec, prop, (*at, name))
        elif prop.get("type") == "array":
            yield from _decimals(spec, prop.get("items", {}), (*at, name, 0))


def _places(prop: dict) -> int:
    return prop["x-decimal-places"]


def _in_places(prop: dict) -> Decimal:
    """A value inside the bounds with exactly the places allowed."""
    lo, hi = Decimal(str(prop.get("x-minimum", 0))), Decimal(str(prop.get("x-maximum", 100)))
    return ((lo + hi) / 2).quantize(Decimal(1).scaleb(-_places(prop)))


def _one_place_too_many(prop: dict) -> Decimal:
    """Inside the bounds, one digit more than allowed (75.0 → 75.05): rounding would make it fit."""
    return _in_places(prop) + Decimal(5).scaleb(-_places(prop) - 1)


def _example(spec, schema: dict, ids: dict, name: str = ""):
    """A value the schema accepts, for a required property (ids: real ids by property name)."""
    schema = _resolve(spec, schema)
    kind = schema.get("type")
    if schema.get("format") == "decimal":
        return str(_in_places(schema))
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "integer":
        return ids.get(name, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "string" and schema.get("format") == "date-time":
        return NOW.isoformat()
    if kind == "string" and schema.get("format") == "date":
        return NOW.date().isoformat()
    if kind == "string" and "pattern" not in schema:
        return "x" * max(1, schema.get("minLength", 1))
    if kind == "array":
        return [_example(spec, schema["items"], ids) for _ in range(schema.get("minItems", 0))]
    if "properties" in schema:
        return {key: _example(spec, prop, ids, key) for key, prop in schema["properties"].items()
                if key in schema.get("required", [])}
    pytest.fail(f"no example for {name or schema}: teach _example this kind of property")


def _put(spec, schema: dict, body: dict, where: tuple, value, ids: dict) -> dict:
    """The body with the value at where, making the objects and list items on the way from their examples."""
    node, schema = body, _resolve(spec, schema)
    for part in where[:-1]:
        if isinstance(part, int):
            schema = _resolve(spec, schema["items"])
            while len(node) <= part:
                node.append(_example(spec, schema, ids))
        else:
            schema = _resolve(spec, schema["properties"][part])
            node.setdefault(part, _example(spec, schema, ids, part))
        node = node[part]
    node[where[-1]] = value
    return body


def _error_at(errors: dict, where: tuple):
    for part in where:
        errors = errors.get(str(part), errors.get(part)) if isinstance(errors, dict) else None
    return errors


@pytest.fixture
def real_ids(ready_steriliser, start, site, sterile_pack):
    """A real row for each path parameter and id property of the operations with decimals in their body."""
    return {"steriliser_id": ready_steriliser.id, "treatment_id": start().id, "site_id": site.id,
            "cycle_id": sterile_pack().cycle_id}


def test_every_decimal_property_of_every_request_body_is_refused_beyond_its_places(
        client, login_as, manager, real_ids, snapshot, row_counts, capsys):
    spec = client.get(f"{V1}/openapi.json").get_json()
    c = login_as(manager)
    found, failures = [], []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS or "requestBody" not in operation:
                continue
            schema = operation["requestBody"]["content"].get("application/json", {}).get("schema")
            if schema is None:
                continue
            decimals = list(_decimals(spec, schema))
            if not decimals:
                continue
            missing = set(re.findall(r"{(\w+)}", path)) - set(real_ids)
            assert not missing, f"{method} {path}: add a real id for {missing} to the real_ids fixture"
            url = re.sub(r"{(\w+)}", lambda m: str(real_ids[m.group(1)]), path)
            good = _example(spec, schema, real_ids)
            for where, prop in decimals:
                label = f"{method.upper()} {path} {'.'.join(map(str, where))}"
                found.append(label)
                assert isinstance(prop.get("x-decimal-places"), int), f"{label}: the document states no places"
                for bad in (str(_one_place_too_many(prop)), float(_one_place_too_many(prop))):
                    body = _put(spec, schema, _example(spec, schema, real_ids), where, bad, real_ids)
                    before, counts = snapshot(), row_counts()
                    r = c.api(method.upper(), url, body)
                    answer = r.get_json() or {}
                    errors = answer.get("errors", {}).get("json", {})
                    expected = [f"at most {_places(prop)} decimal place(s)"]
                    if r.status_code != 422 or _error_at(errors, where) != expected or list(errors) != [where[0]]:
                        failures.append(f"{label} = {bad!r}: {r.status_code} {answer}")
                    if snapshot() != before or row_counts() != counts:
                        failures.append(f"{label} = {bad!r}: the database changed")
            # The same body with the figures in their places passes the document's checks: the extra digit was
            # the reason for each refusal above (what the service then does with it is not this test's concern).
            r = c.api(method.upper(), url, good)
            assert not (r.status_code == 422 and "json" in r.get_json().get("errors", {})), (path, r.get_json())
    with capsys.disabled():
        print(f"\n{len(found)} decimal properties in request bodies:", *found, sep="\n  ")
    assert found, "no decimal property found in the document: the walk is broken"
    assert not failures, "\n".join(failures)


def test_the_document_states_the_places_of_every_decimal_property(client):
    spec = client.get(f"{V1}/openapi.json").get_json()
    seen = 0
    for name, schema in spec["components"]["schemas"].items():
        for where, prop in _decimals(spec, schema, (name,)):
            seen += 1
            places = prop.get("x-decimal-places")
            assert isinstance(places, int) and places > 0, where
            assert prop["type"] == "string" and prop["pattern"] == rf"^-?[0-9]+(\.[0-9]{{1,{places}}})?$", where
    assert seen > 0
