"""The whole organisation as a zip of CSV files, one per table, with a manifest: for backups an inspector can
read, and for a clinic that leaves.

Which rows belong to the organisation is worked out from the schema, not listed by hand: a table with an
`organisation_id` column is filtered on it; one with a `site_id` on the organisation's sites; any other by a
foreign key to a table already filtered (tables are visited parents first). A table no path reaches (the
migration version) is left out and named in the manifest. Secrets (password and PIN hashes, API key and
token hashes) are never exported: their columns are listed in the manifest as left out.

CSV values are machine-readable: ISO 8601 times in UTC, decimals with a point, JSON as JSON text, booleans
as true/false, NULL as an empty cell. The manifest gives each file's row count and SHA-256 and the audit
trail's head (sequence number and hash) at the moment of the export, so a reader can check the files and
tie them to the hash chain."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from ..auth.actor import Actor
from ..extensions import db
from ..sites.models import Organisation
from .models import AuditHead
from .services import record_event

# Credentials, never exported (the audit trail's own hashes are not secrets: they are the chain).
SECRETS = frozenset({"password_hash", "pin_hash", "key_hash", "token_hash"})


@dataclass(frozen=True)
class TableExport:
    name: str
    file: str
    rows: int
    sha256: str
    columns: tuple[str, ...]
    left_out: tuple[str, ...]


def _is_secret(column_name: str) -> bool:
    return column_name in SECRETS or column_name.endswith("_secret")


def cell(value: Any) -> str:
    """One value as the CSV holds it (machine-readable)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite hands back naive UTC for the raw table reads
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def scopes(organisation_id: int) -> tuple[dict[str, Any], list[str]]:
    """{table name: the WHERE clause choosing the organisation's rows}, and the tables no path reaches."""
    where: dict[str, Any] = {}
    unreached: list[str] = []
    for table in db.metadata.sorted_tables:
        columns = table.c
        if table.name == "organisations":
            where[table.name] = columns.id == organisation_id
        elif "organisation_id" in columns:
            where[table.name] = columns.organisation_id == organisation_id
        elif "site_id" in columns and "sites" in where:
            sites = db.metadata.tables["sites"]
            where[table.name] = columns.site_id.in_(select(sites.c.id).where(where["sites"]))
        else:
            clause = None
            for fk in sorted(table.foreign_keys, key=lambda f: (f.parent.nullable, f.parent.name)):
                parent = fk.column.table
                if parent.name in where and parent.name != "users" and fk.column.name == "id":
                    clause = fk.parent.in_(select(parent.c.id).where(where[parent.name]))
                    break
            if clause is None:  # people only as a last resort (a row made by someone is not theirs): whose it is
                for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name != "user_id"):
                    parent = fk.column.table
                    if parent.name in where and fk.column.name == "id":
                        clause = fk.parent.in_(select(parent.c.id).where(where[parent.name]))
                        break
            if clause is None:
                unreached.append(table.name)
                continue
            where[table.name] = clause
    return where, unreached


def build(organisation_id: int) -> tuple[bytes, dict]:
    """The zip and its manifest (also inside the zip as manifest.json)."""
    where, unreached = scopes(organisation_id)
    organisation = db.session.get(Organisation, organisation_id)
    head = db.session.get(AuditHead, organisation_id)
    exports: list[TableExport] = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(where):
            table = db.metadata.tables[name]
            kept = [c for c in table.columns if not _is_secret(c.name)]
            left_out = tuple(c.name for c in table.columns if _is_secret(c.name))
            order = [c for c in table.primary_key.columns] or kept[:1]
            rows = db.session.execute(select(*kept).where(where[name]).order_by(*order)).all()
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow([c.name for c in kept])
            for row in rows:
                writer.writerow([cell(v) for v in row])
            body = text.getvalue().encode("utf-8")
            archive.writestr(f"{name}.csv", body)
            exports.append(TableExport(name, f"{name}.csv", len(rows), hashlib.sha256(body).hexdigest(),
                                       tuple(c.name for c in kept), left_out))
        manifest = {
            "organisation": {"id": organisation.id, "name": organisation.name},
            "format": "one CSV per table (UTF-8, header row); times ISO 8601 UTC, decimals with a point, JSON "
                      "as text, booleans true/false, NULL empty",
            "audit_head": {"seq": head.seq if head else 0, "hash": head.hash if head else None},
            "tables": {e.name: {"file": e.file, "rows": e.rows, "sha256": e.sha256, "columns": list(e.columns),
                                "left_out": list(e.left_out)} for e in exports},
            "not_exported": sorted(unreached),
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
    return buffer.getvalue(), manifest


def export_organisation(actor: Actor | None, organisation_id: int, now: datetime) -> tuple[bytes, dict]:
    """An admin's export of their organisation (actor None: the operator's command). Recorded in the audit
    trail with the zip's SHA-256; the manifest's audit head is the one before that entry."""
    if actor is not None:
        actor.require("organisation.export")
        organisation_id = actor.organisation_id
    body, manifest = build(organisation_id)
    sha256 = hashlib.sha256(body).hexdigest()
    record_event("export", "organisation", organisation_id, organisation_id=organisation_id, actor=actor,
                 after={"format": "zip", "sha256": sha256, "tables": len(manifest["tables"]),
                        "rows": sum(t["rows"] for t in manifest["tables"].values())}, at=now)
    manifest["sha256"] = sha256
    return body, manifest
