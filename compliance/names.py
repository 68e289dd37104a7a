"""Names that must be unique in their scope (a site's rooms, an organisation's sites …) are compared by a key:
Unicode NFC, spaces collapsed, case-folded — "Ärzte", "ärzte" and " ÄRZTE " are one name — kept in a
`name_key` column under a unique index, so that two creates at the same moment cannot both succeed (the second
gets a 409). SQLite's lower() folds ASCII only, so the key is made in Python, never in SQL."""
from __future__ import annotations

import unicodedata

from sqlalchemy import event


def name_key(name: str | None) -> str:
    return unicodedata.normalize("NFC", " ".join((name or "").split())).casefold()


def keeps_name_key(model) -> type:
    """Set `model.name_key` whenever `model.name` is set (a class decorator)."""

    @event.listens_for(model.name, "set")
    def _set_key(target, value, _old, _initiator):
        target.name_key = name_key(value)

    return model
