"""Cycle records from the steriliser: the upload screen, a curve's page, and its file to download. Thin: parse,
call one service, commit, render."""
from __future__ import annotations

import io
from decimal import Decimal

from flask import render_template, send_file
from flask_babel import gettext as _

from ..errors import Invalid, ServiceError
from ..extensions import db
from ..i18n import number
from ..timeutil import utcnow
from ..web import MAX_ID, current_actor, refuse_at_field, requires
from . import curve_services
from .forms import CURVE_OUTCOME_LABELS, CURVE_SOURCE_LABELS, CurveImportForm
from .messages import reason_text
from .views import DESK, TABLET, _is_tablet, _site_in_context, _site_of, _sterilisers, bp

MAX_UPLOAD_BYTES = 16 * 1024 * 1024


def _layout() -> str:
    return TABLET if _is_tablet() else DESK


@bp.route("/decontamination/curves/import", methods=["GET", "POST"])
@requires("cycles.record")
def import_curves():
    """Upload a file of cycle records (one or many cycles): each new one is judged from its curve and kept with the
    file; one already on record changes nothing, and the page says so."""
    actor = current_actor()
    site = _site_in_context(actor)
    sterilisers = _sterilisers(actor, site)
    form = CurveImportForm(sterilisers=sterilisers)
    result, status = None, 200
    if form.is_submitted():
        status = 422
        if form.validate_on_submit():
            upload = form.file.data
            raw = str(form.steriliser_id.data or "")
            steriliser_id = int(raw) if raw.isdigit() and 0 < int(raw) <= MAX_ID else None
            try:
                if upload is None or not hasattr(upload, "read"):
                    raise Invalid(_("Choose a file."), field="file")
                data = upload.read(MAX_UPLOAD_BYTES + 1)
                result = curve_services.import_curves(actor, data, utcnow(), filename=upload.filename or "",
                                                      media_type=upload.mimetype or "", steriliser_id=steriliser_id)
            except ServiceError as exc:
                status = refuse_at_field(form, exc, fallback="file")
            else:
                db.session.commit()
                status = 200
    return render_template("sterilisation/curve_import.html", layout=_layout(), form=form, site=site,
                           result=result, OUTCOMES=CURVE_OUTCOME_LABELS, figure_list=_figure_list), status


def _figure_list(disagreements: list[dict]) -> str:
    names = figure_names()
    return ", ".join(str(names.get(d["figure"], d["figure"])) for d in disagreements)


def _figure_rows(curve) -> list[tuple[str, str]]:
    def n(value, unit):
        return "—" if value is None else f"{number(value)} {unit}"
    return [(_("Holding time in the band"), n(curve.holding_seconds, "s")),
            (_("Equilibration time"), n(curve.equilibration_seconds, "s")),
            (_("Highest temperature"), n(curve.max_temperature_c, "°C")),
            (_("Measured minus saturation temperature (largest)"), n(curve.steam_deviation_k, "K")),
            (_("Lowest pressure in the holding time"), n(curve.min_holding_pressure_kpa, "kPa"))]


FIGURE_UNITS = {"temperature_c": "°C", "holding_seconds": "s", "pressure_kpa": "kPa"}


def figure_names() -> dict[str, str]:
    return {"temperature_c": _("Temperature"), "holding_seconds": _("Holding time"), "pressure_kpa": _("Pressure")}


def compare_rows(curve, load) -> list[tuple[str, str, str, bool]]:
    """(figure, typed, the machine's, disagrees) for a load typed by a person and the machine's record of it."""
    def n(value, unit):
        return "—" if value is None else f"{number(Decimal(str(round(value, 1))))} {unit}"
    names = figure_names()
    rows = []
    for c in curve_services.reconciliation(curve, load):
        unit = FIGURE_UNITS[c.figure]
        machine = n(c.machine_low, unit) if c.machine_low == c.machine_high else \
            f"{n(c.machine_low, unit)} – {n(c.machine_high, unit)}"
        rows.append((names[c.figure], n(c.typed, unit), machine, c.disagrees))
    return rows


@bp.get("/curves/<int:curve_id>")
@requires("sterilisation.read")
def show_curve(curve_id: int):
    actor = current_actor()
    curve = curve_services.get_curve(actor, curve_id)
    site = _site_of(curve.site_id)
    load = curve_services.load_for_curve(curve)
    refusal = reason_text(curve.refusal) if curve.refusal else ""
    return render_template(
        "sterilisation/curve.html", layout=_layout(), curve=curve, site=site, load=load, refusal=refusal,
        reasons=[reason_text(r) for r in curve.reasons], figures=_figure_rows(curve),
        compare=compare_rows(curve, load) if load else [], chart=curve_chart(curve), judged_by=judged_by_text(curve),
        source=CURVE_SOURCE_LABELS.get(curve.source_format, curve.source_format))


def short_number(value) -> str:
    """A figure of a curve in the reader's locale, at most two places, no trailing zeros: 200.0 → "200"."""
    return number(Decimal(f"{float(value):.2f}".rstrip("0").rstrip(".")))


def judged_by_text(curve) -> str:
    """The numbers the curve was judged by, in words ("" for a record kept before they were stored)."""
    limits = curve.limits
    if not limits:
        return ""
    n = short_number

    text = _("band %(low)s–%(high)s °C, at least %(holding)s s in it; steam within %(tolerance)s K of saturation; "
             "at least %(rate)s samples a minute, no gap over %(gap)s s", low=n(limits["set_temperature_c"]),
             high=n(limits["set_temperature_c"] + limits["band_over_set_c"]), holding=n(limits["min_holding_seconds"]),
             tolerance=n(limits["steam_tolerance_k"]), rate=n(limits["min_samples_per_minute"]),
             gap=n(limits["max_gap_seconds"]))
    if limits.get("min_pressure_kpa") is not None:
        text += _("; at least %(kpa)s kPa", kpa=n(limits["min_pressure_kpa"]))
    return text


@bp.get("/curves/files/<int:file_id>")
@requires("sterilisation.read")
def download_curve_file(file_id: int):
    """The file as it was imported, byte for byte; its SHA-256 in a header to check it against the page."""
    row = curve_services.get_curve_file(current_actor(), file_id)
    name = "".join(c for c in (row.filename or "") if c.isprintable() and c not in '/\\"') or f"cycle-records-{row.id}"
    # send_file writes the name as RFC 6266 asks (an ASCII fallback and filename*=UTF-8''…): any name is safe
    response = send_file(io.BytesIO(row.content), mimetype="application/octet-stream", as_attachment=True,
                         download_name=name, etag=False, last_modified=None, max_age=0)
    response.headers["X-Content-SHA256"] = row.sha256
    return response


def curve_chart(curve):
    """The SVG of the curve (compliance/sterilisation/curve_chart.py), or empty when it can't be drawn."""
    from .curve_chart import chart_for  # noqa: PLC0415
    return chart_for(curve)
