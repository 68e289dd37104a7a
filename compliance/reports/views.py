"""Reports: the audit report as a page, a zip of CSVs and a PDF. Every export is written to the audit log."""
from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import Blueprint, Response, g, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from ..audit.services import record_event
from ..auth.actor import Actor
from ..errors import Invalid
from ..extensions import db
from ..sites.models import Site
from ..timeutil import local_today, utcnow
from ..web import current_actor, refuse_at_field, requires
from . import services
from .forms import AuditReportForm
from .pdf import render_pdf
from .tables import audit_tables, paper_rows, zip_bytes

bp = Blueprint("reports", __name__)

DEFAULT_DAYS = 28  # the last four weeks, today included
FIELD_ALIASES = {"from": "date_from", "to": "date_to", "site_id": "site"}


def _sites(actor: Actor) -> list[Site]:
    return list(db.session.scalars(select(Site).where(Site.id.in_(actor.site_ids)).order_by(Site.name, Site.id)))


def _form(sites: list[Site]) -> AuditReportForm:
    """The query string over the defaults (every site, the last four weeks in the first site's local days)."""
    today = local_today(sites[0].timezone if sites else "UTC", utcnow())
    data = MultiDict({"site": "", "from": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
                      "to": today.isoformat()})
    for name in ("site", "from", "to"):
        if request.args.get(name, "").strip():
            data[name] = request.args[name].strip()
    form = AuditReportForm(formdata=data)
    form.site.choices = [("", _("All sites"))] + [(str(s.id), s.name) for s in sites]
    return form


def _report(actor: Actor, form: AuditReportForm) -> tuple[services.AuditReport | None, int]:
    """The report, or None and the status to show the form with (its errors at their fields)."""
    if not form.validate():
        return None, 422
    try:
        return services.audit_report(actor, form.site.data, form.date_from.data, form.date_to.data, utcnow()), 200
    except Invalid as exc:  # NotFound (a site out of reach) goes on to the 404 page
        return None, refuse_at_field(form, exc, aliases=FIELD_ALIASES, on_form=True)


def _context(report: services.AuditReport, content_sha256: str) -> dict:
    tables = audit_tables(report, content_sha256)
    many_sites = len(report.windows) > 1
    return {"report": report, "tables": tables, "many_sites": many_sites, "content_sha256": content_sha256,
            "rows": {t.name: paper_rows(t, many_sites) for t in tables},
            "sites_text": ", ".join(f"{w.site} ({w.timezone})" for w in report.windows)}


def _page(form: AuditReportForm, report: services.AuditReport | None, status: int):
    context = _context(report, services.content_sha256(report)) if report is not None else {}
    return render_template("reports/audit.html", form=form, **context), status


def _file_stem(report: services.AuditReport) -> str:
    return f"audit-report-{report.site_id or 'all'}-{report.day_from.isoformat()}-{report.day_to.isoformat()}"


def _record_export(actor: Actor, report: services.AuditReport, fmt: str, sha256: str, content_sha256: str) -> None:
    record_event("export", "report", "audit", organisation_id=actor.organisation_id, site_id=report.site_id,
                 after={"format": fmt, "from": report.day_from.isoformat(), "to": report.day_to.isoformat(),
                        "site_id": report.site_id, "sha256": sha256, "content_sha256": content_sha256},
                 actor=actor)
    db.session.commit()


def _download(body: bytes, mimetype: str, filename: str, sha256: str) -> Response:
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store",
        "X-Content-SHA256": sha256})


@bp.get("/reports/audit")
@requires("reports.read")
def audit_report():
    """The audit report of a site (or every site in reach) over a range of local days."""
    actor = current_actor()
    sites = _sites(actor)
    if len(sites) == 1:
        g.site = sites[0]
    form = _form(sites)
    report, status = _report(actor, form)
    return _page(form, report, status)


@bp.get("/reports/audit.zip")
@requires("reports.read")
def audit_report_zip():
    """The same report as one CSV per table, in a zip; the export is written to the audit log."""
    actor = current_actor()
    form = _form(_sites(actor))
    report, status = _report(actor, form)
    if report is None:
        return _page(form, None, status)
    content_sha256 = services.content_sha256(report)
    body = zip_bytes(audit_tables(report, content_sha256))
    sha256 = hashlib.sha256(body).hexdigest()
    _record_export(actor, report, "zip", sha256, content_sha256)
    response = _download(body, "application/zip", f"{_file_stem(report)}.zip", sha256)
    response.headers["X-Report-Content-SHA256"] = content_sha256
    return response


@bp.get("/reports/audit.pdf")
@requires("reports.read")
def audit_report_pdf():
    """The same report, from the same templates, as an A4 PDF with who exported it, when, and its SHA-256."""
    actor = current_actor()
    form = _form(_sites(actor))
    report, status = _report(actor, form)
    if report is None:
        return _page(form, None, status)
    content_sha256 = services.content_sha256(report)
    html = render_template("reports/audit_print.html", **_context(report, content_sha256))
    body = render_pdf(html, base_url=request.url_root)
    sha256 = hashlib.sha256(body).hexdigest()
    _record_export(actor, report, "pdf", sha256, content_sha256)
    response = _download(body, "application/pdf", f"{_file_stem(report)}.pdf", sha256)
    response.headers["X-Report-Content-SHA256"] = content_sha256
    return response

