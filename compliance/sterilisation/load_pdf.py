"""A load's record as an A4 PDF: its figures, verdict, decision and packs and, when the steriliser's own record of
the cycle was imported, that record with its file's SHA-256, the typed-against-machine comparison and the curve
drawn as server-side SVG. Served as the audit report's PDF is (WeasyPrint, reports/pdf.py), and recorded in the
audit log as an export with its SHA-256."""
from __future__ import annotations

import hashlib

from flask import Response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from ..audit.services import record_export
from ..reports.pdf import render_pdf
from ..timeutil import to_local, utcnow
from ..web import current_actor, requires
from . import curve_services, services
from .curve_chart import chart_for
from .curve_views import _figure_rows, compare_rows
from .forms import CURVE_SOURCE_LABELS
from .messages import reason_text
from .views import _author, _before_figures, _figures, _machine_names, _pack_rows, _site_of, bp


@bp.get("/loads/<int:cycle_id>.pdf")
@requires("sterilisation.read")
def load_pdf(cycle_id: int):
    """The load's page on paper, for whoever may read the load (a site's people and its auditor)."""
    actor = current_actor()
    cycle = services.get_cycle(actor, cycle_id)
    site = _site_of(cycle.site_id)
    now = utcnow()
    corrections = services.corrections_of(actor, cycle.id)
    curve = curve_services.curve_for_load(actor, cycle)
    record = None
    if curve is not None:
        record = {
            "curve": curve, "source": CURVE_SOURCE_LABELS.get(curve.source_format, curve.source_format),
            "verdict": _("not judged") if not curve.is_judged else (
                _("passed") if curve.is_verdict_pass else _("failed")),
            "refusal": reason_text(curve.refusal) if curve.refusal else "",
            "reasons": [reason_text(r) for r in curve.reasons], "figures": _figure_rows(curve),
            "compare": compare_rows(curve, cycle), "chart": chart_for(curve)}
    html = render_template(
        "sterilisation/load_pdf.html", cycle=cycle, site=site, now=now, exporter=current_user.name,
        figures=_figures(cycle, _before_figures(corrections[0]) if corrections else None),
        reasons=[reason_text(r) for r in cycle.reasons],
        loaded_by=_author(cycle.loaded_by, cycle.api_key_id, _machine_names([cycle.api_key_id])) or "—",
        packs=_pack_rows(cycle.packs, site.timezone, now), record=record)
    body = render_pdf(html, base_url=request.url_root)
    sha256 = hashlib.sha256(body).hexdigest()
    record_export(actor, "load", "pdf", cycle.site_id, {"cycle_id": cycle.id}, content=body)
    stamp = to_local(now, site.timezone).strftime("%Y%m%d-%H%M")
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="load-{cycle.id}-cycle-{cycle.cycle_number}-{stamp}.pdf"',
        "Cache-Control": "no-store", "X-Content-SHA256": sha256})
