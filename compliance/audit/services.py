"""The audit trail: every row created, changed or deleted through the product (sign-ins and failed sign-ins
are rows of auth_events, overrides of gate_overrides, releases and fails are changes of cycles …) and every
explicit event (an export) is appended, in the same transaction, with who, when, the entity and its values
before and after, and an HMAC-SHA-256 (under AUDIT_KEY, which is never in the database) of all that and of
the organisation's previous entry: without the key nobody can recompute the chain after an altered entry.

Appends are serialised per organisation through the chain's head row (SELECT … FOR UPDATE on PostgreSQL;
SQLite's BEGIN IMMEDIATE already serialises writers). A flush's changes are told when it happens and appended
when the transaction commits, so that the head is held only from there to the commit (see PENDING below).
Audit rows can't be changed through the ORM.
`verify()` walks each chain and names the first entry that does not hold; removing entries from the end (and
moving the head back) is caught against anchors kept outside the database (`anchors.py`), and rows changed in
the business tables behind the product's back by replaying the log (`state.py`)."""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import current_app, g, has_request_context
from sqlalchemy import event, inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.util import find_tables

from ..extensions import db
from ..timeutil import utcnow
from . import owners
from .models import AuditEntry, AuditHead, AuditPendingEntry

GENESIS = "0" * 64
# Bookkeeping that is not a record of what people did: the scheduler's working state (its changes are
# obligation_changes and findings, which are audited) and the email queue's delivery attempts.
SKIPPED_TABLES = frozenset({"audit_entries", "audit_heads", "audit_pending_entries", "obligations", "outbox_messages",
                            "alembic_version"})
# Columns whose values never go into the log (a change shows as "[changed]").
SECRET_MARKERS = ("hash", "token", "secret", "password")
# An update that only touches these is not an event of its own.
NOISE_COLUMNS = frozenset({"last_used_at"})

# Who acts outside a request: "scheduler", "command line", "demo" … set by the runner and commands.
system_actor: ContextVar[str] = ContextVar("audit_system_actor", default="system")


class AuditTampering(RuntimeError):
    """Raised when code tries to change or delete an audit entry through the ORM."""


# --- values --------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):  # a kept file: its digest, not its bytes
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    return str(value)


def _is_secret(column: str) -> bool:
    return any(marker in column for marker in SECRET_MARKERS)


