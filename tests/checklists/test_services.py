"""Checklist runs against a real database: versions freeze, answers append, retries store once, actions open."""
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.checklists import services
from compliance.checklists.models import Answer, ChecklistRun, ChecklistTemplate, CorrectiveAction
from compliance.errors import Conflict, Invalid, NotFound
from compliance.extensions import db as _db
from compliance.sites.models import User

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
def templates(db, site):
    services.load_default_templates(site.organisation_id, NOW)
    db.session.commit()
    return {t.key: t for t in db.session.scalars(select(ChecklistTemplate))}


@pytest.fixture
def staff(nurse):
    return actor_for_user(nurse)


def _item(template, key):
    return next(i for i in services.current_version(template).items if i.key == key)


def _answer(actor, run, item, value, key, note=""):
    return services.answer(actor, run.id, {"item_id": item.id, "value": value, "idempotency_key": key,
                                           "note": note}, NOW)


def test_default_templates_load_once_in_both_languages(db, site, templates):
    assert set(templates) == {"opening", "before_client", "after_client", "decontamination", "closing", "weekly"}
    assert services.load_default_templates(site.organisation_id, NOW) == 0
    for template in templates.values():
        version = services.current_version(template)
        assert version.title["en"] and version.title["id"]
        assert all(i.label["en"] and i.label["id"] and i.label["en"] != i.label["id"] for i in version.items)


def test_a_run_completes_when_every_required_item_is_answered(db, site, staff, templates):
    template = templates["after_client"]
    run = services.start_run(staff, {"site_id": site.id, "template_id": template.id}, NOW)
    items = services.current_version(template).items
    for n, item in enumerate(items):
        assert run.completed_at is None
        _answer(staff, run, item, "yes", f"key-after-{n}")
    assert run.completed_at == NOW


def test_out_of_limit_number_needs_a_note_and_opens_a_corrective_action(db, site, staff, templates):
    run = services.start_run(staff, {"site_id": site.id, "template_id": templates["opening"].id}, NOW)
    db.session.commit()
    fridge = _item(templates["opening"], "fridge_temp")
    with pytest.raises(Invalid) as exc:
        _answer(staff, run, fridge, "11", "key-fridge-1")
    assert exc.value.field == "note"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Answer)) == 0
    _answer(staff, run, fridge, "11", "key-fridge-2", note="door left open; moved stock")
    action = db.session.scalar(select(CorrectiveAction))
    assert action is not None and action.closed_at is None and "11" in action.what


def test_a_retried_answer_is_stored_once(db, site, staff, templates):
    run = services.start_run(staff, {"site_id": site.id, "template_id": templates["opening"].id}, NOW)
    soap = _item(templates["opening"], "hand_soap")
    first = _answer(staff, run, soap, "yes", "retry-key-1")
    again = _answer(staff, run, soap, "yes", "retry-key-1")
    assert first.id == again.id
    assert db.session.scalar(select(func.count()).select_from(Answer)) == 1
    with pytest.raises(Conflict):  # a new tap on the same item is not an edit
        _answer(staff, run, soap, "yes", "retry-key-2")


def test_an_amendment_keeps_the_old_answer(db, site, staff, templates):
    run = services.start_run(staff, {"site_id": site.id, "template_id": templates["opening"].id}, NOW)
    item = _item(templates["opening"], "surfaces_clean")
    old = _answer(staff, run, item, "yes", "amend-key-1")
    db.session.commit()
    with pytest.raises(Invalid):  # a reason is required
        services.amend(staff, old.id, {"value": "no", "note": "missed", "idempotency_key": "amend-key-2"}, NOW)
    db.session.rollback()
    new = services.amend(staff, old.id, {"value": "no", "note": "trolley missed", "reason": "tapped by mistake",
                                         "idempotency_key": "amend-key-3"}, NOW)
    assert new.amends_id == old.id and db.session.get(Answer, old.id).value is True
    assert services.current_answers(run)[item.id].id == new.id
    with pytest.raises(Conflict):
        services.amend(staff, old.id, {"value": "yes", "reason": "x", "idempotency_key": "amend-key-4"}, NOW)


def test_editing_a_used_template_makes_a_new_version(db, site, manager, staff, templates):
    template = templates["weekly"]
    services.start_run(staff, {"site_id": site.id, "template_id": template.id}, NOW)
    data = {"title": {"en": "Weekly", "id": "Mingguan"},
            "items": [{"key": "only", "kind": "tick", "en": "One thing", "id": "Satu hal"}]}
    version = services.edit_template(actor_for_user(manager), template.id, data, NOW)
    assert version.number == 2 and len(services.current_version(template).items) == 1
    assert len(template.versions[0].items) == 3  # the frozen version is untouched


