"""What the checklist screens read from a request: the idempotency key sent back, a drawn signature."""
from __future__ import annotations

import base64
import binascii

from flask_babel import lazy_gettext as _l

from ..errors import Invalid

PER_CLIENT = ("before_client", "after_client")  # done once per client: counted, never "not done"
# Where a checklist of each kind is done (the room picker); other kinds are for the whole site.
ROOM_KINDS = {"before_client": "treatment", "after_client": "treatment", "decontamination": "decontamination"}
SIGNATURE_PREFIX = "data:image/png;base64,"


def received_key(raw: str | None) -> str | None:
    """The idempotency key a refused form sent, to send again with the corrected answer (else None)."""
    key = (raw or "").strip()
    return key if 8 <= len(key) <= 64 else None


def signature_bytes(data_url: str) -> bytes:
    """The PNG the signature pad drew, from its data URL (the file itself is checked by store_upload)."""
    if not data_url.startswith(SIGNATURE_PREFIX):
        raise Invalid(_l("the signature could not be read; sign again"), field="signature")
    try:
        return base64.b64decode(data_url[len(SIGNATURE_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(_l("the signature could not be read; sign again"), field="signature") from None