def _values(obj, changed_only: bool = False) -> tuple[dict, dict]:
    """(before, after) column values of an ORM object; for an update only the changed columns."""
    state = inspect(obj)
    before, after = {}, {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        column = attr.columns[0].name
        hist = state.attrs[key].history
        if changed_only and not hist.has_changes():
            continue
        new = hist.added[0] if hist.added else getattr(obj, key, None)
        old = hist.deleted[0] if hist.deleted else (None if not changed_only else new)
        if _is_secret(column):
            new, old = ("[set]" if new else None), ("[set]" if old else None)
            if changed_only:
                new, old = "[changed]", "[previous]"
        after[column] = _plain(new)
        if changed_only:
            before[column] = _plain(old)
    return before, after


def canonical(fields: dict) -> bytes:
    """An entry's content as hashed: canonical JSON (sorted keys, no spaces), UTF-8."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


@functools.lru_cache(maxsize=8)
def _keyed(key: str) -> "hmac.HMAC":
    # The key's inner and outer pads are hashed once; each entry copies that state (as cheap as a plain SHA-256).
    return hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256)


def audit_key() -> str:
    return current_app.config["AUDIT_KEY"]


def entry_hash(fields: dict, key: str | None = None) -> str:
    """HMAC-SHA-256, under the audit key, of an entry's content and its predecessor's hash."""
    mac = _keyed(key if key is not None else audit_key()).copy()
    mac.update(canonical(fields))
    return mac.hexdigest()


def key_id(key: str | None = None) -> str:
    """A short fingerprint of the audit key (not the key): anchors carry it, so a wrong key is told apart."""
    key = key if key is not None else audit_key()
    return hmac.new(key.encode("utf-8"), b"compliance audit key id", hashlib.sha256).hexdigest()[:16]


def _hashed_fields(organisation_id, seq, at, site_id, actor_user_id, actor_api_key_id, actor_label, action,
                   entity_type, entity_id, before, after, prev_hash) -> dict:
    return {"organisation_id": organisation_id, "seq": seq, "at": at.isoformat(), "site_id": site_id,
            "actor_user_id": actor_user_id, "actor_api_key_id": actor_api_key_id, "actor_label": actor_label,
            "action": action, "entity_type": entity_type, "entity_id": str(entity_id or ""),
            "before": before, "after": after, "prev_hash": prev_hash}


# --- who ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Who:
    user_id: int | None
    api_key_id: int | None
    label: str
    organisation_id: int | None


def _who(connection, actor=None) -> Who:
    if actor is not None and (actor.user_id or actor.api_key_id):
        return _who_from_ids(connection, actor.user_id, actor.api_key_id, actor.organisation_id)
    if has_request_context():
        api = getattr(g, "api_actor", None)
        if api is not None:
            return _who_from_ids(connection, api.user_id, api.api_key_id, api.organisation_id)
        from flask_login import current_user
        user = current_user._get_current_object() if current_user else None
        if user is not None and getattr(user, "is_authenticated", False):
            return Who(user.id, None, f"{user.name} ({user.role})", user.organisation_id)
        return Who(None, None, g.get("audit_label") or "anonymous", None)  # e.g. the first run's set-up page
    return Who(None, None, system_actor.get(), None)


def _who_from_ids(connection, user_id, api_key_id, organisation_id) -> Who:
    from ..auth.models import ApiKey
    from ..sites.models import User
    if user_id:
        name, role = connection.execute(select(User.name, User.role).where(User.id == user_id)).one()
        return Who(user_id, api_key_id, f"{name} ({role})", organisation_id)
    name = connection.execute(select(ApiKey.name).where(ApiKey.id == api_key_id)).scalar()
    return Who(None, api_key_id, f"API key {name}", organisation_id)


# --- where: the organisation (and site) an entity belongs to ----------------------------------------------

def _loaded(cache: dict, table, pk) -> dict | None:
    """A row the session already holds, unexpired (the run an answer was given in, the tablet's site): its
    columns without a query. None when not loaded (then it is read)."""
    session = cache.get(SESSION)
    mapper = _mapper_of(table.name)
    if session is None or mapper is None:
        return None
    obj = session.identity_map.get(identity_key(mapper.class_, pk))
    if obj is None:
        return None
    state = inspect(obj)
    names = [mapper.get_property_by_column(c).key for c in table.columns]
    if state.expired or any(n in state.unloaded for n in names):
        return None
    return {c.name: getattr(obj, n) for c, n in zip(table.columns, names)}


@functools.lru_cache(maxsize=None)
def _mapper_of(table_name: str):
    return next((m for m in db.Model.registry.mappers if m.local_table.name == table_name), None)


SESSION = "__session__"  # the key under which _owner's cache carries the session (for rows already loaded)


def _owner(connection, table, row: dict, cache: dict, depth: int = 0) -> tuple[int | None, int | None]:
    """(organisation_id, site_id) of a row: its own site, else the site of the row its declared foreign key
    leads to (owners.SITE_THROUGH), else its organisation; a table declared nowhere is found through its
    foreign keys, for its organisation only."""
    from ..sites.models import Site
    if table.name == "sites":
        return row.get("organisation_id"), row.get("id")
    if row.get("site_id") is not None:
        key = ("sites", row["site_id"])
        if key not in cache:
            site = _loaded(cache, Site.__table__, row["site_id"])
            cache[key] = (site["organisation_id"] if site else connection.execute(
                select(Site.organisation_id).where(Site.id == row["site_id"])).scalar(), row["site_id"])
        return cache[key]
    through = owners.SITE_THROUGH.get(table.name)
    if through is not None and row.get(through) is not None and depth < 4:
        fk = next(f for f in table.foreign_keys if f.parent.name == through)
        key = (fk.column.table.name, row[through])
        if key not in cache:
            parent_row = _loaded(cache, fk.column.table, row[through]) or connection.execute(
                select(fk.column.table).where(fk.column == row[through])).mappings().first()
            cache[key] = _owner(connection, fk.column.table, dict(parent_row), cache, depth + 1) \
                if parent_row else (None, None)
        if cache[key][0] is not None:
            return cache[key]
    if "organisation_id" in row and row["organisation_id"] is not None:
        return row["organisation_id"], None
    if depth >= 4:
        return None, None
    for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
        value = row.get(fk.parent.name)
        if value is None or fk.column.table is table:
            continue
        parent = fk.column.table
        key = (parent.name, value)
        if key not in cache:
            parent_row = connection.execute(select(parent).where(fk.column == value)).mappings().first()
            cache[key] = _owner(connection, parent, dict(parent_row), cache, depth + 1) if parent_row else (None, None)
        if cache[key][0] is not None:
            return cache[key]
    return None, None


# --- appending ------------------------------------------------------------------------------------------

def _lock_head(connection, organisation_id: int) -> tuple[int, str]:
    """The organisation's chain head, locked until the transaction ends; made (at the genesis) the first time.
    The head exists but for an organisation's first entry: it is locked first, and made only when missing (two
    first entries at once both insert it; one insert does nothing, and both then lock the one row)."""
    locked = (select(AuditHead.seq, AuditHead.hash).where(AuditHead.organisation_id == organisation_id)
              .with_for_update())
    head = connection.execute(locked).one_or_none()
    if head is None:
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(insert(AuditHead.__table__).values(organisation_id=organisation_id, seq=0, hash=GENESIS)
                           .on_conflict_do_nothing(index_elements=["organisation_id"]))
        head = connection.execute(locked).one()
    return head.seq, head.hash


def _append(connection, organisation_id: int, at: datetime, who: Who, action: str, entity_type: str,
            entity_id, site_id: int | None, before: dict | None, after: dict | None) -> str:
    seq, prev = _lock_head(connection, organisation_id)
    seq += 1
    fields = _hashed_fields(organisation_id, seq, at, site_id, who.user_id, who.api_key_id, who.label[:200],
                            action, entity_type, entity_id, before, after, prev)
    digest = entry_hash(fields)
    connection.execute(AuditEntry.__table__.insert().values(
        organisation_id=organisation_id, seq=seq, at=at, site_id=site_id, owner_site_id=site_id,
        actor_user_id=who.user_id,
        actor_api_key_id=who.api_key_id, actor_label=who.label[:200], action=action, entity_type=entity_type,
        entity_id=str(entity_id or "")[:64], before=before, after=after, prev_hash=prev, hash=digest))
    connection.execute(update(AuditHead).where(AuditHead.organisation_id == organisation_id)
                       .values(seq=seq, hash=digest))
    return digest


def _append_many(connection, organisation_id: int, entries: list[tuple]) -> None:
    """Append entries (at, who, action, entity_type, entity_id, site_id, before, after) to one chain, in order:
    the head locked once, the entries inserted in one statement, the head moved once."""
    seq, prev = _lock_head(connection, organisation_id)
    rows = []
    for at, who, action, entity_type, entity_id, site_id, before, after in entries:
        seq += 1
        fields = _hashed_fields(organisation_id, seq, at, site_id, who.user_id, who.api_key_id, who.label[:200],
                                action, entity_type, entity_id, before, after, prev)
        digest = entry_hash(fields)
        rows.append(dict(organisation_id=organisation_id, seq=seq, at=at, site_id=site_id, owner_site_id=site_id,
                         actor_user_id=who.user_id,
                         actor_api_key_id=who.api_key_id, actor_label=who.label[:200], action=action,
                         entity_type=entity_type, entity_id=str(entity_id or "")[:64], before=before, after=after,
                         prev_hash=prev, hash=digest))
        prev = digest
    move_head = update(AuditHead).where(AuditHead.organisation_id == organisation_id).values(seq=seq, hash=prev)
    if connection.dialect.name == "postgresql":
        # One statement (the entries inserted in a CTE, the head moved): one round trip less with the head held.
        connection.execute(move_head.add_cte(AuditEntry.__table__.insert().values(rows).cte("appended")))
    else:
        connection.execute(AuditEntry.__table__.insert(), rows)
        connection.execute(move_head)


# --- changes recorded at the flush, appended at the commit --------------------------------------------------
#
# A flush's changes are told (who, the organisation, before and after) in after_flush, as they happen, but
# appended to their chains only when the transaction commits (or when something reads the audit tables first):
# the chain's head, which serialises the organisation's writers, is then held from the end of the transaction's
# work to its commit, not from its first flush. A savepoint rolled back takes its changes' entries with it; a
# transaction rolled back or closed, all of them.

PENDING = "audit_pending"
AUDIT_TABLES = frozenset({"audit_entries", "audit_heads"})


def _append_pending(session, at_commit: bool = False) -> None:
    """Append the entries the session's flushes told, chain by chain (heads locked in organisation order).
    At the commit on PostgreSQL they are committed unchained instead (audit_pending_entries, no lock) and
    sealed into their chains right after the commit (`seal`)."""
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    chains: dict[int, list[tuple]] = {}
    for _transaction, organisation_id, entry in pending:
        chains.setdefault(organisation_id, []).append(entry)
    connection = session.connection()
    if at_commit and connection.dialect.name == "postgresql":
        connection.execute(AuditPendingEntry.__table__.insert(), [
            dict(organisation_id=organisation_id, at=at, site_id=site_id, actor_user_id=who.user_id,
                 actor_api_key_id=who.api_key_id, actor_label=who.label[:200], action=action,
                 entity_type=entity_type, entity_id=str(entity_id or "")[:64], before=before, after=after)
            for organisation_id, entries in chains.items()
            for at, who, action, entity_type, entity_id, site_id, before, after in entries])
        session.info.setdefault(TO_SEAL, set()).update(chains)
        return
    for organisation_id in sorted(chains):
        _append_many(connection, organisation_id, chains[organisation_id])


@event.listens_for(Session, "before_commit")
def _append_before_commit(session):
    if session.in_nested_transaction():
        return  # a savepoint released: its entries wait for the transaction's commit
    session.flush()  # the commit's own flush, done here so that its changes are appended too
    _append_pending(session, at_commit=True)


# --- sealing (PostgreSQL): the entries committed unchained, moved into their chains in order -------------------
#
# Right after a commit that left entries in audit_pending_entries, the committing process seals its
# organisations' chains in a short transaction of its own: the head taken with FOR UPDATE SKIP LOCKED (nobody
# waits for it), every pending entry of the organisation chained in id order, inserted into audit_entries and
# removed from the pending table, the head moved, committed. If another process holds the head, this one
# leaves: the holder looks again after its own commit and seals what was committed meanwhile (it was committed
# before the holder let go, so the holder's look sees it). Chained content, HMAC, order by sequence, verify and
# anchors are as before; an entry is unchained only for those moments (or, after a crash between the two
# commits, until the next seal: every commit of the organisation, the anchor job, `flask audit verify`).

TO_SEAL = "audit_to_seal"
SEAL_BATCH = 5000


@event.listens_for(Session, "after_commit")
def _seal_after_commit(session):
    organisations = session.info.pop(TO_SEAL, None)
    if organisations:
        try:
            seal(session.get_bind(), sorted(organisations))
        except Exception:  # the entries are committed and wait: the next seal takes them
            current_app.logger.exception("audit: sealing the chains of organisations %s failed; they wait",
                                         sorted(organisations))


def seal(engine=None, organisation_ids: list[int] | None = None) -> int:
    """Move the pending entries into their chains (all organisations with any, or those given); returns how
    many were sealed. Never waits for another sealer."""
    engine = engine if engine is not None else db.engine
    if engine.dialect.name != "postgresql":
        return 0
    pending = AuditPendingEntry.__table__
    sealed = 0
    with engine.connect().execution_options(audit_sealer=True) as connection:
        if organisation_ids is None:
            organisation_ids = sorted(connection.execute(select(pending.c.organisation_id).distinct()).scalars())
            connection.rollback()
        for organisation_id in organisation_ids:
            while True:
                done = _seal_one(connection, organisation_id)
                connection.commit()
                if done is None:
                    break  # another sealer holds the head: it looks again after its commit
                sealed += done
                left = connection.execute(select(pending.c.id).where(
                    pending.c.organisation_id == organisation_id).limit(1)).first()
                connection.rollback()
                if left is None:
                    break
    return sealed


def _seal_one(connection, organisation_id: int) -> int | None:
    pending = AuditPendingEntry.__table__
    locked = (select(AuditHead.seq, AuditHead.hash).where(AuditHead.organisation_id == organisation_id)
              .with_for_update(skip_locked=True))
    head = connection.execute(locked).one_or_none()
    if head is None:
        connection.execute(pg_insert(AuditHead.__table__).values(organisation_id=organisation_id, seq=0,
                                                                 hash=GENESIS)
                           .on_conflict_do_nothing(index_elements=["organisation_id"]))
        head = connection.execute(locked).one_or_none()
        if head is None:
            return None
    rows = connection.execute(select(pending).where(pending.c.organisation_id == organisation_id)
                              .order_by(pending.c.id).limit(SEAL_BATCH)).mappings().all()
    if not rows:
        return 0
    seq, prev, out = head.seq, head.hash, []
    for row in rows:
        seq += 1
        fields = _hashed_fields(organisation_id, seq, row["at"], row["site_id"], row["actor_user_id"],
                                row["actor_api_key_id"], row["actor_label"], row["action"], row["entity_type"],
                                row["entity_id"], row["before"], row["after"], prev)
        digest = entry_hash(fields)
        out.append(dict(organisation_id=organisation_id, seq=seq, at=row["at"], site_id=row["site_id"],
                        owner_site_id=row["site_id"], actor_user_id=row["actor_user_id"],
                        actor_api_key_id=row["actor_api_key_id"], actor_label=row["actor_label"],
                        action=row["action"], entity_type=row["entity_type"], entity_id=row["entity_id"],
                        before=row["before"], after=row["after"], prev_hash=prev, hash=digest))
        prev = digest
    connection.execute(AuditEntry.__table__.insert(), out)
    connection.execute(pending.delete().where(pending.c.id.in_([r["id"] for r in rows])))
    connection.execute(update(AuditHead).where(AuditHead.organisation_id == organisation_id)
                       .values(seq=seq, hash=prev))
    return len(rows)


@event.listens_for(Session, "after_commit")
def _nothing_left(session):
    # Only a commit of the transaction while a savepoint is still open could leave entries behind (the code
    # never does that: savepoints are `with begin_nested()` blocks); say so loudly rather than lose them.
    if not session.in_nested_transaction() and session.info.get(PENDING):
        raise RuntimeError("audit entries were not appended: the transaction was committed inside a savepoint")


@event.listens_for(Session, "do_orm_execute")
def _append_before_reading(orm_execute_state):
    """Whoever reads the audit log or a chain's head in the transaction sees its entries appended."""
    session = orm_execute_state.session
    if session.info.get(PENDING) and orm_execute_state.is_select and _reads_audit(orm_execute_state.statement):
        _append_pending(session)


def _reads_audit(statement) -> bool:
    return any(getattr(table, "name", None) in AUDIT_TABLES
               for table in find_tables(statement, check_columns=True, include_aliases=True, include_joins=True))


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session, previous_transaction):
    """Entries of what a rollback undid: every one for the transaction, a savepoint's own (and its savepoints')."""
    boundary = previous_transaction
    while boundary.parent is not None and not boundary.nested:
        boundary = boundary.parent
    if not boundary.nested:
        session.info.pop(PENDING, None)
        return
    pending = session.info.get(PENDING)
    if pending:
        session.info[PENDING] = [p for p in pending if not _within(p[0], boundary)]