def test_bad_answers_change_nothing(db, site, staff, templates, make_site):
    run = services.start_run(staff, {"site_id": site.id, "template_id": templates["opening"].id}, NOW)
    other = services.start_run(staff, {"site_id": site.id, "template_id": templates["closing"].id}, NOW)
    db.session.commit()
    fridge = _item(templates["opening"], "fridge_temp")
    with pytest.raises(Invalid) as exc:
        _answer(staff, run, fridge, "warm", "bad-key-1")
    assert exc.value.field == "value"
    with pytest.raises(NotFound):  # an item of another template
        _answer(staff, other, fridge, "5", "bad-key-2")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Answer)) == 0


def test_a_run_of_another_site_is_out_of_reach(db, site, staff, templates, outsider):
    run = services.start_run(staff, {"site_id": site.id, "template_id": templates["opening"].id}, NOW)
    db.session.commit()
    with pytest.raises(NotFound):
        services.get_run(actor_for_user(outsider), run.id)


def test_uploads_are_checked_by_content(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    assert services.store_upload(tmp_path, png).endswith(".png")
    with pytest.raises(Invalid):
        services.store_upload(tmp_path, b"GIF89a not allowed")
    with pytest.raises(Invalid):
        services.store_upload(tmp_path, png, max_bytes=10)


def test_a_malformed_treatment_id_is_refused_naming_the_field(db, site, staff, templates):
    with pytest.raises(Invalid) as exc:
        services.start_run(staff, {"site_id": site.id, "template_id": templates["before_client"].id,
                                   "treatment_id": "abc"}, NOW)
    assert exc.value.field == "treatment_id"


# --- starting a run with an idempotency key ------------------------------------------------------

RUN_KEY = "run-key-0123456789abcdef"


def _runs(db) -> int:
    return db.session.scalar(select(func.count()).select_from(ChecklistRun))


def test_a_replayed_start_with_the_same_key_makes_one_run(db, site, staff, templates):
    data = {"site_id": site.id, "template_id": templates["opening"].id, "idempotency_key": RUN_KEY}
    first = services.start_run(staff, data, NOW)
    db.session.commit()
    again = services.start_run(staff, dict(data), NOW)
    db.session.commit()
    assert again.id == first.id and again.idempotency_key == RUN_KEY
    assert _runs(db) == 1


def test_without_a_key_two_starts_make_two_runs(db, site, staff, templates):
    data = {"site_id": site.id, "template_id": templates["opening"].id}
    first, second = services.start_run(staff, data, NOW), services.start_run(staff, data, NOW)
    db.session.commit()
    assert first.id != second.id and first.idempotency_key is None and _runs(db) == 2


def test_a_key_used_by_another_person_or_for_another_checklist_is_a_conflict(db, site, staff, manager, templates):
    data = {"site_id": site.id, "template_id": templates["opening"].id, "idempotency_key": RUN_KEY}
    services.start_run(staff, data, NOW)
    db.session.commit()
    for actor, changed in ((actor_for_user(manager), {}), (staff, {"template_id": templates["closing"].id})):
        with pytest.raises(Conflict) as exc:
            services.start_run(actor, {**data, **changed}, NOW)
        assert exc.value.field == "idempotency_key"
        db.session.rollback()
    assert _runs(db) == 1


@pytest.mark.parametrize("key", ["too-short", "x" * 65, "has spaces in it!!", "ключ-ключ-ключ-ключ", 1234567890123456])
def test_a_malformed_run_key_is_refused_naming_the_field(db, site, staff, templates, key):
    with pytest.raises(Invalid) as exc:
        services.start_run(staff, {"site_id": site.id, "template_id": templates["opening"].id,
                                   "idempotency_key": key}, NOW)
    assert exc.value.field == "idempotency_key"
    db.session.rollback()
    assert _runs(db) == 0


def test_a_key_stored_between_the_check_and_the_insert_returns_the_run_stored(db, site, staff, templates,
                                                                                 monkeypatch):
    data = {"site_id": site.id, "template_id": templates["opening"].id, "idempotency_key": RUN_KEY}
    first = services.start_run(staff, data, NOW)
    db.session.commit()
    real, calls = services._replayed_run, []

    def misses_once(*args):  # as if the other request committed just after this one looked
        calls.append(args)
        return None if len(calls) == 1 else real(*args)

    monkeypatch.setattr(services, "_replayed_run", misses_once)
    assert services.start_run(staff, dict(data), NOW).id == first.id
    db.session.commit()
    assert len(calls) == 2 and _runs(db) == 1


def test_two_starts_with_one_key_at_once_make_one_run(app, db, site, nurse, templates):
    data = {"site_id": site.id, "template_id": templates["opening"].id, "idempotency_key": RUN_KEY}
    nurse_id = nurse.id
    db.session.commit()  # the test's own session holds no lock while the tablets race
    barrier = threading.Barrier(2)
    run_ids, errors = [], []

    def tablet():
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                me = actor_for_user(_db.session.get(User, nurse_id))
                run = services.start_run(me, dict(data), NOW)
                _db.session.commit()
                run_ids.append(run.id)
            except Exception as exc:  # noqa: BLE001 - reported below
                _db.session.rollback()
                errors.append(repr(exc))
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=tablet) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(run_ids) == 2 and run_ids[0] == run_ids[1]
    assert _runs(db) == 1
