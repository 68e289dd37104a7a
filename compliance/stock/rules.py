"""Pure rules for single-use stock: reading GS1 barcodes. No Flask here."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from biip import ParseError
from biip import parse as biip_parse
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin

GROUP_SEPARATOR = "\x1d"


class BarcodeError(ValueError):
    """The scan is not a GS1 barcode we can use. `kind` says why in our own words (the services translate it:
    biip's messages are English); str() keeps the detail, for logs."""

    KINDS = ("empty", "too_long", "not_gs1", "unreadable", "no_gtin", "check_digit")

    def __init__(self, kind: str, detail: str = ""):
        assert kind in self.KINDS, kind
        self.kind = kind
        super().__init__(detail or kind)


def _from_biip(exc: ParseError) -> BarcodeError:
    detail = str(exc)
    return BarcodeError("check_digit" if "check digit" in detail.lower() else "unreadable", detail)


@dataclass(frozen=True)
class Gs1Data:
    gtin: str | None
    expires_on: date | None
    lot: str | None
    serial: str | None


def parse_gs1(raw: str) -> Gs1Data:
    """GTIN (01), expiry (17), lot (10) and serial (21) from a scan: human-readable "(01)…(17)…" or raw
    (with or without the ]d2 / ]C1 symbology prefix, FNC1 sent as the group separator or as "<GS>")."""
    text = (raw or "").strip().replace("<GS>", GROUP_SEPARATOR)
    if not text:
        raise BarcodeError("empty")
    if len(text) > 200:
        raise BarcodeError("too_long")
    try:
        if text.startswith("("):
            message = GS1Message.parse_hri(text)
        else:
            result = biip_parse(text)
            message = result.gs1_message
            if message is None:
                raise BarcodeError("not_gs1", result.gs1_message_error or "")
    except ParseError as exc:
        raise _from_biip(exc) from None
    values = {e.ai.ai: e for e in message.element_strings}
    expiry = values.get("17")
    data = Gs1Data(
        gtin=values["01"].value if "01" in values else None,
        expires_on=expiry.date if expiry is not None else None,
        lot=values["10"].value if "10" in values else None,
        serial=values["21"].value if "21" in values else None,
    )
    if data.gtin is None:
        raise BarcodeError("no_gtin")
    try:
        Gtin.parse(data.gtin)  # the check digit: HRI text is typed by people and can be mistyped
    except ParseError as exc:
        raise _from_biip(exc) from None
    return data
