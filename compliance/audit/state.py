"""Replaying the audit trail against the business tables: every row changed, added or removed behind the
product's back (directly in the database) is named.

Each row the product creates, changes or deletes has entries (create: every column's value; update: the
changed columns; delete: the last values). Replayed in order, per (table, row id), they give the values the
row must hold now; the current row is compared column by column. What cannot be compared: the columns the log
never holds (password, PIN, key and token hashes are logged only as "[set]"/"[changed]"), updates that only
touch `last_used_at`, tables that are not audited (the scheduler's `obligations`, the email queue
`outbox_messages`, `user_sites`, the audit tables themselves), columns added later by a migration (filled
without an entry), and rows made before the audit trail or by a migration ("no audit entry")."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

from sqlalchemy import Boolean, Date, DateTime, Float, Numeric, select

from ..extensions import db
from .models import AuditEntry
from .services import NOISE_COLUMNS, SKIPPED_TABLES, _is_secret, _owner, _plain

ROW_ACTIONS = ("create", "update", "delete")
_DELETED = object()


@dataclass(frozen=True)
class Difference:
    table: str
    row_id: str
    column: str | None
    problem: str
    logged: Any = None
    current: Any = None

    def __str__(self) -> str:
        where = f"{self.table} {self.row_id}" + (f" {self.column}" if self.column else "")
        if self.problem == "changed":
            return (f"{where}: the audit trail says {self.logged!r}, the row holds {self.current!r} "
                    "(changed outside the product)")
        return f"{where}: {self.problem}"


def audited_tables() -> list[tuple[Any, Any]]:
    """(table, mapper) of every mapped table whose changes the audit trail records, by table name."""
    seen = {}
    for mapper in db.Model.registry.mappers:
        table = mapper.local_table
        if table.name not in SKIPPED_TABLES and hasattr(table, "foreign_keys"):
            seen[table.name] = (table, mapper)
    return [seen[name] for name in sorted(seen)]


def _replay(table_name: str, pk: list[str]) -> dict[str, Any]:
    """{row id: the values its entries leave it with, or _DELETED} for one table."""
    state: dict[str, Any] = {}
    rows = db.session.execute(
        select(AuditEntry.entity_id, AuditEntry.action, AuditEntry.after)
        .where(AuditEntry.entity_type == table_name, AuditEntry.action.in_(ROW_ACTIONS))
        .order_by(AuditEntry.organisation_id, AuditEntry.seq).execution_options(yield_per=2000))
    for entity_id, action, after in rows:
        if not entity_id and after and all(after.get(name) is not None for name in pk):
            entity_id = ",".join(str(after[name]) for name in pk)  # creates logged before the id was recorded
        if action == "delete":
            state[entity_id] = _DELETED
        elif action == "create" or state.get(entity_id) is _DELETED:
            state[entity_id] = dict(after or {})
        else:
            state.setdefault(entity_id, {}).update(after or {})
    return state


def _same(column, logged: Any, current: Any) -> bool:
    plain = _plain(current)
    if plain == logged:
        return True
    if logged is None or current is None:
        return False
    kind = column.type
    try:
        if isinstance(kind, DateTime) or isinstance(getattr(kind, "impl", None), DateTime):
            then = datetime.fromisoformat(str(logged))
            now = current if isinstance(current, datetime) else datetime.fromisoformat(str(current))
            then = then if then.tzinfo else then.replace(tzinfo=timezone.utc)
            now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
            return then == now
        if isinstance(kind, Date) and isinstance(current, date):
            return date.fromisoformat(str(logged)[:10]) == current
        if isinstance(kind, (Numeric, Float)):
            return Decimal(str(logged)) == Decimal(str(current))
        if isinstance(kind, Boolean):
            return bool(logged) == bool(current)
    except (ValueError, TypeError, InvalidOperation):
        return False
    return str(plain) == str(logged)


def differences() -> Iterator[Difference]:
    """Every row whose current values differ from what the audit trail says it holds, table by table."""
    connection = db.session.connection()
    cache: dict = {}
    for table, mapper in audited_tables():
        pk = [c.name for c in mapper.primary_key]
        state = _replay(table.name, pk)
        columns = {c.name: c for c in table.columns}
        unlogged = []
        for row in db.session.execute(select(table).order_by(*mapper.primary_key)
                                      .execution_options(yield_per=2000)).mappings():
            row_id = ",".join(str(row[name]) for name in pk)
            logged = state.pop(row_id, None)
            if logged is None:
                if _owner(connection, table, dict(row), cache)[0] is not None:  # rows of no organisation aren't logged
                    unlogged.append(row_id)
                continue
            if logged is _DELETED:
                yield Difference(table.name, row_id, None, "the audit trail says it was deleted, but the row is there "
                                                           "(put back outside the product)")
                continue
            for name, value in logged.items():
                if name not in columns or _is_secret(name) or name in NOISE_COLUMNS:
                    continue
                if not _same(columns[name], value, row[name]):
                    yield Difference(table.name, row_id, name, "changed", value, _plain(row[name]))
        for row_id in unlogged:
            yield Difference(table.name, row_id, None, "no audit entry (added outside the product, by a "
                                                       "migration, or before the audit trail)")
        for row_id, logged in sorted(state.items()):
            if logged is not _DELETED:
                yield Difference(table.name, row_id, None, "missing: the audit trail says it exists "
                                                           "(deleted outside the product)")
