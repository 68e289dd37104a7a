"""The organisation's export: every table of the organisation as a CSV with a manifest, read back against the
database; nothing of another organisation; no credentials; admins only; recorded in the audit trail."""
import csv
import hashlib
import io
import json
import zipfile

import pytest
from sqlalchemy import select

from compliance.audit.export import SECRETS, cell, scopes
from compliance.audit.models import AuditEntry
from compliance.extensions import db as _db
from compliance.sites.models import Organisation


@pytest.fixture
def demo(db, runner):
    assert runner.invoke(args=["demo"]).exit_code == 0
    return _db.session.scalar(select(Organisation).where(Organisation.name.like("%Demo%")))


def _read(body: bytes) -> tuple[dict, dict[str, list[dict]]]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        files = {}
        for name, info in manifest["tables"].items():
            raw = archive.read(info["file"])
            assert hashlib.sha256(raw).hexdigest() == info["sha256"], name
            files[name] = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    return manifest, files


@pytest.mark.slow
def test_the_export_of_the_demo_reads_back_as_the_database(demo, db, runner, tmp_path, make_org, make_site):
    other = make_site(org=make_org(), name="Elsewhere")   # another organisation: never in the export
    target = tmp_path / "export.zip"
    result = runner.invoke(args=["export", "--organisation", str(demo.id), "-o", str(target)])
    assert result.exit_code == 0, result.output
    manifest, files = _read(target.read_bytes())
    where, unreached = scopes(demo.id)
    assert set(files) == set(where) and unreached == manifest["not_exported"] == []
    assert manifest["organisation"]["id"] == demo.id
    total = 0
    for name, rows in files.items():
        table = _db.metadata.tables[name]
        kept = [c for c in table.columns if c.name not in SECRETS]
        expected = [[cell(v) for v in row] for row in _db.session.execute(
            select(*kept).where(where[name]).order_by(*table.primary_key.columns)).all()]
        if name == "audit_entries":     # the export's own entry came after it
            expected = expected[:-1]
        if name == "audit_heads":       # … and moved the head on by one
            assert [r["seq"] for r in rows] == [str(manifest["audit_head"]["seq"])]
            continue
        assert [[r[c.name] for c in kept] for r in rows] == expected, name
        assert manifest["tables"][name]["rows"] == len(rows)
        total += len(rows)
        assert not SECRETS & set(rows[0] if rows else {}), name
    assert total > 1000 and len(files["occurrences"]) > 50 and len(files["users"]) == 8
    assert all(r["id"] != str(other.id) for r in files["sites"])
    assert {r["organisation_id"] for r in files["audit_entries"]} == {str(demo.id)}
    head = manifest["audit_head"]
    assert head["seq"] == max(int(r["seq"]) for r in files["audit_entries"])
    last = _db.session.scalar(select(AuditEntry).where(AuditEntry.organisation_id == demo.id)
                              .order_by(AuditEntry.seq.desc()).limit(1))
    assert (last.action, last.entity_type) == ("export", "organisation") and last.seq == head["seq"] + 1
    assert last.after["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()


def test_only_an_admin_downloads_it_and_the_page_lists_the_tables(client, login_as, admin, manager, auditor, site):
    for person in (manager, auditor):
        c = login_as(person)
        assert c.get("/admin/export").status_code == 403
        assert c.get("/admin/export.zip").status_code == 403
    c = login_as(admin)
    page = c.get("/admin/export")
    assert page.status_code == 200 and "occurrences" in page.get_data(as_text=True)
    response = c.get("/admin/export.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    manifest, files = _read(response.data)
    assert [r["id"] for r in files["sites"]] == [str(site.id)]
    assert {r["email"] for r in files["users"]} >= {admin.email, manager.email}
    assert "password_hash" not in files["users"][0] and "password_hash" in manifest["tables"]["users"]["left_out"]


def test_the_command_refuses_an_unknown_organisation(runner, db):
    result = runner.invoke(args=["export", "--organisation", "No such clinic", "-o", "/tmp/never.zip"])
    assert result.exit_code != 0 and "no organisation" in result.output
