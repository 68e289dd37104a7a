"""The screen of a site's guideline numbers: every number beside the pack's default, its range and history; a
manager changes one with a reason, after a confirmation (read input → one service call → commit → respond)."""
from __future__ import annotations

from flask import Blueprint, g, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..errors import ServiceError
from ..extensions import db
from ..sites import services as site_services
from ..timeutil import utcnow
from ..web import current_actor, flash_redirect, refuse_at_field, requires
from . import services
from .forms import GATE_CHOICES, GateSettingForm, NumberForm
from .numbers import shown

bp = Blueprint("guidelines", __name__)

SEVERITY_LABELS = {"critical": _l("critical"), "major": _l("major"), "minor": _l("minor")}
SEVERITY_PILLS = {"critical": "pill-bad", "major": "pill-warn", "minor": "pill-muted"}


@bp.context_processor
def _labels() -> dict:
    return {"SEVERITY_LABELS": SEVERITY_LABELS, "SEVERITY_PILLS": SEVERITY_PILLS, "shown": shown,
            "GATE_LABELS": dict(GATE_CHOICES)}


@bp.get("/sites/<int:site_id>/numbers")
@requires("guidelines.read")
def site_numbers(site_id: int):
    actor = current_actor()
    g.site = site_services.get_site(actor, site_id)  # the site's language, before anything is translated
    data = services.numbers_of_site(actor, site_id, str(get_locale()))
    return render_template("guidelines/numbers.html", data=data, site=data.site,
                           can_manage=actor.can("guidelines.manage"))


@bp.route("/sites/<int:site_id>/numbers/<rule_id>/<key>", methods=["GET", "POST"])
@requires("guidelines.manage")
def change_number(site_id: int, rule_id: str, key: str):
    """GET: the form. POST: check and show what changes; POST with confirm=yes: store it; confirm=back: the form
    again with what was typed. A refusal shows the form with the error and stores nothing."""
    actor = current_actor()
    site, row = services.get_number(actor, site_id, rule_id, key)
    g.site = site
    form = GateSettingForm() if row.kind == "choice" else NumberForm()
    status = 200
    if request.method == "GET":
        form.value.data = row.value if row.kind == "choice" else shown(row.value)
    elif not form.validate_on_submit():
        status = 422
    elif form.confirm.data != "back":
        try:
            if form.confirm.data == "yes":
                saved = services.set_site_number(actor, site.id, rule_id, key, form.value.data, form.reason.data,
                                                 utcnow())
                db.session.commit()
                return flash_redirect(_("%(name)s at %(site)s is now %(value)s.", name=f"{rule_id}.{key}",
                                        site=site.name, value=shown(saved.value)),
                                      url_for(".site_numbers", site_id=site.id) + f"#{rule_id}")
            change = services.plan_site_number(actor, site.id, rule_id, key, form.value.data, form.reason.data)
            return render_template("guidelines/confirm.html", site=site, row=row, change=change, form=form)
        except ServiceError as exc:
            status = refuse_at_field(form, exc, fallback="value")
    return render_template("guidelines/number.html", site=site, row=row, form=form,
                           history=services.number_history(site.id, rule_id, key)), status
