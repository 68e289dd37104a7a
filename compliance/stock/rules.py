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
    """The scan is not a GS1 barcode we can use; the message says why."""


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
        raise BarcodeError("empty scan")
    if len(text) > 200:
        raise BarcodeError("too long for a GS1 barcode")
    try:
        if text.startswith("("):
            message = GS1Message.parse_hri(text)
        else:
            result = biip_parse(text)
            message = result.gs1_message
            if message is None:
                raise BarcodeError(result.gs1_message_error or "not a GS1 barcode")
    except ParseError as exc:
        raise BarcodeError(str(exc)) from None
    values = {e.ai.ai: e for e in message.element_strings}
    expiry = values.get("17")
    data = Gs1Data(
        gtin=values["01"].value if "01" in values else None,
        expires_on=expiry.date if expiry is not None else None,
        lot=values["10"].value if "10" in values else None,
        serial=values["21"].value if "21" in values else None,
    )
    if data.gtin is None:
        raise BarcodeError("no GTIN (01) in the barcode")
    try:
        Gtin.parse(data.gtin)  # the check digit: HRI text is typed by people and can be mistyped
    except ParseError as exc:
        raise BarcodeError(str(exc)) from None
    return data
