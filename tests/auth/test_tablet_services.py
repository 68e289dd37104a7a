"""Tablet set-up links (single use, named), last use, revoking, and the PIN's tries left and lock end."""
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from compliance.auth import services
from compliance.auth.actor import actor_for_user
from compliance.auth.models import TabletDevice, TabletLink
from compliance.errors import Conflict, Forbidden, Invalid, NotFound
from compliance.extensions import db as _db
from tests.conftest import PIN

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)
POLICY = services.PinPolicy(max_attempts=5, lock_minutes=15)


def _count(model):
    return _db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def actor(manager):
    return actor_for_user(manager)


def test_a_link_enrols_one_tablet_and_is_then_spent(db, actor, site):
    link, token = services.create_tablet_link(actor, site.id, "Treatment room 1", NOW)
    device, cookie = services.enrol_tablet_from_link(token, NOW + timedelta(minutes=5))
    db.session.commit()
    assert device.name == "Treatment room 1" and device.link_id == link.id and cookie
    assert device.created_by_id == actor.user_id and device.last_used_at == NOW + timedelta(minutes=5)
    with pytest.raises(services.LinkSpent) as refused:
        services.enrol_tablet_from_link(token, NOW + timedelta(minutes=6))
    assert refused.value.status == 409 and refused.value.link.id == link.id
    db.session.rollback()
    assert _count(TabletDevice) == 1


def test_an_expired_link_is_refused(db, actor, site):
    _link, token = services.create_tablet_link(actor, site.id, "Room 2", NOW)
    with pytest.raises(Invalid, match="expired"):
        services.enrol_tablet_from_link(token, NOW + timedelta(hours=24))
    db.session.rollback()
    assert _count(TabletDevice) == 0


def test_an_unknown_link_is_refused(db):
    with pytest.raises(Invalid, match="not valid"):
        services.enrol_tablet_from_link("forged", NOW)


def test_a_link_needs_a_name(db, actor, site):
    for name in ("", "   ", "x" * 121):
        with pytest.raises(Invalid) as refused:
            services.create_tablet_link(actor, site.id, name, NOW)
        assert refused.value.field == "name"
    assert _count(TabletLink) == 0


def test_a_name_in_use_at_the_site_is_refused_whatever_its_case(db, actor, site):
    services.create_tablet_link(actor, site.id, "Room 1", NOW)
    with pytest.raises(Conflict):
        services.create_tablet_link(actor, site.id, "ROOM  1", NOW)  # an open link holds the name
    with pytest.raises(Conflict):
        services.enrol_tablet(actor, site.id, "room 1", NOW)


def test_a_revoked_tablets_name_is_free_again(db, actor, site):
    device, _ = services.enrol_tablet(actor, site.id, "Room 1", NOW)
    services.revoke_tablet(actor, device.id, NOW)
    services.create_tablet_link(actor, site.id, "Room 1", NOW)
    assert _count(TabletLink) == 1


def test_another_site_may_use_the_same_name(db, make_user, site, make_site):
    second = make_site(org=site.organisation, name="Second")
    both = actor_for_user(make_user("manager", [site, second]))
    services.create_tablet_link(both, site.id, "Room 1", NOW)
    services.create_tablet_link(both, second.id, "Room 1", NOW)
    assert _count(TabletLink) == 2


def test_a_manager_cannot_make_a_link_for_another_site(db, actor, other_site):
    with pytest.raises(NotFound):
        services.create_tablet_link(actor, other_site.id, "Sneaky", NOW)
    assert _count(TabletLink) == 0


def test_staff_cannot_make_a_link(db, nurse, site):
    with pytest.raises(Forbidden):
        services.create_tablet_link(actor_for_user(nurse), site.id, "Room 1", NOW)


def test_a_name_taken_while_the_link_waited_is_told_apart(db, actor, site):
    _link, token = services.create_tablet_link(actor, site.id, "Room 1", NOW)
    # The name was held by the open link; a tablet made past that check (as in a race) still gets its own name.
    db.session.add(TabletDevice(site_id=site.id, name="Room 1", token_hash="0" * 64))
    device, _ = services.enrol_tablet_from_link(token, NOW)
    assert device.name == "Room 1 2"


