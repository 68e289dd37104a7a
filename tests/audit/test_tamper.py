"""Tampering by someone who can write the database (but holds neither the audit key nor the anchors) is caught:
the head moved back with the newest entries deleted (against an anchor), the chain recomputed after an altered
entry without the key (plain SHA-256, another key), a business row changed, added or removed directly."""
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, insert, select, update

from compliance.audit import anchors as audit_anchors
from compliance.audit import services as audit
from compliance.audit.models import AuditEntry, AuditHead
from compliance.audit.state import differences
from compliance.auth.actor import actor_for_user
from compliance.checklists import services as checklists
from compliance.checklists.models import Answer, ChecklistTemplate
from compliance.schedule import runner as runner_module
from compliance.schedule import services as schedule
from compliance.schedule.models import OutboxMessage
from compliance.sites import services as site_services
from compliance.sites.models import Room

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


@pytest.fixture
def chain(db, site, manager, nurse):
    """A dozen real entries of the site's organisation (rooms, training records); returns its id."""
    actor = actor_for_user(manager)
    for i in range(4):
        site_services.create_room(actor, {"site_id": site.id, "name": f"Room {i + 10}", "kind": "treatment"}, NOW)
        db.session.commit()
    for course in ("infection_control", "microneedling"):
        site_services.record_training(actor, {"user_id": nurse.id, "course": course, "completed_on": "2026-01-10",
                                              "expires_on": "2027-01-10"}, NOW)
        db.session.commit()
    return site.organisation_id


def _rows(db, org):
    table = AuditEntry.__table__
    return list(db.session.execute(select(table).where(table.c.organisation_id == org).order_by(table.c.seq))
                .mappings())


def _head(db, org):
    head = db.session.get(AuditHead, org)
    db.session.refresh(head)
    return head.seq, head.hash


def _recompute_from(db, org, first_seq, digest):
    """What an attacker with database access does: re-hash every entry from `first_seq` with `digest` and
    move the head along, so that each entry follows the one before it again."""
    table = AuditEntry.__table__
    prev = audit.GENESIS
    for row in _rows(db, org):
        if row["seq"] >= first_seq:
            fields = audit._hashed_fields(org, row["seq"], row["at"], row["site_id"], row["actor_user_id"],
                                          row["actor_api_key_id"], row["actor_label"], row["action"],
                                          row["entity_type"], row["entity_id"], row["before"], row["after"], prev)
            new = digest(fields)
            db.session.execute(update(table).where(table.c.id == row["id"]).values(prev_hash=prev, hash=new))
            prev = new
        else:
            prev = row["hash"]
    db.session.execute(update(AuditHead).where(AuditHead.organisation_id == org).values(hash=prev))
    db.session.commit()


def _plain_sha256(fields):  # the entry_hash of before this change: SHA-256 of the canonical JSON
    return hashlib.sha256(audit.canonical(fields)).hexdigest()


def _other_key(fields):
    return hmac.new(b"a key guessed or found elsewhere, not AUDIT_KEY", audit.canonical(fields),
                    hashlib.sha256).hexdigest()


# --- the chain: HMAC under a key that is not in the database ---------------------------------------------

def test_entries_are_hmacs_under_the_audit_key_not_plain_sha256(app, db, chain):
    row = _rows(db, chain)[0]
    fields = audit._hashed_fields(chain, row["seq"], row["at"], row["site_id"], row["actor_user_id"],
                                  row["actor_api_key_id"], row["actor_label"], row["action"], row["entity_type"],
                                  row["entity_id"], row["before"], row["after"], row["prev_hash"])
    expected = hmac.new(app.config["AUDIT_KEY"].encode(), audit.canonical(fields), hashlib.sha256).hexdigest()
    assert row["hash"] == expected != _plain_sha256(fields)


@pytest.mark.parametrize("digest", [_plain_sha256, _other_key], ids=["plain-sha256", "another-key"])
def test_a_chain_recomputed_without_the_key_after_an_altered_entry_is_caught(db, runner, chain, digest):
    rows = _rows(db, chain)
    victim = rows[3]
    after = dict(victim["after"], name="Room renamed quietly")
    db.session.execute(update(AuditEntry).where(AuditEntry.id == victim["id"]).values(after=after))
    _recompute_from(db, chain, victim["seq"], digest)
    # Every link holds again (each previous hash, the head) — only the key tells the entries are forged.
    relinked = _rows(db, chain)
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(relinked, relinked[1:]))
    assert _head(db, chain) == (relinked[-1]["seq"], relinked[-1]["hash"])
    [found] = audit.verify()
    assert (found.organisation_id, found.seq) == (chain, victim["seq"])
    assert "without the audit key" in found.problem
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and f"entry {victim['seq']}" in result.output


def test_the_whole_chain_recomputed_with_plain_sha256_breaks_at_the_first_entry(db, chain):
    _recompute_from(db, chain, 1, _plain_sha256)
    [found] = audit.verify()
    assert found.seq == 1