def _within(transaction, boundary) -> bool:
    while transaction is not None:
        if transaction is boundary:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_transaction_end")
def _drop_on_end(session, transaction):
    if transaction.parent is None:  # the transaction is over (committed, rolled back or closed)
        session.info.pop(PENDING, None)
        session.info.pop(TO_SEAL, None)  # (sealed after a commit; nothing to seal after a rollback)


def record_event(action: str, entity_type: str, entity_id, *, organisation_id: int, site_id: int | None = None,
                 before: dict | None = None, after: dict | None = None, actor=None,
                 at: datetime | None = None) -> str:
    """Append an event that is not a row change (an export, a verification) in the current transaction;
    returns its hash (the changes flushed before it are appended first, in their order)."""
    _append_pending(db.session())
    connection = db.session.connection()
    who = _who(connection, actor)
    return _append(connection, organisation_id, at or utcnow(), who, action, entity_type, entity_id, site_id,
                   _plain(before) if before is not None else None, _plain(after) if after is not None else None)


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session, _context, _instances):
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, (AuditEntry, AuditHead)) and (obj in session.deleted or session.is_modified(obj)):
            raise AuditTampering("audit entries are appended only; they can't be changed or deleted")


@event.listens_for(Session, "after_flush")
def _record_changes(session, _context):
    """Every row the flush created, changed or deleted, as entries of its organisation's chain."""
    changes = []
    for kind, objs in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objs:
            mapper = inspect(obj).mapper
            table = mapper.local_table
            if table.name in SKIPPED_TABLES or not hasattr(table, "foreign_keys"):
                continue
            if kind == "update":
                if not session.is_modified(obj, include_collections=False):
                    continue
                before, after = _values(obj, changed_only=True)
                if not after or set(after) <= NOISE_COLUMNS:
                    continue
            elif kind == "create":
                before, after = None, _values(obj)[1]
            else:
                before, after = _values(obj)[1], None
            changes.append((kind, table, obj, before, after))
    if not changes:
        return
    connection = session.connection()
    who, cache, at = _who(connection), {SESSION: session}, utcnow()
    transaction = session.get_nested_transaction()  # None: the transaction itself
    pending = session.info.setdefault(PENDING, [])
    for kind, table, obj, before, after in sorted(changes, key=lambda c: (c[1].name, _pk(c[2]))):
        row = {**(before or {}), **(after or {})}
        if kind == "update":  # the owner comes from the full row, not only the changed columns
            row = {c.name: _plain(getattr(obj, inspect(obj).mapper.get_property_by_column(c).key, None))
                   for c in table.columns}
        organisation_id, site_id = _owner(connection, table, row, cache)
        if organisation_id is None:
            organisation_id = who.organisation_id
        if organisation_id is None:
            continue  # e.g. a row of no organisation (none exist today); nothing to chain it to
        pending.append((transaction, organisation_id,
                        (at, who, kind, table.name, _pk(obj), site_id, before, after)))


