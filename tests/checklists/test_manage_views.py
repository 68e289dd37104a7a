"""The manager's checklist screens: templates and their versions, runs with answers and corrections, corrective
actions, and the photos and signatures of a run."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import func, select

from compliance.auth.actor import actor_for_user
from compliance.checklists import services
from compliance.checklists.models import (
    Answer,
    ChecklistRun,
    ChecklistTemplate,
    CorrectiveAction,
    TemplateItem,
    TemplateVersion,
)

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)  # 10:00 in Jakarta
LONG = "x" * 10_000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def rows(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def text(response) -> str:
    return response.get_data(as_text=True)


def field_error(page: str, field: str) -> str:
    match = re.search(rf'<small class="error" id="{field}-error">([^<]*)</small>', page)
    return match.group(1) if match else ""


@pytest.fixture
def templates(db, site):
    services.load_default_templates(site.organisation_id, NOW)
    db.session.commit()
    return {t.key: t for t in db.session.scalars(select(ChecklistTemplate))}


@pytest.fixture
def sister_site(make_site, site):
    return make_site(org=site.organisation, name="Bandung", timezone="Asia/Jakarta")


@pytest.fixture
def start(db, admin, templates):
    """A run of a default checklist at a site, started by the admin (who reaches every site of the organisation)."""

    def make(site, key="opening", day: date | None = None) -> ChecklistRun:
        run = services.start_run(actor_for_user(admin), {"site_id": site.id, "template_id": templates[key].id}, NOW)
        if day:
            run.day = day
        db.session.commit()
        return run

    return make


def answer(db, user, run, key, value, idem, note="", file_path=None) -> Answer:
    item = next(i for i in run.version.items if i.key == key)
    row = services.answer(actor_for_user(user), run.id, {"item_id": item.id, "value": value, "note": note,
                                                         "idempotency_key": idem}, NOW, file_path=file_path)
    db.session.commit()
    return row


def template_form(title=("Weekly", "Mingguan"), items=(), **extra) -> dict:
    """The template form's fields: a title and rows of items (key, kind, en, id, ...)."""
    data = {"title_en": title[0], "title_id": title[1], **extra}
    for n, item in enumerate(items):
        row = {"kind": "tick", "note_when": "never", "rule": "", "min": "", "max": "", "unit": "", "choices": "",
               "required": "y", **item}
        if not row["required"]:
            del row["required"]
        data.update({f"items-{n}-{name}": value for name, value in row.items()})
    return data


ONE = {"key": "only", "kind": "tick", "en": "One thing", "id": "Satu hal"}
TWO = {"key": "second", "kind": "yes_no", "en": "Second", "id": "Kedua", "note_when": "no",
       "rule": "sharps-container"}


# --- who may see what ----------------------------------------------------------------------------

def test_every_checklist_screen_declares_the_action_it_needs(app):
    endpoints = [e for e in app.view_functions if e.startswith("checklists_admin.")]
    assert len(endpoints) == 10
    for endpoint in endpoints:
        action = getattr(app.view_functions[endpoint], "required_action", None)
        assert action in ("checklists.read", "checklists.manage"), endpoint