# --- anchors: the head outside the database ------------------------------------------------------------

def test_the_head_moved_back_with_the_newest_entry_deleted_is_caught_by_an_anchor(db, runner, chain, tmp_path):
    anchors_file = tmp_path / "anchors.jsonl"
    anchored = runner.invoke(args=["audit", "anchor", "--file", str(anchors_file)])
    assert anchored.exit_code == 0, anchored.output
    rows = _rows(db, chain)
    last, before_last = rows[-1], rows[-2]
    assert runner.invoke(args=["audit", "verify", "--anchor", str(anchors_file)]).exit_code == 0
    # The newest entry goes and the head is moved back onto the one before: every link still holds.
    db.session.execute(delete(AuditEntry).where(AuditEntry.id == last["id"]))
    db.session.execute(update(AuditHead).where(AuditHead.organisation_id == chain)
                       .values(seq=before_last["seq"], hash=before_last["hash"]))
    db.session.commit()
    assert audit.verify() == []  # what the database alone can show: nothing (this is what anchors are for)
    anchors, problems = audit_anchors.read_anchors(anchors_file)
    assert problems == []
    [found] = audit.verify(anchors=anchors)
    assert (found.organisation_id, found.seq) == (chain, last["seq"])
    assert "missing" in found.problem and f"ends at entry {before_last['seq']}" in found.problem
    result = runner.invoke(args=["audit", "verify", "--anchor", str(anchors_file)])
    assert result.exit_code == 1
    assert f"organisation {chain}: entry {last['seq']}" in result.output and "missing" in result.output


def test_a_chain_rewritten_with_the_key_is_caught_by_an_older_anchor(app, db, chain, tmp_path):
    """Someone holding the key can recompute the chain; an anchor written before still tells."""
    anchors_file = tmp_path / "anchors.jsonl"
    audit_anchors.append_anchors(NOW, anchors_file)
    victim = _rows(db, chain)[2]
    db.session.execute(update(AuditEntry).where(AuditEntry.id == victim["id"]).values(actor_label="Someone Else"))
    key = app.config["AUDIT_KEY"]
    _recompute_from(db, chain, victim["seq"], lambda fields: audit.entry_hash(fields, key))
    assert audit.verify() == []
    anchors, _problems = audit_anchors.read_anchors(anchors_file)
    [found] = audit.verify(anchors=anchors)
    assert found.seq == anchors[0].seq and "rewritten" in found.problem


def test_an_anchor_made_under_another_key_is_reported(db, chain, tmp_path):
    anchors_file = tmp_path / "anchors.jsonl"
    [anchor] = audit_anchors.append_anchors(NOW, anchors_file)
    line = json.loads(anchors_file.read_text())
    anchors_file.write_text(json.dumps({**line, "key_id": "0" * 16}) + "\n")
    anchors, _ = audit_anchors.read_anchors(anchors_file)
    [found] = audit.verify(anchors=anchors)
    assert found.seq == anchor.seq and "another audit key" in found.problem


def test_the_anchor_command_appends_and_keeps_earlier_lines(db, runner, chain, manager, site, tmp_path):
    anchors_file = tmp_path / "anchors.jsonl"
    first = runner.invoke(args=["audit", "anchor", "--file", str(anchors_file)])
    seq1, hash1 = _head(db, chain)
    site_services.create_room(actor_for_user(manager), {"site_id": site.id, "name": "Room 99", "kind": "treatment"},
                              NOW)
    db.session.commit()
    second = runner.invoke(args=["audit", "anchor", "--file", str(anchors_file)])
    assert first.exit_code == second.exit_code == 0
    assert "1 anchor(s) appended" in second.output and hash1 in first.output
    lines = [json.loads(line) for line in anchors_file.read_text().splitlines()]
    assert [(line["organisation_id"], line["seq"], line["hash"]) for line in lines] == [
        (chain, seq1, hash1), (chain, *_head(db, chain))]
    assert lines[1]["seq"] > lines[0]["seq"] and all(line["at"] and line["key_id"] for line in lines)


def test_the_anchor_command_writes_the_configured_file_by_default(app, db, runner, chain, tmp_path, monkeypatch):
    target = tmp_path / "default-anchors.jsonl"
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_FILE", str(target))
    result = runner.invoke(args=["audit", "anchor"])
    assert result.exit_code == 0 and str(target) in result.output
    assert json.loads(target.read_text())["seq"] == _head(db, chain)[0]


def test_the_scheduled_anchor_job_appends_every_head(app, db, chain, other_site, make_user, tmp_path, monkeypatch):
    make_user("manager", [other_site])  # a second organisation with a chain of its own
    target = tmp_path / "scheduled.jsonl"
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_FILE", str(target))
    runner_module.anchor_job(app)
    runner_module.anchor_job(app)
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    heads = {h.organisation_id: (h.seq, h.hash) for h in db.session.scalars(select(AuditHead))}
    assert len(heads) == 2 and len(lines) == 4
    assert {line["organisation_id"]: (line["seq"], line["hash"]) for line in lines} == heads
    anchors, problems = audit_anchors.read_anchors(target)
    assert problems == [] and audit.verify(anchors=anchors) == []