def _pk(obj) -> str:
    # In after_flush a new row has its primary key but not yet its identity key: read the key's columns.
    state = inspect(obj)
    values = state.identity or state.mapper.primary_key_from_instance(obj)
    return ",".join(str(v) for v in values) if values and None not in values else ""


# --- verifying ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Break:
    organisation_id: int
    seq: int | None
    entry_id: int | None
    problem: str


def verify(organisation_id: int | None = None, anchors: list | None = None) -> list[Break]:
    """Walk each organisation's chain in order; the first entry that does not hold, per organisation.

    Caught: a changed value or timestamp (its HMAC no longer matches), a chain recomputed without the audit key
    (plain SHA-256 or another key: the first entry's HMAC differs), a deleted entry (a gap in the sequence, or
    the head no longer matches the last entry), entries swapped (the previous-hash links break). With `anchors`
    (heads written outside the database, see anchors.py): entries removed from the end with the head moved
    back, and a chain rewritten by someone holding the key, up to each anchor."""
    key = audit_key()
    heads = {h.organisation_id: h for h in db.session.scalars(select(AuditHead))}
    anchored: dict[int, list] = {}
    for anchor in anchors or ():
        anchored.setdefault(anchor.organisation_id, []).append(anchor)
    org_ids = sorted(set(heads) | set(anchored) | set(db.session.scalars(select(AuditEntry.organisation_id).distinct())))
    if organisation_id is not None:
        org_ids = [o for o in org_ids if o == organisation_id]
    breaks = []
    for org in org_ids:
        wanted = {a.seq for a in anchored.get(org, ())}
        problem, last_seq, last_hash, found = _walk(org, key, wanted)
        if problem is None:
            head = heads.get(org)
            if head is None and last_seq == 0 and org in anchored:
                pass  # no chain at all: told against the anchors below
            elif head is None or head.seq != last_seq or head.hash != last_hash:
                problem = Break(org, last_seq + 1 if head and head.seq > last_seq else last_seq, None,
                                f"the chain ends at entry {last_seq} but its head says {head.seq if head else 'nothing'}"
                                " (entries removed from the end?)")
        if problem is None and org in anchored:
            problem = _check_anchors(org, anchored[org], last_seq, found, key_id(key))
        if problem is not None:
            breaks.append(problem)
    return breaks


