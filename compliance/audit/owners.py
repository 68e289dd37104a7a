"""Where each audited row belongs: declared per table, not guessed from its foreign keys.

A table with a `site_id` column belongs to that site. A table without one names, here, the foreign key that
leads to the row that carries its site (an answer belongs to the site of its checklist run, not to one of the
sites of the person who gave it). The other tables belong to the organisation only (a person, a course, a
checklist's wording), listed so that a new table must be placed in one of the two (tests/audit/test_owners.py).
"""
from __future__ import annotations

# table -> the foreign-key column whose row carries the site (one hop: that row has a site_id column).
SITE_THROUGH: dict[str, str] = {
    "answers": "run_id",
    "device_events": "device_id",
    "gate_overrides": "attempt_id",
    "obligation_changes": "obligation_id",
    "pack_items": "pack_id",
    "programmes": "steriliser_id",
    "recall_loads": "recall_id",
    "steriliser_status_changes": "steriliser_id",
    "treatment_packs": "treatment_id",
    "treatment_units": "treatment_id",
    "units": "lot_id",
}

# Tables of the organisation as a whole: their entries have no site.
ORGANISATION_ONLY = frozenset({
    "account_links", "checklist_templates", "device_types", "item_types", "organisations", "template_items",
    "template_versions", "training_records", "users",
})