def test_an_unreadable_anchor_line_fails_the_check(db, runner, chain, tmp_path):
    anchors_file = tmp_path / "anchors.jsonl"
    audit_anchors.append_anchors(NOW, anchors_file)
    with open(anchors_file, "a") as fh:
        fh.write("{not json\n")
    result = runner.invoke(args=["audit", "verify", "--anchor", str(anchors_file)])
    assert result.exit_code == 1 and "line 2: not an anchor" in result.output


def test_the_digest_carries_the_head_of_the_organisations_chain(db, site, manager, admin, nurse, tmp_path):
    schedule.sync_site(site, NOW)
    db.session.commit()
    schedule.scan(NOW + timedelta(hours=3))  # the opening checklist is overdue
    db.session.commit()
    seq, digest_hash = _head(db, site.organisation_id)
    assert schedule.queue_digests(datetime(2026, 11, 26, 0, 0, tzinfo=timezone.utc)) == 2  # 07:00 Jakarta
    db.session.commit()
    emails = list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest")))
    assert {e.recipient for e in emails} == {manager.email, admin.email}
    for email in emails:
        assert f"entry {seq}, HMAC {digest_hash}" in email.text_body
        assert f"entry {seq}, HMAC {digest_hash}" in email.html_body
    # The anchor line pasted from the email into a file is read by verify --anchor.
    pasted = tmp_path / "from-email.txt"
    pasted.write_text("\n".join(l for l in emails[0].text_body.splitlines() if l.startswith("Audit anchor:")))
    anchors, problems = audit_anchors.read_anchors(pasted)
    assert problems == [] and [(a.organisation_id, a.seq, a.hash) for a in anchors] == [
        (site.organisation_id, seq, digest_hash)]
    assert audit.verify(anchors=anchors) == []


# --- the business tables against the log ---------------------------------------------------------------

@pytest.fixture
def answered(db, site, nurse):
    checklists.load_default_templates(site.organisation_id, NOW)
    db.session.commit()
    template = db.session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.key == "after_client"))
    actor = actor_for_user(nurse)
    run = checklists.start_run(actor, {"site_id": site.id, "template_id": template.id}, NOW)
    for n, item in enumerate(checklists.current_version(template).items):
        checklists.answer(actor, run.id, {"item_id": item.id, "value": "yes", "idempotency_key": f"tamper-answer-{n}",
                                          "note": ""}, NOW)
    db.session.commit()
    return list(db.session.scalars(select(Answer).order_by(Answer.id)))


def test_a_create_names_its_row(db, chain):
    rooms = {r.id for r in db.session.scalars(select(Room).where(Room.name.like("Room 1_")))}
    logged = {e.entity_id for e in db.session.scalars(select(AuditEntry).where(
        AuditEntry.entity_type == "rooms", AuditEntry.action == "create"))}
    assert len(rooms) == 4 and {str(i) for i in rooms} <= logged


def test_state_matches_when_everything_went_through_the_product(db, runner, answered):
    assert list(differences()) == []
    result = runner.invoke(args=["audit", "verify", "--state"])
    assert result.exit_code == 0, result.output
    assert "every audited row matches" in result.output


def test_an_answer_changed_directly_in_its_table_is_named(db, runner, answered):
    victim = answered[1]
    assert victim.value is True  # "yes", as the nurse answered it
    db.session.execute(update(Answer.__table__).where(Answer.__table__.c.id == victim.id).values(value=False))
    db.session.commit()
    assert audit.verify() == []  # the chain itself is untouched
    [found] = differences()
    assert (found.table, found.row_id, found.column) == ("answers", str(victim.id), "value")
    assert (found.logged, found.current) == (True, False)
    result = runner.invoke(args=["audit", "verify", "--state"])
    assert result.exit_code == 1
    assert f"state: answers {victim.id} value: the audit trail says True, the row holds False" in result.output


def test_rows_added_or_removed_directly_are_named(db, runner, answered, site):
    removed_id = answered[-1].id
    db.session.execute(delete(Answer.__table__).where(Answer.__table__.c.id == removed_id))
    db.session.execute(insert(Room.__table__).values(site_id=site.id, name="Back room", name_key="back room",
                                                     kind="treatment", is_active=True))
    db.session.commit()
    found = {(d.table, d.row_id): d.problem for d in differences()}
    added_id = db.session.scalar(select(Room.id).where(Room.name == "Back room"))
    assert found.keys() == {("answers", str(removed_id)), ("rooms", str(added_id))}
    assert found[("answers", str(removed_id))].startswith("missing")
    assert found[("rooms", str(added_id))].startswith("no audit entry")
    assert runner.invoke(args=["audit", "verify", "--state"]).exit_code == 1