def _walk(org: int, key: str, wanted: set[int]) -> tuple[Break | None, int, str, dict[int, tuple[int, str]]]:
    """(first break, last sequence, last hash, {anchored sequence: (entry id, hash)}) of one chain."""
    expected_seq, prev, found = 1, GENESIS, {}
    rows = db.session.execute(select(AuditEntry.__table__).where(AuditEntry.organisation_id == org)
                              .order_by(AuditEntry.seq, AuditEntry.id)).mappings()
    for row in rows:
        if row["seq"] != expected_seq:
            return (Break(org, row["seq"], row["id"],
                          f"entry {expected_seq} is missing (found {row['seq']} after {expected_seq - 1})"),
                    expected_seq - 1, prev, found)
        if row["prev_hash"] != prev:
            return (Break(org, row["seq"], row["id"], "does not follow the entry before it (previous hash differs)"),
                    expected_seq - 1, prev, found)
        fields = _hashed_fields(org, row["seq"], row["at"], row["site_id"], row["actor_user_id"],
                                row["actor_api_key_id"], row["actor_label"], row["action"], row["entity_type"],
                                row["entity_id"], row["before"], row["after"], row["prev_hash"])
        if not hmac.compare_digest(entry_hash(fields, key), row["hash"]):
            return (Break(org, row["seq"], row["id"],
                          "its content was changed, or the chain was recomputed without the audit key "
                          "(HMAC differs; if every chain breaks at entry 1, check AUDIT_KEY)"),
                    expected_seq - 1, prev, found)
        if row["seq"] in wanted:
            found[row["seq"]] = (row["id"], row["hash"])
        expected_seq, prev = expected_seq + 1, row["hash"]
    return None, expected_seq - 1, prev, found


