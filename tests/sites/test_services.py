"""Site, room, people and training services called directly: scoping, checks, corrections."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from compliance.auth.actor import actor_for_user
from compliance.errors import Conflict, Forbidden, Invalid, NotFound
from compliance.sites import services
from compliance.sites.models import Room, Site, TrainingRecord, User
from compliance.timeutil import utcnow


def rows(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def ids(db, stmt) -> set[int]:
    return {row.id for row in db.session.scalars(stmt)}


@pytest.fixture
def sister_site(make_site, site):
    """A second site of the same organisation, which the manager does not belong to."""
    return make_site(org=site.organisation, name="Bandung", rooms=("Bandung room",))


def person(site, **changes) -> dict:
    data = {"name": "New Nurse", "email": "new@example.test", "role": "staff", "site_ids": [site.id], "pin": "1234"}
    data.update(changes)
    return data


# --- scoping -------------------------------------------------------------------------------------

def test_manager_of_one_site_gets_not_found_for_another_sites_room(db, manager, sister_site, other_site):
    actor = actor_for_user(manager)
    for room in (sister_site.rooms[0], other_site.rooms[0]):
        with pytest.raises(NotFound):
            services.get_room(actor, room.id)
        with pytest.raises(NotFound):
            services.update_room(actor, room.id, {"site_id": room.site_id, "name": "Mine", "kind": "treatment"})
        with pytest.raises(NotFound):
            services.set_room_active(actor, room.id, False)
    assert ids(db, services.rooms_query(actor)) == {r.id for r in manager.sites[0].rooms}


def test_manager_of_one_site_gets_not_found_for_another_sites_person(db, manager, make_user, sister_site,
                                                                      outsider):
    colleague = make_user("staff", [sister_site])
    actor = actor_for_user(manager)
    for user in (colleague, outsider):
        with pytest.raises(NotFound):
            services.get_user(actor, user.id)
        with pytest.raises(NotFound):
            services.reset_pin(actor, user.id, "1111")
        with pytest.raises(NotFound):
            services.set_user_active(actor, user.id, False)
    assert colleague.id not in ids(db, services.users_query(actor, include_inactive=True))


def test_manager_gets_not_found_for_another_site(db, manager, sister_site):
    with pytest.raises(NotFound):
        services.get_site(actor_for_user(manager), sister_site.id)


def test_admin_sees_every_site_of_the_organisation_and_no_other(db, admin, site, sister_site, other_site):
    actor = actor_for_user(admin)
    assert ids(db, services.sites_query(actor)) == {site.id, sister_site.id}
    assert services.get_site(actor, sister_site.id) == sister_site
    with pytest.raises(NotFound):
        services.get_site(actor, other_site.id)


def test_admin_sees_people_without_a_site_but_not_other_organisations(db, admin, make_user, site, outsider):
    loose = make_user("staff", [], org=site.organisation)
    found = ids(db, services.users_query(actor_for_user(admin)))
    assert loose.id in found and admin.id in found and outsider.id not in found


def test_inactive_rows_are_hidden_unless_asked(db, manager, site, nurse):
    actor = actor_for_user(manager)
    services.set_user_active(actor, nurse.id, False)
    services.set_room_active(actor, site.rooms[0].id, False)
    assert nurse.id not in ids(db, services.users_query(actor))
    assert nurse.id in ids(db, services.users_query(actor, include_inactive=True))
    assert not ids(db, services.rooms_query(actor))
    assert ids(db, services.rooms_query(actor, include_inactive=True)) == {site.rooms[0].id}


def test_training_of_other_sites_people_is_out_of_reach(db, manager, outsider, nurse, make_training):
    theirs, ours = make_training(outsider), make_training(nurse)
    actor = actor_for_user(manager)
    assert ids(db, services.training_query(actor)) == {ours.id}
    with pytest.raises(NotFound):
        services.get_training(actor, theirs.id)
    with pytest.raises(NotFound):
        services.withdraw_training(actor, theirs.id, "not mine")


def test_auditor_reads_but_cannot_write(db, auditor, site):
    actor = actor_for_user(auditor)
    assert ids(db, services.rooms_query(actor)) == {site.rooms[0].id}
    with pytest.raises(Forbidden):
        services.create_room(actor, {"site_id": site.id, "name": "X", "kind": "treatment"}, utcnow())
    with pytest.raises(Forbidden):
        services.create_user(actor, person(site), utcnow())


# --- roles ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_manager_cannot_give_a_role_above_their_own(db, manager, site, role):
    with pytest.raises(Forbidden) as refused:
        services.create_user(actor_for_user(manager), person(site, role=role, password="long-enough-pw", pin=""),
                             utcnow())
    assert refused.value.field == "role"
    assert rows(db, User) == 1


def test_manager_cannot_promote_someone_to_admin(db, manager, nurse, site):
    with pytest.raises(Forbidden):
        services.update_user(actor_for_user(manager), nurse.id, person(
            site, name=nurse.name, email=nurse.email, role="admin", password="long-enough-pw"))
    db.session.rollback()
    assert db.session.get(User, nurse.id).role == "staff"


def test_admin_may_give_any_role(db, admin, site):
    user = services.create_user(actor_for_user(admin), person(site, role="auditor", password="long-enough-pw",
                                                              pin=""), utcnow())
    assert user.role == "auditor" and check_password_hash(user.password_hash, "long-enough-pw")


# --- people checks -------------------------------------------------------------------------------

def test_duplicate_email_is_a_conflict_whatever_its_case(db, manager, nurse, site):
    with pytest.raises(Conflict) as refused:
        services.create_user(actor_for_user(manager), person(site, email=nurse.email.upper()), utcnow())
    assert refused.value.field == "email"


@pytest.mark.parametrize("pin", ["123", "1234567", "12a4", " 1234"])
def test_pin_must_be_4_to_6_digits(db, manager, site, pin):
    with pytest.raises(Invalid) as refused:
        services.create_user(actor_for_user(manager), person(site, pin=pin), utcnow())
    assert refused.value.field == "pin"


def test_staff_need_a_pin_and_others_a_password(db, manager, site):
    actor = actor_for_user(manager)
    with pytest.raises(Invalid) as refused:
        services.create_user(actor, person(site, pin=""), utcnow())
    assert refused.value.field == "pin"
    with pytest.raises(Invalid) as refused:
        services.create_user(actor, person(site, role="manager", pin=""), utcnow())
    assert refused.value.field == "password"


def test_update_keeps_the_sites_outside_the_managers_reach(db, manager, make_user, site, sister_site):
    shared = make_user("staff", [site, sister_site])
    user = services.update_user(actor_for_user(manager), shared.id, person(
        site, name="Renamed", email=shared.email, pin=""))
    assert user.site_ids == {site.id, sister_site.id} and user.name == "Renamed"


def test_reset_pin_lifts_the_lock(db, manager, nurse):
    nurse.pin_failed_count, nurse.pin_locked_until = 3, utcnow()
    db.session.commit()
    user = services.reset_pin(actor_for_user(manager), nurse.id, "8642")
    assert user.pin_locked_until is None and user.pin_failed_count == 0
    assert check_password_hash(user.pin_hash, "8642")


def test_nobody_deactivates_themselves(db, manager):
    with pytest.raises(Invalid):
        services.set_user_active(actor_for_user(manager), manager.id, False)


# --- sites and rooms -----------------------------------------------------------------------------

@pytest.mark.parametrize("tz", ["Mars/Olympus", "asia/jakarta ", "", "UTC+7"])
def test_unknown_timezone_is_refused(db, admin, tz):
    with pytest.raises(Invalid) as refused:
        services.create_site(actor_for_user(admin), {"name": "New", "timezone": tz, "language": "en"}, utcnow())
    assert refused.value.field == "timezone"


def test_long_names_are_refused(db, admin, site):
    actor = actor_for_user(admin)
    with pytest.raises(Invalid) as refused:
        services.create_site(actor, {"name": "x" * 10_000, "timezone": "UTC", "language": "en"}, utcnow())
    assert refused.value.field == "name"
    with pytest.raises(Invalid):
        services.create_room(actor, {"site_id": site.id, "name": "x" * 121, "kind": "treatment"}, utcnow())
    assert rows(db, Site) == 1 and rows(db, Room) == 1


def test_room_names_are_unique_per_site_only(db, admin, site, sister_site):
    actor = actor_for_user(admin)
    with pytest.raises(Conflict):
        services.create_room(actor, {"site_id": site.id, "name": "ROOM 1", "kind": "treatment"}, utcnow())
    room = services.create_room(actor, {"site_id": sister_site.id, "name": "Room 1", "kind": "treatment"}, utcnow())
    assert room.site_id == sister_site.id


# --- training ------------------------------------------------------------------------------------

def test_training_correction_keeps_the_old_record(db, manager, nurse, make_training):
    old = make_training(nurse, completed_on=date(2025, 1, 1))
    new = services.correct_training(actor_for_user(manager), old.id, {
        "user_id": nurse.id, "course": old.course, "completed_on": "2025-01-02", "expires_on": "2026-01-02",
        "reason": "typo"}, utcnow())
    assert (old.is_active, old.replaced_by_id, old.void_reason) == (False, new.id, "typo")
    assert old.completed_on == date(2025, 1, 1) and new.completed_on == date(2025, 1, 2)
    assert new.recorded_by_id == manager.id and rows(db, TrainingRecord) == 2


def test_correction_and_withdrawal_need_a_reason(db, manager, nurse, make_training):
    record = make_training(nurse)
    actor = actor_for_user(manager)
    with pytest.raises(Invalid):
        services.correct_training(actor, record.id, {"user_id": nurse.id, "course": record.course,
                                                     "completed_on": "2025-01-01", "reason": " "}, utcnow())
    with pytest.raises(Invalid):
        services.withdraw_training(actor, record.id, "")


def test_withdrawn_record_stays_with_its_reason(db, manager, nurse, make_training):
    record = make_training(nurse)
    actor = actor_for_user(manager)
    services.withdraw_training(actor, record.id, "wrong person")
    assert not record.is_active and record.void_reason == "wrong person"
    assert record.id in ids(db, services.training_query(actor, include_inactive=True))
    assert record.id not in ids(db, services.training_query(actor))
    with pytest.raises(Conflict):
        services.withdraw_training(actor, record.id, "again")


def test_expiry_before_completion_is_refused(db, manager, nurse):
    with pytest.raises(Invalid) as refused:
        services.record_training(actor_for_user(manager), {
            "user_id": nurse.id, "course": "first_aid", "completed_on": "2025-02-01", "expires_on": "2025-01-01"},
            utcnow())
    assert refused.value.field == "expires_on"


def test_staff_cannot_be_given_a_password(db, manager, site):
    actor = actor_for_user(manager)
    with pytest.raises(Invalid) as exc:
        services.create_user(actor, {"name": "New Nurse", "email": "new@example.test", "role": "staff",
                                     "site_ids": [site.id], "pin": "1234", "password": "a-long-password"},
                             utcnow())
    assert exc.value.field == "password"
    assert db.session.scalar(select(func.count()).select_from(User).where(User.email == "new@example.test")) == 0


def test_a_manager_made_staff_loses_the_password(db, admin, make_user, site):
    person = make_user("manager", [site], email="was.manager@example.test")
    services.update_user(actor_for_user(admin), person.id, {
        "name": person.name, "email": person.email, "role": "staff", "site_ids": [site.id], "pin": "4321"})
    assert person.password_hash is None
