"""Anchors: each organisation's chain head (sequence number and HMAC) written outside the database — appended
to a file (AUDIT_ANCHOR_FILE, one JSON object a line; the scheduler appends every AUDIT_ANCHOR_MINUTES, and
`flask --app wsgi audit anchor` at once) and printed in the managers' and admins' daily digest email.

An anchor says: at this moment, this organisation's chain ended at entry `seq` whose HMAC was `hash`. Someone
who can write the database but does not hold the anchors cannot remove entries up to an anchor (moving the
head back) or rewrite any, even with the audit key: `verify(anchors=…)` finds the anchored entry gone or
different. Entries after the newest anchor are protected by the HMAC only against rewriting, not against
being cut off."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from .models import AuditHead
from .services import key_id


@dataclass(frozen=True)
class Anchor:
    organisation_id: int
    seq: int
    hash: str
    at: str
    key_id: str = ""
    source: str = ""  # where it was read: "anchors.jsonl line 12"

    def line(self) -> str:
        return json.dumps({"organisation_id": self.organisation_id, "seq": self.seq, "hash": self.hash,
                           "at": self.at, "key_id": self.key_id}, separators=(",", ":"))


def current_heads(now: datetime, organisation_id: int | None = None) -> list[Anchor]:
    """Each organisation's head now, as anchors."""
    stmt = select(AuditHead).order_by(AuditHead.organisation_id)
    if organisation_id is not None:
        stmt = stmt.where(AuditHead.organisation_id == organisation_id)
    kid = key_id()
    return [Anchor(h.organisation_id, h.seq, h.hash, now.isoformat(timespec="seconds"), kid)
            for h in db.session.scalars(stmt)]


def anchor_file() -> Path:
    return Path(current_app.config["AUDIT_ANCHOR_FILE"])


def append_anchors(now: datetime, path: str | os.PathLike | None = None) -> list[Anchor]:
    """Append every organisation's head to the anchor file (created if missing; never rewritten), the entries
    waiting to be sealed sealed first."""
    from .services import seal

    seal()
    anchors = current_heads(now)
    if not anchors:
        return []
    target = Path(path) if path is not None else anchor_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    # One write on a descriptor opened O_APPEND: lines of two writers (the command, the scheduler) never mix.
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, "".join(a.line() + "\n" for a in anchors).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return anchors


def read_anchors(path: str | os.PathLike) -> tuple[list[Anchor], list[str]]:
    """(anchors, problems) of an anchor file: each line a JSON object; blank lines and `#` comments skipped.
    A line pasted from a digest email ("Audit anchor: {…}") is read too."""
    anchors, problems = [], []
    name = Path(path).name
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            if not text.startswith("{") and "{" in text:
                text = text[text.index("{"):]
            try:
                data = json.loads(text)
                anchor = Anchor(int(data["organisation_id"]), int(data["seq"]), str(data["hash"]), str(data["at"]),
                                str(data.get("key_id") or ""), f"{name} line {number}")
                if anchor.seq < 0 or len(anchor.hash) != 64:
                    raise ValueError("bad sequence or hash")
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"{name} line {number}: not an anchor ({exc})")
                continue
            anchors.append(anchor)
    return anchors, problems