def _check_anchors(org: int, anchors: list, last_seq: int, found: dict, current_key_id: str) -> Break | None:
    """The earliest anchor of an intact chain that does not hold: its entry gone, or not the entry anchored."""
    for a in sorted(anchors, key=lambda a: (a.seq, a.at)):
        when = f"anchored {a.at} ({a.source})"
        if a.key_id and a.key_id != current_key_id:
            return Break(org, a.seq, None, f"{when} under another audit key (key id {a.key_id}, now "
                                           f"{current_key_id}): is AUDIT_KEY the key in use then?")
        if a.seq > last_seq:
            gone = f"entry {a.seq}" if a.seq == last_seq + 1 else f"entries {last_seq + 1}–{a.seq}"
            return Break(org, last_seq + 1, None, f"{gone} missing: {when} as the head, but the chain ends at entry "
                                                  f"{last_seq} (entries removed from the end and the head moved back?)")
        if a.seq == 0:
            continue
        entry_id, digest = found[a.seq]
        if not hmac.compare_digest(digest, a.hash):
            return Break(org, a.seq, entry_id, f"differs from the entry {when}: the chain was rewritten up to here "
                                               "by someone holding the audit key")
    return None


def entries_query(actor, site_id: int | None = None, entity_type: str | None = None, action: str | None = None,
                  search: str = ""):
    """The audit log an actor may read: its organisation's entries for its sites (and those of no site)."""
    actor.require("audit.read")
    stmt = select(AuditEntry).where(AuditEntry.organisation_id == actor.organisation_id,
                                    (AuditEntry.owner_site_id.in_(actor.site_ids)) | AuditEntry.owner_site_id.is_(None))
    if site_id is not None:
        stmt = stmt.where(AuditEntry.owner_site_id == site_id)
    if entity_type:
        stmt = stmt.where(AuditEntry.entity_type == entity_type)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if search.strip():
        like = f"%{search.strip()}%"
        stmt = stmt.where(AuditEntry.actor_label.ilike(like) | AuditEntry.entity_id.ilike(like))
    return stmt


