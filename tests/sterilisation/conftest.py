"""Factories for sterilisers, devices and the steps that lead to a released load."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from compliance.auth.actor import actor_for_user
from compliance.devices.models import Device, DeviceEvent, DeviceType, Programme, Steriliser
from compliance.sterilisation import services
from compliance.sterilisation.models import SteriliserTest
from tests.conftest import LONG_AGO

# 10:00 in Jakarta, 25 November 2026
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


@pytest.fixture
def now():
    return NOW


@pytest.fixture
def actor(manager):
    return actor_for_user(manager)


@pytest.fixture
def make_steriliser(db):
    def make(site, type="B", name=None, validated=False, temperature="134.0", holding=180, pressure=None):
        steriliser = Steriliser(site_id=site.id, name=name or f"Autoclave {Steriliser.query.count() + 1}", type=type,
                                created_at=LONG_AGO,
                                is_validated_for_wrapped=validated, is_in_service=True)
        db.session.add(steriliser)
        db.session.flush()
        db.session.add(Programme(steriliser_id=steriliser.id, name="134 °C", temperature_c=Decimal(temperature),
                                 min_holding_seconds=holding,
                                 min_pressure_kpa=Decimal(pressure) if pressure else None))
        db.session.commit()
        return steriliser

    return make


@pytest.fixture
def make_device(db):
    def make(site, serial=None, hollow=False, max_cycles=None, type_name="Roller handle"):
        dtype = DeviceType.query.filter_by(organisation_id=site.organisation_id, name=type_name).first()
        if dtype is None:
            dtype = DeviceType(organisation_id=site.organisation_id, name=type_name, spaulding_class="critical",
                               is_hollow=hollow)
            db.session.add(dtype)
            db.session.flush()
        device = Device(organisation_id=site.organisation_id, site_id=site.id, device_type_id=dtype.id,
                        serial=serial or f"SN-{Device.query.count() + 1:04d}", status="dirty", max_cycles=max_cycles)
        db.session.add(device)
        db.session.flush()
        db.session.add(DeviceEvent(device_id=device.id, kind="registered", to_status="dirty", at=NOW - timedelta(days=30)))
        db.session.commit()
        return device

    return make


@pytest.fixture
def add_test(db):
    def add(steriliser, kind, result="pass", at=NOW - timedelta(hours=1), control="grew"):
        test = SteriliserTest(site_id=steriliser.site_id, steriliser_id=steriliser.id, kind=kind, performed_at=at,
                              result=result, indicator_lot="LOT-1" if kind == "spore" else "",
                              control_result=control if kind == "spore" else None)
        db.session.add(test)
        db.session.commit()
        return test

    return add


@pytest.fixture
def ready_steriliser(make_steriliser, add_test, site):
    """A type B steriliser with today's air-removal test and a spore test 3 days old, both passed."""
    steriliser = make_steriliser(site)
    add_test(steriliser, "spore", at=NOW - timedelta(days=3))
    add_test(steriliser, "air_removal", at=NOW - timedelta(hours=2))
    return steriliser


@pytest.fixture
def packed(db, actor, make_device, site):
    """Clean, inspect and pack devices into a pouch; returns the pack."""
    def pack(devices=None, packaging="pouch", at=NOW - timedelta(hours=1)):
        devices = devices or [make_device(site)]
        ids = [d.id for d in devices]
        services.record_cleaning(actor, {"device_ids": ids, "method": "ultrasonic"}, at)
        services.record_inspection(actor, {"device_ids": ids, "passed": True}, at)
        result = services.create_pack(actor, {"device_ids": ids, "packaging": packaging}, at)
        db.session.commit()
        return result

    return pack


def good_cycle(steriliser, packs=(), **overrides):
    data = {"steriliser_id": steriliser.id, "temperature_c": "134.5", "holding_seconds": "200",
            "indicator_result": "pass", "indicator_class": "5", "printout_ref": "PR-1",
            "pack_codes": [p.label_code for p in packs], "started_at": (NOW - timedelta(minutes=30)).isoformat()}
    data.update(overrides)
    return data


def race(app, user_id: int, operations: dict) -> tuple[dict, list[str]]:
    """Run each operation(actor) at the same moment, each in its own thread and database session, as the user;
    returns {name: result, or the Conflict it raised} and the repr of any other error."""
    import threading

    from compliance.errors import Conflict
    from compliance.extensions import db
    from compliance.sites.models import User

    barrier = threading.Barrier(len(operations))
    outcome, errors = {}, []

    def run(name, operation):
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                me = actor_for_user(db.session.get(User, user_id))
                outcome[name] = operation(me)
                db.session.commit()
            except Conflict as exc:
                db.session.rollback()
                outcome[name] = exc
            except Exception as exc:  # noqa: BLE001 - reported to the test
                db.session.rollback()
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=item) for item in operations.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcome, errors
