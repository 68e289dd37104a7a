"""Forms for the single-use stock screens, and the words for their stored codes.

As for the other screens, the forms check only what a browser sends (CSRF, lengths, a date that is a date);
what is allowed (a readable GS1 barcode, a known GTIN, a lot not received twice, plausible numbers, sites in
reach) is the services' job, so that the laptop, the tablet and the API are refused the same things.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from ..sites.forms import choices, TextLimit

_choice = {"validate_choice": False}
_whole = {"inputmode": "numeric", "autocomplete": "off"}

ITEM_KIND_LABELS = {
    "needle_cartridge": _l("Needle cartridge"),
    "single_use_roller": _l("Single-use roller"),
    "lancet": _l("Lancet"),
    "blade": _l("Blade"),
    "other": _l("Other"),
}
LOT_STATUS_LABELS = {
    "available": _l("Available"),
    "quarantined": _l("Quarantined"),
    "recalled": _l("Recalled"),
}
LOT_STATUS_PILLS = {"available": "pill-ok", "quarantined": "pill-warn", "recalled": "pill-bad"}
# The status changes offered from each status (compliance.stock.services.set_lot_status; a recall is final).
LOT_STATUS_CHANGES = {
    "available": {
        "quarantined": _l("Quarantine: keep every unit of this lot out of use until it is checked"),
        "recalled": _l("Recall: never use this lot again (this cannot be undone)"),
    },
    "quarantined": {
        "available": _l("Release from quarantine: the lot may be used again"),
        "recalled": _l("Recall: never use this lot again (this cannot be undone)"),
    },
    "recalled": {},
}


def _optional_id(value) -> int | None:
    """A select's value as an id; the empty option as None."""
    return int(value) if str(value or "").isdigit() else None


class ReceiveLotForm(FlaskForm):
    site_id = SelectField(_l("Site"), coerce=int, **_choice)
    barcode = StringField(_l("Scan the box's barcode"), validators=[Length(max=200)],
                          description=_l("A GS1 barcode gives the item type (from its GTIN), the lot and the expiry. "
                                         "Or leave it empty and type them below."),
                          render_kw={"autocomplete": "off", "spellcheck": "false"})
    item_type_id = SelectField(_l("Item type"), coerce=_optional_id, **_choice)
    lot_number = StringField(_l("Lot number"), validators=[Length(max=40)],
                             description=_l("Leave empty when you scanned the barcode."),
                             render_kw={"autocomplete": "off"})
    expires_on = DateField(_l("Expiry date"), validators=[Optional()],
                           description=_l("Leave empty when you scanned the barcode."))
    quantity = StringField(_l("Quantity received"), validators=[Length(max=12)],
                           description=_l("How many units are in this delivery of the lot."), render_kw=_whole)
    supplier_ref = StringField(_l("Supplier reference"), validators=[Length(max=120)],
                               description=_l("Delivery note or invoice number (optional)."))

    def __init__(self, *args, sites=(), item_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.site_id.choices = choices((s.id, s.name) for s in sites)
        self.item_type_id.choices = choices([("", _l("From the barcode")), *((t.id, t.name) for t in item_types)])

    def values(self) -> dict:
        return {
            "site_id": self.site_id.data,
            "barcode": (self.barcode.data or "").strip(),
            "item_type_id": self.item_type_id.data,
            "lot_number": (self.lot_number.data or "").strip(),
            "expires_on": self.expires_on.data,
            "quantity": self.quantity.data,
            "supplier_ref": self.supplier_ref.data or "",
        }


class LotStatusForm(FlaskForm):
    status = RadioField(_l("New status"), **_choice)
    reason = TextAreaField(_l("Reason"), validators=[TextLimit(2000)],
                           description=_l("Who said so and why: the maker's notice, a damaged box, a supplier's call. "
                                          "It stays with the lot."))

    def __init__(self, *args, current: str = "available", **kwargs):
        super().__init__(*args, **kwargs)
        self.status.choices = choices(LOT_STATUS_CHANGES.get(current, {}).items())


class UnitLabelsForm(FlaskForm):
    count = StringField(_l("How many labels"), validators=[Length(max=6)],
                        description=_l("One for each unit without a serial number of its own; at most 1000."),
                        render_kw=_whole)


class ItemTypeForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=160)],
                       description=_l("For example: 12-pin cartridge, 0.5 mm single-use roller."))
    kind = SelectField(_l("Kind"), choices=choices(ITEM_KIND_LABELS.items()), **_choice)
    maker = StringField(_l("Maker"), validators=[Length(max=160)])
    product_code = StringField(_l("Maker's product code"), validators=[Length(max=80)])
    gtin = StringField(_l("GTIN"), validators=[Length(max=14)],
                       description=_l("The product number in the box's GS1 barcode (8 to 14 digits); then a scan "
                                      "finds this item type."),
                       render_kw=_whole)
    pins = StringField(_l("Pins"), validators=[Length(max=4)], description=_l("Needle cartridges only."),
                       render_kw=_whole)
    needle_length_mm = StringField(_l("Needle length (mm)"), validators=[Length(max=8)],
                                   render_kw={"inputmode": "decimal", "autocomplete": "off"})


class OpenContainerForm(FlaskForm):
    site_id = SelectField(_l("Site"), coerce=int, **_choice)
    label = StringField(_l("Label"), validators=[Length(max=40)],
                        description=_l("The name written on the container, for example “SC-3 Room 1”."))
    room_id = SelectField(_l("Room"), coerce=_optional_id, **_choice)

    def __init__(self, *args, sites=(), rooms=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.site_id.choices = choices((s.id, s.name) for s in sites)
        names = {s.id: s.name for s in sites}
        self.room_id.choices = choices([("", _l("No particular room")),
                                        *((r.id, f"{names.get(r.site_id, '')} · {r.name}") for r in rooms)])

    def values(self) -> dict:
        return {"site_id": self.site_id.data, "label": self.label.data, "room_id": self.room_id.data}


class CloseContainerForm(FlaskForm):
    disposal_ref = StringField(_l("Disposal reference"), validators=[Length(max=120)],
                               description=_l("The waste carrier's consignment or collection number."))