def record_export(actor, name: str, fmt: str, site_id: int | None, params: dict, content: bytes | None = None) -> None:
    """An export (a CSV, a PDF) into the audit log, with what was asked and the SHA-256 of what was sent
    (absent for a streamed file); committed at once, before the file leaves."""
    after = {"format": fmt, **{k: v for k, v in params.items() if v not in (None, "")}}
    if content is not None:
        after["sha256"] = hashlib.sha256(content).hexdigest()
    record_event("export", "report", name, organisation_id=actor.organisation_id, site_id=site_id, after=after,
                 actor=actor)
    db.session.commit()


def snapshot(obj, keys) -> dict:
    """An object's values of `keys`, taken before a conditional UPDATE changes them."""
    return {k: getattr(obj, k) for k in keys}


def record_claim(obj, before: dict, after: dict, actor=None) -> None:
    """A conditional UPDATE (a claim: a load released, a pack used, a result stored) bypasses the flush
    listener; the service that made it records it here, once it changed its row."""
    _append_pending(db.session())
    connection = db.session.connection()
    table = inspect(obj).mapper.local_table
    row = {c.name: _plain(getattr(obj, inspect(obj).mapper.get_property_by_column(c).key, None)) for c in table.columns}
    organisation_id, site_id = _owner(connection, table, row, {})
    who = _who(connection, actor)
    if organisation_id is None:
        organisation_id = who.organisation_id
    if organisation_id is None:
        return
    _append(connection, organisation_id, utcnow(), who, "update", table.name, _pk(obj), site_id,
            _plain(before), _plain(after))
