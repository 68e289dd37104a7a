"""The audit log screen: read-only, filtered, newest first, with a verification of the chain on demand."""
from __future__ import annotations

import hashlib

from flask import Blueprint, Response, render_template, request
from sqlalchemy import select

from ..extensions import db
from ..sites.models import Site
from ..timeutil import utcnow
from ..web import arg_id, current_actor, paginate, requires
from . import services
from .models import AuditEntry

bp = Blueprint("audit", __name__)

# Personal data a person without "clients.contact" (an auditor, staff) must not read in the log either.
PERSONAL_FIELDS = {"clients": frozenset({"name", "phone", "consent_note"})}
from .labels import action_label, actor_label, column_label, table_label

ACTIONS = ("create", "update", "delete", "export", "resend")  # resend: an email queued again


def masked(entry: AuditEntry, can_see_personal: bool) -> tuple[dict | None, dict | None]:
    hidden = set() if can_see_personal else PERSONAL_FIELDS.get(entry.entity_type, frozenset())

    def mask(values):
        if values is None:
            return None
        return {k: ("[hidden]" if k in hidden and v else v) for k, v in sorted(values.items())}

    return mask(entry.before), mask(entry.after)


@bp.get("/audit")
@requires("audit.read")
def list_entries():
    actor = current_actor()
    sites = list(db.session.scalars(select(Site).where(Site.id.in_(actor.site_ids)).order_by(Site.name)))
    site_id = arg_id("site")
    if site_id is not None and site_id not in actor.site_ids:
        site_id = -1  # another site: nothing, not an error page that confirms it exists
    entity = request.args.get("entity", "").strip()[:64] or None
    action = request.args.get("action", "").strip()[:40] or None
    q = request.args.get("q", "").strip()[:200]
    stmt = services.entries_query(actor, site_id=site_id, entity_type=entity, action=action, search=q)
    page = paginate(stmt.order_by(AuditEntry.seq.desc()), default_per_page=50)
    entity_types = list(db.session.scalars(select(AuditEntry.entity_type).where(
        AuditEntry.organisation_id == actor.organisation_id).distinct().order_by(AuditEntry.entity_type)))
    verified = None
    if request.args.get("verify") == "1":
        verified = services.verify(actor.organisation_id)
    can_see_personal = actor.can("clients.contact")
    rows = [(e, *masked(e, can_see_personal)) for e in page.items]
    return render_template("audit/entries.html", page=page, rows=rows, sites=sites, site_id=site_id, entity=entity,
                           action=action, q=q, actions=ACTIONS, entity_types=entity_types, verified=verified,
                           by_site={s.id: s for s in sites}, filtered=bool(site_id or entity or action or q),
                           action_label=action_label, actor_label=actor_label, table_label=table_label,
                           column_label=column_label)


@bp.get("/admin/export")
@requires("organisation.export")
def export_page():
    """What the organisation's export holds, and the button that downloads it."""
    from . import export

    where, unreached = export.scopes(current_actor().organisation_id)
    return render_template("audit/export.html", tables=sorted(where), not_exported=unreached,
                           secrets=sorted(export.SECRETS))


@bp.get("/admin/export.zip")
@requires("organisation.export")
def export_zip():
    """The whole organisation as CSV files in a zip with a manifest; the export is written to the audit log."""
    from . import export

    actor, now = current_actor(), utcnow()
    body, manifest = export.export_organisation(actor, actor.organisation_id, now)
    db.session.commit()
    name = f"organisation-{actor.organisation_id}-{now:%Y%m%d-%H%M}.zip"
    return Response(body, mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
        "X-Content-SHA256": hashlib.sha256(body).hexdigest()})
