"""Words for stored codes (roles, room kinds, languages), shown through the reader's language."""
from flask_babel import lazy_gettext as _l

ROLE_LABELS = {
    "staff": _l("Staff"),
    "manager": _l("Manager"),
    "admin": _l("Administrator"),
    "auditor": _l("Auditor"),
}
ROOM_KIND_LABELS = {
    "treatment": _l("Treatment room"),
    "decontamination": _l("Decontamination room"),
    "storage": _l("Storage"),
    "reception": _l("Reception"),
}
LANGUAGE_LABELS = {"en": _l("English"), "id": _l("Bahasa Indonesia")}  # one per config.LANGUAGES