def test_two_browsers_using_one_link_at_once_make_exactly_one_tablet(app, db, actor, site):
    _link, token = services.create_tablet_link(actor, site.id, "Front desk", NOW)
    db.session.commit()  # the test's own session holds no lock while the browsers race
    barrier = threading.Barrier(2)
    results, errors = [], []

    def browser():
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                device, _ = services.enrol_tablet_from_link(token, NOW)
                _db.session.commit()
                results.append(device.id)
            except services.LinkSpent:
                _db.session.rollback()
                results.append("refused")
            except Exception as exc:  # noqa: BLE001 - reported below
                _db.session.rollback()
                errors.append(repr(exc))
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=browser) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results.count("refused") == 1 and len(results) == 2
    db.session.expire_all()
    assert _count(TabletDevice) == 1


def test_last_use_is_written_at_most_once_a_minute(db, actor, site):
    device, _ = services.enrol_tablet(actor, site.id, "Room 1", NOW)
    db.session.commit()
    assert not services.touch_tablet(device, NOW + timedelta(seconds=59))
    assert services.touch_tablet(device, NOW + timedelta(seconds=60))
    db.session.commit()
    db.session.expire_all()
    device = db.session.get(TabletDevice, device.id)
    assert device.last_used_at == NOW + timedelta(seconds=60)
    assert not services.touch_tablet(device, NOW + timedelta(seconds=90))


def test_revoking_notes_who_and_when_and_a_second_revoke_is_refused(db, actor, site):
    device, _ = services.enrol_tablet(actor, site.id, "Room 1", NOW)
    services.revoke_tablet(actor, device.id, NOW)
    assert device.revoked_at == NOW and device.revoked_by_id == actor.user_id
    with pytest.raises(Conflict):
        services.revoke_tablet(actor, device.id, NOW + timedelta(minutes=1))
    assert device.revoked_at == NOW


def test_a_manager_cannot_revoke_another_sites_tablet(db, actor, make_user, other_site):
    theirs, _ = services.enrol_tablet(actor_for_user(make_user("manager", [other_site])), other_site.id, "X", NOW)
    with pytest.raises(NotFound):
        services.revoke_tablet(actor, theirs.id, NOW)
    assert theirs.revoked_at is None


def test_a_wrong_pin_says_how_many_tries_are_left(db, site, nurse):
    for left in (4, 3, 2, 1):
        with pytest.raises(services.WrongPin) as wrong:
            services.pin_sign_in(site.id, nurse.id, "0000", "127.0.0.1", NOW, POLICY)
        assert wrong.value.tries_left == left and wrong.value.details() == {"tries_left": left}
    with pytest.raises(services.PinLocked) as locked:
        services.pin_sign_in(site.id, nurse.id, "0000", "127.0.0.1", NOW, POLICY)
    assert locked.value.locked_until == NOW + timedelta(minutes=15)
    with pytest.raises(services.PinLocked) as still:
        services.pin_sign_in(site.id, nurse.id, PIN, "127.0.0.1", NOW + timedelta(minutes=14), POLICY)
    assert still.value.locked_until == NOW + timedelta(minutes=15)
    assert services.pin_sign_in(site.id, nurse.id, PIN, "127.0.0.1", NOW + timedelta(minutes=15), POLICY) == nurse


def test_the_claim_on_the_link_refuses_even_when_the_read_saw_it_unused(db, actor, site, monkeypatch):
    link, token = services.create_tablet_link(actor, site.id, "Room 1", NOW)
    services.enrol_tablet_from_link(token, NOW)
    db.session.commit()
    # As a second browser whose read happened before the first one's commit (PostgreSQL, READ COMMITTED).
    monkeypatch.setattr(services, "read_tablet_link", lambda _token, _now: link)
    with pytest.raises(services.LinkSpent):
        services.enrol_tablet_from_link(token, NOW)
    db.session.rollback()
    assert _count(TabletDevice) == 1