def test_staff_read_the_screens_but_cannot_edit_templates_or_close_actions(login_as, nurse, site, templates, start,
                                                                            db):
    run = start(site)
    answer(db, nurse, run, "fridge_temp", "12", "staff-0001", note="warm")
    action = db.session.scalar(select(CorrectiveAction))
    client = login_as(nurse)
    for url in ("/checklist-templates", f"/checklist-templates/{templates['weekly'].id}", "/checklist-runs",
                f"/checklist-runs/{run.id}", "/corrective-actions", f"/corrective-actions/{action.id}"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Close it" not in text(response) and "New checklist" not in text(response), url
    template = templates["weekly"]
    assert client.get("/checklist-templates/new").status_code == 403
    assert client.get(f"/checklist-templates/{template.id}/edit").status_code == 403
    assert client.form_post(f"/checklist-templates/{template.id}/edit", template_form(items=[ONE])).status_code == 403
    assert client.form_post("/checklist-templates/new", template_form(items=[ONE], key="mine",
                                                                      kind="weekly")).status_code == 403
    assert client.form_post(f"/corrective-actions/{action.id}/close", {"note": "done"}).status_code == 403
    assert rows(db, TemplateVersion) == 6 and rows(db, ChecklistTemplate) == 6
    assert db.session.get(CorrectiveAction, action.id).closed_at is None


def test_signed_out_visitor_is_sent_to_sign_in(client):
    for url in ("/checklist-templates", "/checklist-runs", "/corrective-actions"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_another_sites_run_and_action_are_not_found(login_as, manager, nurse, sister_site, other_site, start,
                                                    make_user, db):
    client = login_as(manager)
    theirs = start(sister_site)
    b_nurse = make_user("staff", [sister_site])
    answer(db, b_nurse, theirs, "fridge_temp", "12", "b-key-0001", note="warm")
    action = db.session.scalar(select(CorrectiveAction))
    for url in (f"/checklist-runs/{theirs.id}", f"/corrective-actions/{action.id}",
                f"/checklist-runs?site={sister_site.id}", f"/corrective-actions?site={sister_site.id}",
                f"/checklist-runs?site={other_site.id}"):
        assert client.get(url).status_code == 404, url
    assert client.form_post(f"/corrective-actions/{action.id}/close", {"note": "done"}).status_code == 404
    assert f"/checklist-runs/{theirs.id}" not in text(client.get("/checklist-runs"))
    assert db.session.get(CorrectiveAction, action.id).closed_at is None


# --- templates -----------------------------------------------------------------------------------

def test_templates_list_current_version_items_and_runs_this_week(login_as, manager, site, templates, start, db):
    start(site)
    start(site, day=date(2026, 11, 22))  # last Sunday: not this week (from Monday 23 November)
    page = text(login_as(manager).get("/checklist-templates"))
    row = re.search(rf'<tr id="template-{templates["opening"].id}">(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r'<td class="num">(.*?)</td>', row, re.S)
    assert [re.sub(r"<[^>]+>", "", c).strip() for c in cells] == ["1", "5", "1"]
    assert "Site opening" in row


def test_editing_a_used_template_makes_a_new_version_and_the_old_run_keeps_its_items(login_as, manager, site,
                                                                                       templates, start, db):
    template = templates["weekly"]
    run = start(site, "weekly")
    client = login_as(manager)
    page = text(client.get(f"/checklist-templates/{template.id}/edit"))
    assert "Used by runs: saving makes version 2." in page
    response = client.form_post(f"/checklist-templates/{template.id}/edit", template_form(items=[ONE, TWO]))
    assert response.status_code == 302, field_error(text(response), "items-0-key") or text(response)[:3000]
    db.session.expire_all()
    versions = db.session.scalars(select(TemplateVersion).where(TemplateVersion.template_id == template.id)
                                  .order_by(TemplateVersion.number)).all()
    assert [v.number for v in versions] == [1, 2]
    assert [i.key for i in versions[0].items] == ["sharps_age", "stock_expiry", "training_check"]
    assert [(i.key, i.rule_id, i.note_when) for i in versions[1].items] == [("only", None, "never"),
                                                                          ("second", "sharps-container", "no")]
    run_page = text(client.get(f"/checklist-runs/{run.id}"))  # the old run still shows its own version
    assert "Days the oldest sharps container has been in use" in run_page and "One thing" not in run_page
    preview = text(client.get(f"/checklist-templates/{template.id}"))
    assert "One thing" in preview and "Satu hal" in preview and "version 2" in preview
    old = text(client.get(f"/checklist-templates/{template.id}?version=1"))
    assert "Days the oldest sharps container has been in use" in old and "The tablet uses version 2" in old


def test_editing_an_unused_template_changes_it_in_place(login_as, manager, templates, db):
    template = templates["closing"]
    client = login_as(manager)
    assert "saving changes version 1 in place" in text(client.get(f"/checklist-templates/{template.id}/edit"))
    response = client.form_post(f"/checklist-templates/{template.id}/edit",
                                template_form(("Closing up", "Tutup"), items=[ONE, {**TWO, "required": ""}]))
    assert response.status_code == 302
    db.session.expire_all()
    versions = db.session.scalars(select(TemplateVersion).where(TemplateVersion.template_id == template.id)).all()
    assert len(versions) == 1 and versions[0].number == 1 and versions[0].title == {"en": "Closing up", "id": "Tutup"}
    assert [(i.key, i.is_required) for i in versions[0].items] == [("only", True), ("second", False)]
    assert rows(db, TemplateItem, TemplateItem.version_id == versions[0].id) == 2


def test_the_edit_form_shows_the_items_and_blank_rows_are_left_out(login_as, manager, templates, db):
    template = templates["opening"]
    client = login_as(manager)
    page = text(client.get(f"/checklist-templates/{template.id}/edit"))
    assert 'value="fridge_temp"' in page and 'name="items-3-min"' in page and 'value="8"' in page
    assert 'name="items-7-key"' in page  # five items and three blank rows
    data = template_form(("Site opening", "Pembukaan klinik"),
                         items=[ONE, {"key": "", "en": "", "id": ""}, {**TWO, "remove": "y"}])
    assert client.form_post(f"/checklist-templates/{template.id}/edit", data).status_code == 302
    db.session.expire_all()
    assert [i.key for i in services.current_version(db.session.get(ChecklistTemplate, template.id)).items] == ["only"]


def test_more_rows_adds_rows_and_saves_nothing(login_as, manager, templates, db):
    template = templates["opening"]
    data = template_form(("Changed", "Diubah"), items=[ONE], more="1")
    response = login_as(manager).form_post(f"/checklist-templates/{template.id}/edit", data)
    assert response.status_code == 200
    page = text(response)
    assert 'name="items-5-key"' in page and 'value="Changed"' in page
    db.session.expire_all()
    assert services.current_version(db.session.get(ChecklistTemplate, template.id)).title["en"] == "Site opening"


def test_manager_adds_a_checklist_with_a_number_and_a_choice(login_as, manager, db):
    data = template_form(("Monthly audit", "Audit bulanan"), key="monthly_audit", kind="weekly", items=[
        {"key": "autoclave_temp", "kind": "number", "en": "Room temperature", "id": "Suhu ruangan",
         "min": "18", "max": "25,5", "unit": "°C", "note_when": "out_of_limits"},
        {"key": "grade", "kind": "choice", "en": "Grade", "id": "Nilai", "choices": "A, B , C"}])
    response = login_as(manager).form_post("/checklist-templates/new", data)
    assert response.status_code == 302, text(response)[:3000]
    template = db.session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.key == "monthly_audit"))
    items = services.current_version(template).items
    assert (str(items[0].min_value), str(items[0].max_value), items[0].unit) == ("18.00", "25.50", "°C")
    assert items[1].choices == ["A", "B", "C"]


@pytest.mark.parametrize("items, field, message", [
    ([{**ONE, "en": LONG}], "items-0-en", "300 characters"),
    ([ONE, {**TWO, "key": "only"}], "items-1-key", "item keys must be unique (only)"),
    ([ONE, {"key": "grade", "kind": "choice", "en": "Grade", "id": "Nilai"}], "items-1-choices",
     "a choice item needs its choices (grade)"),
    ([ONE, {**TWO, "kind": "number", "note_when": "never", "min": "warm"}], "items-1-min", "Min must be a number"),
    ([ONE, {**TWO, "kind": "number", "note_when": "never", "min": "9", "max": "2"}], "items-1-min",
     "the minimum is above the maximum"),
    ([ONE, {**TWO, "rule": "no-such-rule"}], "items-1-rule", "no guideline rule no-such-rule"),
    ([{**ONE, "note_when": "no"}], "items-0-note_when", "applies to yes/no questions only"),
    ([{**ONE, "key": "Bad Key"}], "items-0-key", "lower-case letters"),
])
def test_a_bad_item_is_refused_at_its_field_and_nothing_is_stored(login_as, manager, site, templates, start, db,
                                                                  items, field, message):
    start(site, "weekly")  # used: a save would make a new version
    template = templates["weekly"]
    before = (rows(db, TemplateVersion), rows(db, TemplateItem))
    response = login_as(manager).form_post(f"/checklist-templates/{template.id}/edit", template_form(items=items))
    assert response.status_code == 422
    page = text(response)
    assert message in field_error(page, field), page[page.find("flash-error"):][:800]
    assert f'href="#{field}"' in page  # the summary above the form links to it
    assert (rows(db, TemplateVersion), rows(db, TemplateItem)) == before


def test_a_checklist_without_items_or_title_is_refused(login_as, manager, templates, db):
    client = login_as(manager)
    url = f"/checklist-templates/{templates['weekly'].id}/edit"
    response = client.form_post(url, template_form(items=[]))
    assert response.status_code == 422 and "a checklist needs at least one item" in text(response)
    response = client.form_post(url, template_form(("", "Mingguan"), items=[ONE]))
    assert response.status_code == 422 and "Label (English) is required" in field_error(text(response), "title_en")
    response = client.form_post("/checklist-templates/new", template_form(items=[ONE], key="weekly", kind="weekly"))
    assert response.status_code == 409 and "already exists" in field_error(text(response), "key")
    assert rows(db, TemplateVersion) == 6 and rows(db, TemplateItem) == 27


# --- runs ----------------------------------------------------------------------------------------

def test_runs_list_filters_by_site_checklist_status_and_local_day(login_as, admin, nurse, site, sister_site, start,
                                                                  templates, db):
    done = start(site)
    for n, key in enumerate(["surfaces_clean", "disinfectant_fresh", "sharps_below_line", "hand_soap"]):
        answer(db, nurse, done, key, "yes", f"list-{n:04d}")
    answer(db, nurse, done, "fridge_temp", "4", "list-fridge")
    closing = start(site, "closing", day=date(2026, 11, 20))
    theirs = start(sister_site, "weekly")
    client = login_as(admin)

    def shown(query=""):
        response = client.get(f"/checklist-runs{query}")
        assert response.status_code == 200
        return {int(i) for i in re.findall(r'<tr id="run-(\d+)">', text(response))}

    assert shown() == {done.id, closing.id, theirs.id}
    assert shown(f"?site={sister_site.id}") == {theirs.id}
    assert shown(f"?template={templates['closing'].id}") == {closing.id}
    assert shown("?status=complete") == {done.id}
    assert shown("?status=incomplete") == {closing.id, theirs.id}
    assert shown("?from=2026-11-21") == {done.id, theirs.id}
    assert shown("?from=2026-11-19&to=2026-11-20") == {closing.id}
    assert shown("?status=nonsense&from=garbage") == {done.id, closing.id, theirs.id}
    page = text(client.get("/checklist-runs?status=complete&from=2030-01-01"))
    assert "No run matches these filters." in page


def test_runs_list_pages_and_sorts(login_as, manager, site, start, db):
    runs = [start(site, "after_client", day=date(2026, 11, 1 + n)) for n in range(12)]
    client = login_as(manager)

    def shown(query):
        return [int(i) for i in re.findall(r'<tr id="run-(\d+)">', text(client.get(f"/checklist-runs{query}")))]

    first, second = shown("?per_page=10&sort=-day"), shown("?per_page=10&sort=-day&page=2")
    assert first == [r.id for r in reversed(runs)][:10] and second == [runs[1].id, runs[0].id]
    assert shown("?per_page=10&sort=day")[:2] == [runs[0].id, runs[1].id]
    assert "12 in all · page 1 of 2" in text(client.get("/checklist-runs?per_page=10"))


def test_the_run_page_shows_answers_in_force_and_the_corrections_with_reason_and_author(login_as, manager, nurse,
                                                                                         make_user, site, start, db):
    run = start(site)
    budi = make_user("staff", [site], name="Budi Benar")
    old = answer(db, nurse, run, "surfaces_clean", "yes", "run-0001")
    services.amend(actor_for_user(budi), old.id, {"value": "no", "note": "trolley missed",
                                                  "reason": "tapped yes by mistake", "idempotency_key": "run-0002"},
                   NOW)
    db.session.commit()
    answer(db, nurse, run, "fridge_temp", "11", "run-0003", note="door left open")
    page = text(login_as(manager).get(f"/checklist-runs/{run.id}"))
    row = re.search(r'<tr id="item-surfaces_clean"[^>]*>(.*?)</tr>', page, re.S).group(1)
    assert "<strong>No</strong>" in row and "Note: trolley missed" in row
    assert re.search(r"<del>\s*<strong>Yes</strong>\s*</del>", row)
    assert "Corrected by Budi Benar" in row and "tapped yes by mistake" in row and "Nur Nurse" in row
    corrections = page[page.index('id="corrections"'):page.index('id="actions"')]
    assert "<del>Yes</del>" in corrections and "<ins>No</ins>" in corrections and "Budi Benar" in corrections
    fridge = re.search(r'<tr id="item-fridge_temp"[^>]*>(.*?)</tr>', page, re.S).group(1)
    assert "11 °C" in fridge and "out of limits" in fridge
    assert "10:00" in fridge and "AM" not in fridge  # answered at 10:00 in Jakarta (03:00 UTC), a 24-hour clock
    assert "not answered" in page and "Times in the time zone of Jakarta" in page


# --- files ---------------------------------------------------------------------------------------

@pytest.fixture
def signed(app, db, nurse, site, start):
    """A closing run whose signature was uploaded, and the stored file's name."""
    run = start(site, "closing")
    name = services.store_upload(Path(app.instance_path) / "uploads", PNG)
    answer(db, nurse, run, "signature", None, "sign-0001", file_path=name)
    return run, name


def test_a_runs_signature_is_shown_and_served_to_its_sites_readers(login_as, manager, signed):
    run, name = signed
    client = login_as(manager)
    assert f'/checklist-runs/{run.id}/files/{name}' in text(client.get(f"/checklist-runs/{run.id}"))
    response = client.get(f"/checklist-runs/{run.id}/files/{name}")
    body = response.get_data()
    response.close()  # the file it streamed
    assert response.status_code == 200 and response.mimetype == "image/png" and body == PNG
    assert "no-store" in response.headers["Cache-Control"]


def test_the_files_route_refuses_path_tricks_other_runs_and_other_sites(app, login_as, manager, make_user, signed,
                                                                        sister_site, site, start, db):
    run, name = signed
    secret = Path(app.instance_path) / "secret.png"
    secret.write_bytes(PNG)
    stray = "f" * 32 + ".png"  # a real file of the upload folder that no answer of this run points at
    (Path(app.instance_path) / "uploads" / stray).write_bytes(PNG)
    client = login_as(manager)
    for bad in ("../secret.png", "..%2Fsecret.png", "..%2F..%2Fsecret.png", "%2e%2e%2fsecret.png",
                "secret.png", name.upper(), name + ".png", name.replace(".png", ".gif"), stray, "%00" + name):
        assert client.get(f"/checklist-runs/{run.id}/files/{bad}").status_code == 404, bad
    other = start(site, "weekly")
    assert client.get(f"/checklist-runs/{other.id}/files/{name}").status_code == 404  # not this run's file
    outsider = make_user("manager", [sister_site])
    assert login_as(outsider).get(f"/checklist-runs/{run.id}/files/{name}").status_code == 404


# --- corrective actions --------------------------------------------------------------------------

@pytest.fixture
def action(db, nurse, site, start):
    run = start(site)
    answer(db, nurse, run, "fridge_temp", "11", "act-0001", note="door left open")
    return db.session.scalar(select(CorrectiveAction))


def test_open_actions_come_first_with_overdue_highlighted(login_as, manager, nurse, site, start, action, db):
    run = start(site, "weekly")
    answer(db, nurse, run, "stock_expiry", "no", "act-0002", note="two packs past expiry")
    late = db.session.scalar(select(CorrectiveAction).where(CorrectiveAction.id != action.id))
    late.due_on = date(2026, 11, 24)  # yesterday in Jakarta
    closed = action
    db.session.commit()
    client = login_as(manager)
    page = text(client.get("/corrective-actions"))
    assert re.findall(r'<tr id="action-(\d+)"', page) == [str(late.id), str(closed.id)]
    assert re.search(rf'<tr id="action-{late.id}" class="finding-row">', page) and "overdue" in page
    assert "two packs past expiry" in page and "Product fridge temperature" in page
    services.close_action(actor_for_user(manager), closed.id, "fridge repaired", NOW)
    db.session.commit()
    assert re.findall(r'<tr id="action-(\d+)"', text(client.get("/corrective-actions"))) == [str(late.id)]
    assert re.findall(r'<tr id="action-(\d+)"', text(client.get("/corrective-actions?state=closed"))) == \
        [str(closed.id)]
    assert re.findall(r'<tr id="action-(\d+)"', text(client.get("/corrective-actions?state=all"))) == \
        [str(late.id), str(closed.id)]


def test_closing_a_corrective_action_needs_a_note(login_as, manager, action, db):
    client = login_as(manager)
    page = text(client.get("/corrective-actions"))
    assert f'action="/corrective-actions/{action.id}/close' in page and "data-confirm" in page
    response = client.form_post(f"/corrective-actions/{action.id}/close", {"note": "  "})
    assert response.status_code == 422
    assert "Note is required" in field_error(text(response), "note")
    assert db.session.get(CorrectiveAction, action.id).closed_at is None
    response = client.form_post(f"/corrective-actions/{action.id}/close?state=all", {"note": "Fridge serviced"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/corrective-actions?state=all")
    db.session.expire_all()
    closed = db.session.get(CorrectiveAction, action.id)
    assert (closed.close_note, closed.closed_by_id, closed.closed_at) == ("Fridge serviced", manager.id, NOW)
    response = client.form_post(f"/corrective-actions/{action.id}/close", {"note": "again"})
    assert response.status_code == 409 and "already closed" in text(response)
