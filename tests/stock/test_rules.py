"""GS1 barcodes in the forms scanners and people send them."""
from datetime import date

import pytest

from compliance.stock.rules import BarcodeError, parse_gs1

GTIN = "09506000134352"  # GS1's own example GTIN (valid check digit)


@pytest.mark.parametrize("raw", [
    f"(01){GTIN}(17)271231(10)LOT42(21)SER123",
    f"01{GTIN}17271231" "10LOT42\x1d" "21SER123",
    f"]d201{GTIN}17271231" "10LOT42\x1d" "21SER123",     # GS1 DataMatrix symbology prefix
    f"]C101{GTIN}17271231" "10LOT42<GS>21SER123",        # GS1-128, FNC1 typed as <GS>
    f"01{GTIN}17271231" "21SER123\x1d" "10LOT42",         # any order
])
def test_gtin_expiry_lot_and_serial_are_read(raw):
    data = parse_gs1(raw)
    assert (data.gtin, data.expires_on, data.lot, data.serial) == (GTIN, date(2027, 12, 31), "LOT42", "SER123")


def test_day_zero_expiry_means_the_last_day_of_the_month():
    assert parse_gs1(f"(01){GTIN}(17)270200(10)A1").expires_on == date(2027, 2, 28)


def test_lot_and_serial_are_optional():
    data = parse_gs1(f"(01){GTIN}(17)280131")
    assert data.lot is None and data.serial is None


@pytest.mark.parametrize("raw", ["", "hello", f"(01){GTIN[:-1]}9(17)271231", "(17)271231(10)LOT42",
                                 f"(01){GTIN}(17)271399", "x" * 500])
def test_malformed_barcodes_are_refused(raw):
    with pytest.raises(BarcodeError):
        parse_gs1(raw)
