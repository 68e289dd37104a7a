"""Manager screens for obligations (what falls due, when, and what the scan did about it), the email outbox,
and a site's closing days. (The tablet's due list is part of the checklist screens in checklists/views.py.)"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Iterable

from babel.dates import format_time, get_day_names
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from sqlalchemy import case, select
from wtforms import HiddenField, SelectField, TextAreaField
from wtforms.validators import Length, Optional, Regexp

from ..auth.actor import Actor
from ..errors import Invalid
from ..extensions import db
from ..guidelines import PackError
from ..guidelines.services import pack_for_site
from ..i18n import babel_locale, local_datetime
from ..sites import services as site_services
from ..sites.forms import MultiCheckboxField, TextLimit, choices
from ..sites.models import Site, User
from ..timeutil import utcnow
from ..web import arg_id, current_actor, flash_redirect, paginate, requires, sort_clause, submit
from . import rules, services, subjects
from .labels import KIND_LABELS, kind_label
from .models import MESSAGE_KINDS, OUTBOX_STATES, Obligation, ObligationChange, OutboxMessage

bp = Blueprint("schedule", __name__)

OBLIGATION_STATUSES = ("ok", "overdue", "paused", "ended")  # the stored ones a list can be filtered by
SNOOZE_HOURS = (1, 2, 4, 8, 24, 48, 72, 168)
_choice = {"validate_choice": False}  # the service checks the values; the forms only offer them

RESPONSIBLE_LABELS = {
    "staff": _l("Staff"),
    "manager": _l("Managers"),
    "person": _l("The person named"),
}
OUTBOX_STATE_LABELS = {
    "queued": _l("queued"),
    "sent": _l("sent"),
    "failed": _l("failed"),
}
# Reasons the system writes on an obligation's changes (stored in English), in the reader's language.
SYSTEM_REASONS = {
    "done": _l("done"),
    "subject out of service": _l("out of service"),
    "subject back in service": _l("back in service"),
    "subject back": _l("back in use"),
    "subject closed, used or gone": _l("closed, used or gone"),
}
SEVERITY_LABELS = {"critical": _l("critical"), "major": _l("major"), "minor": _l("minor")}
STATE_PILLS = {"ok": "pill-ok", "due": "pill-warn", "overdue": "pill-bad", "snoozed": "pill-warn",
               "paused": "pill-muted", "ended": "pill-muted"}
OUTBOX_PILLS = {"queued": "pill-warn", "sent": "pill-ok", "failed": "pill-bad"}


@bp.context_processor
def _labels() -> dict:
    return {"RESPONSIBLE_LABELS": RESPONSIBLE_LABELS, "OUTBOX_STATE_LABELS": OUTBOX_STATE_LABELS,
            "STATE_PILLS": STATE_PILLS, "SEVERITY_LABELS": SEVERITY_LABELS, "OUTBOX_PILLS": OUTBOX_PILLS, "KIND_LABELS": KIND_LABELS}


# --- forms ---------------------------------------------------------------------------------------
# Each reason field has an id of its own: the three forms share one page.

class PauseForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), id="pause-reason", validators=[TextLimit(500)], render_kw={"rows": 2},
                           description=_l("For example: steriliser away for repair until the engineer returns it."))


class ResumeForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), id="resume-reason", validators=[TextLimit(500)], render_kw={"rows": 2})


class SnoozeForm(FlaskForm):
    hours = SelectField(_l("For"), default="4", **_choice)
    reason = TextAreaField(_l("Reason"), id="snooze-reason", validators=[TextLimit(500)], render_kw={"rows": 2},
                           description=_l("Nobody is told until the snooze ends; the obligation still falls due."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hours.choices = choices((str(h), duration_text(h * 60)) for h in SNOOZE_HOURS)


class ResendForm(FlaskForm):
    """Queue failed emails again: every one of the admin's sites, or of the site the list shows."""
    site = HiddenField(validators=[Optional(), Regexp(r"^[0-9]{1,9}$")])


class ClosingDaysForm(FlaskForm):
    closed_weekdays = MultiCheckboxField(_l("Closed every week on"), **_choice)
    holidays = TextAreaField(_l("Holidays and other closed days"), validators=[TextLimit(20000)],
                             render_kw={"rows": 8, "spellcheck": "false"},
                             description=_l("One a line: the date, then its name, for example "
                                            "“2026-12-25 Christmas Day”."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = get_day_names("wide", locale=str(get_locale()))
        self.closed_weekdays.choices = choices((day, names[n].capitalize()) for n, day in enumerate(rules.WEEKDAYS))


# --- helpers -------------------------------------------------------------------------------------

def duration_text(minutes: int) -> str:
    """90 → "1 h 30 min", 1440 → "1 day", 0 → "none"."""
    if minutes <= 0:
        return _("none")
    if minutes % 1440 == 0:
        return ngettext("%(num)s day", "%(num)s days", minutes // 1440)
    if minutes % 60 == 0:
        return ngettext("%(num)s hour", "%(num)s hours", minutes // 60)
    if minutes > 60:
        return _("%(hours)s h %(minutes)s min", hours=minutes // 60, minutes=minutes % 60)
    return ngettext("%(num)s minute", "%(num)s minutes", minutes)


def schedule_text(o: Obligation, tz: str) -> str:
    """An obligation's schedule in words, in the site's local time."""
    spec = o.schedule or {}
    if spec.get("once"):
        return _("once, at %(when)s", when=local_datetime(o.next_due_at, tz, "short"))
    if spec.get("every_days"):
        n = int(spec["every_days"])
        text = ngettext("every day after the last time it was done", "every %(num)s days after the last time it was done",
                        n)
    elif spec.get("cron"):
        cron = dict(spec["cron"])
        try:
            at = format_time(time(int(cron.get("hour", 0)), int(cron.get("minute", 0))), format="short",
                             locale=babel_locale())
        except (TypeError, ValueError):  # a cron expression such as "*/2": told as written
            at = None
        others = {k: v for k, v in cron.items() if k not in ("hour", "minute")}
        if at is None:
            text = ", ".join(f"{k}={v}" for k, v in cron.items())
        elif others:
            text = _("at %(time)s local time (%(fields)s)", time=at,
                     fields=", ".join(f"{k}={v}" for k, v in others.items()))
        else:
            text = _("every day at %(time)s local time", time=at)
    else:
        return "—"
    if spec.get("closed_days"):
        text = _("%(schedule)s, except on the site's closed days", schedule=text)
    return text


def _reach_sites(actor: Actor) -> list[Site]:
    return list(db.session.scalars(select(Site).where(Site.id.in_(actor.site_ids)).order_by(Site.name)))


def _filter_site(actor: Actor) -> int | None:
    site_id = arg_id("site")
    if site_id is not None:
        site_services.get_site(actor, site_id)  # a site outside the actor's reach is a 404, not an empty list
    return site_id


def _arg(name: str, allowed: Iterable[str]) -> str | None:
    value = request.args.get(name) or None
    return value if value in tuple(allowed) else None


def _names(user_ids: Iterable[int | None]) -> dict[int, str]:
    ids = {i for i in user_ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def _kind_order():
    return case({kind: n for n, kind in enumerate(KIND_LABELS)}, value=Obligation.kind, else_=99)


def _status_order():
    return case({"overdue": 0, "ok": 1, "paused": 2, "ended": 3}, value=Obligation.status, else_=9)


def _lang() -> str:
    return "id" if str(get_locale()).startswith("id") else "en"


def _list_args() -> dict:
    """The list's filters, to go back to the same list from a detail page."""
    return {k: v for k, v in request.args.items() if k in ("site", "status", "kind", "sort", "page")}


# --- obligations ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ObligationRow:
    obligation: Obligation
    site: Site
    what: str
    subject: str
    responsible: str
    state: str


def _responsible(o: Obligation, names: dict[int, str]) -> str:
    if o.responsible_user_id and o.responsible_user_id in names:
        return names[o.responsible_user_id]
    return str(RESPONSIBLE_LABELS.get(o.responsible, o.responsible))


def _rows(obligations: list[Obligation], sites: dict[int, Site], now: datetime) -> list[ObligationRow]:
    labels = subjects.labels(obligations)
    names = _names(o.responsible_user_id for o in obligations)
    return [ObligationRow(o, sites[o.site_id], kind_label(o.kind), labels.get((o.subject_type, o.subject_id), ""),
                          _responsible(o, names), services.state_of(o, now)) for o in obligations]


@bp.get("/obligations")
@requires("obligations.read")
def list_obligations():
    actor = current_actor()
    now = utcnow()
    sites = _reach_sites(actor)
    site_id = _filter_site(actor)
    status, kind = _arg("status", OBLIGATION_STATUSES), _arg("kind", KIND_LABELS)
    if len(sites) == 1:
        g.site = sites[0]
    order = sort_clause({"due": Obligation.next_due_at, "kind": _kind_order(), "status": _status_order()}, "due")
    stmt = services.obligations_query(actor, site_id=site_id, status=status, kind=kind)
    page = paginate(stmt.order_by(order, Obligation.next_due_at, Obligation.id))
    counts = services.counts_by_state(actor, site_id, now)
    return render_template("schedule/obligations.html", page=page,
                           rows=_rows(page.items, {s.id: s for s in sites}, now), sites=sites,
                           many_sites=len(sites) > 1, site_id=site_id, status=status, kind=kind, counts=counts,
                           filtered=any((site_id, status, kind)), args=_list_args())


@dataclass(frozen=True)
class ChangeRow:
    change: ObligationChange
    done: bool       # a record did the duty (a test, a completed checklist): told as "done", not as a status
    who: str
    reason: str


def _change_rows(changes: list[ObligationChange]) -> list[ChangeRow]:
    names = _names(c.by_id for c in changes)
    rows = []
    for c in changes:
        done = c.by_id is None and c.reason == "done"
        if done:  # the record that did it tells who; the obligation only follows
            who, reason = "—", ""
        elif c.by_id is None:
            who, reason = _("scheduler"), str(SYSTEM_REASONS.get(c.reason, c.reason))
        else:
            who, reason = names.get(c.by_id, "—"), c.reason
        rows.append(ChangeRow(c, done, who, reason))
    return rows


OCCURRENCE_LABELS = {
    "due": _l("due"), "done_on_time": _l("done on time"), "done_late": _l("done late"), "missed": _l("missed"),
    "excused": _l("excused"),
}
OCCURRENCE_PILLS = {"done_on_time": "pill-ok", "done_late": "pill-warn", "missed": "pill-bad"}


def _obligation_page(actor: Actor, obligation_id: int, status: int = 200, **forms):
    # After a refused POST, only the form that was sent keeps its input; the others start empty.
    o = services.get_obligation(actor, obligation_id)
    site = db.session.get(Site, o.site_id)
    g.site = site
    now = utcnow()
    try:
        rule = pack_for_site(site.id).rule(o.rule_id)
    except PackError:  # a rule a newer pack renamed: the id still tells which
        rule = None
    row = _rows([o], {site.id: site}, now)[0]
    grace = services.grace_of(o)
    return render_template(
        "schedule/obligation.html", o=o, row=row, site=site, rule=rule,
        rule_title=rule.title_in(_lang()) if rule else "", schedule=schedule_text(o, site.timezone),
        grace=duration_text(int(grace.total_seconds() // 60)), overdue_at=o.next_due_at + grace,
        findings=services.findings_of(o), history=_change_rows(services.history(o)),
        occurrences=services.occurrences_of(o), OCCURRENCE_LABELS=OCCURRENCE_LABELS, OCCURRENCE_PILLS=OCCURRENCE_PILLS,
        can_manage=actor.can("obligations.manage") and o.status != "ended",
        pause_form=forms.get("pause_form") or PauseForm(formdata=None),
        resume_form=forms.get("resume_form") or ResumeForm(formdata=None),
        snooze_form=forms.get("snooze_form") or SnoozeForm(formdata=None),
        args=_list_args()), status


@bp.get("/obligations/<int:obligation_id>")
@requires("obligations.read")
def show_obligation(obligation_id: int):
    return _obligation_page(current_actor(), obligation_id)


def _manage(obligation_id: int, form: FlaskForm, operation, message, form_name: str):
    actor = current_actor()
    services.get_obligation(actor, obligation_id)  # another site's: 404 before anything else
    outcome = submit(form, lambda: operation(actor, obligation_id, form.data, utcnow()),
                     lambda o: flash_redirect(message(o), url_for("schedule.show_obligation",
                                                                   obligation_id=obligation_id)))
    if not isinstance(outcome, int):
        return outcome
    return _obligation_page(actor, obligation_id, outcome, **{form_name: form})


@bp.post("/obligations/<int:obligation_id>/pause")
@requires("obligations.manage")
def pause_obligation(obligation_id: int):
    return _manage(obligation_id, PauseForm(), services.pause,
                   lambda o: _("Paused: nothing falls due and nobody is told until it is resumed."), "pause_form")


@bp.post("/obligations/<int:obligation_id>/resume")
@requires("obligations.manage")
def resume_obligation(obligation_id: int):
    return _manage(obligation_id, ResumeForm(), services.resume,
                   lambda o: _("Resumed: next due %(when)s.",
                               when=local_datetime(o.next_due_at, db.session.get(Site, o.site_id).timezone, "short")),
                   "resume_form")


@bp.post("/obligations/<int:obligation_id>/snooze")
@requires("obligations.manage")
def snooze_obligation(obligation_id: int):
    return _manage(obligation_id, SnoozeForm(), services.snooze,
                   lambda o: _("Snoozed: nobody is told until %(when)s.",
                               when=local_datetime(o.snoozed_until, db.session.get(Site, o.site_id).timezone,
                                                   "short")),
                   "snooze_form")


# --- the email outbox ----------------------------------------------------------------------------

@bp.get("/emails")
@requires("outbox.read")
def list_emails():
    actor = current_actor()
    sites = _reach_sites(actor)
    site_id = _filter_site(actor)
    state, kind = _arg("state", OUTBOX_STATES), _arg("kind", MESSAGE_KINDS)
    q = request.args.get("q", "").strip()[:200]
    if len(sites) == 1:
        g.site = sites[0]
    order = sort_clause({"queued": OutboxMessage.created_at, "recipient": OutboxMessage.recipient,
                         "state": OutboxMessage.state}, "-queued")
    stmt = services.outbox_query(actor, site_id=site_id, state=state, kind=kind, search=q)
    page = paginate(stmt.order_by(order, OutboxMessage.id.desc()))
    return render_template("schedule/emails.html", page=page, sites=sites, by_site={s.id: s for s in sites},
                           many_sites=len(sites) > 1, site_id=site_id, state=state, kind=kind, q=q,
                           filtered=any((site_id, state, kind, q)), kinds=MESSAGE_KINDS, states=OUTBOX_STATES,
                           failed=services.failed_count(actor, site_id), give_up_days=_give_up_days())


@bp.get("/emails/<int:message_id>")
@requires("outbox.read")
def show_email(message_id: int):
    actor = current_actor()
    message = db.session.scalar(services.outbox_query(actor).where(OutboxMessage.id == message_id))
    if message is None:  # another site's: not found, as if it did not exist
        abort(404)
    site = db.session.get(Site, message.site_id)
    g.site = site
    obligation = db.session.get(Obligation, message.obligation_id) if message.obligation_id else None
    return render_template("schedule/email.html", m=message, site=site, obligation=obligation,
                           subject=subjects.labels([obligation]).get((obligation.subject_type, obligation.subject_id),
                                                                     "") if obligation else "",
                           give_up_days=_give_up_days())


def _give_up_days() -> int:
    return int(current_app.config["OUTBOX_GIVE_UP_DAYS"])


def _resend(message_id: int | None, back: str):
    actor = current_actor()
    form = ResendForm()
    if not form.validate_on_submit():  # the CSRF token is checked before; what is left is the site
        raise Invalid(_l("Not a site: %(value)s.", value=str(form.site.data)[:20]), field="site")
    count = services.resend(actor, utcnow(), message_id=message_id,
                            site_id=int(form.site.data) if form.site.data else None)
    db.session.commit()
    flash(ngettext("%(num)s failed email queued again: it is sent within a minute.",
                   "%(num)s failed emails queued again: they are sent within a minute.", count), "success")
    return redirect(back)


@bp.post("/emails/resend")
@requires("outbox.resend")
def resend_failed_emails():
    return _resend(None, url_for("schedule.list_emails", site=request.form.get("site", type=int)))


@bp.post("/emails/<int:message_id>/resend")
@requires("outbox.resend")
def resend_email(message_id: int):
    return _resend(message_id, url_for("schedule.show_email", message_id=message_id))


# --- a site's closing days -----------------------------------------------------------------------

@bp.route("/sites/<int:site_id>/closing-days", methods=["GET", "POST"])
@requires("sites.closing_days")
def closing_days(site_id: int):
    actor = current_actor()
    site = site_services.get_site(actor, site_id)
    g.site = site
    form = ClosingDaysForm()
    if request.method == "GET":
        form.closed_weekdays.data = [d for d in (site.closed_weekdays or "").split(",") if d]
        form.holidays.data = "\n".join(f"{h.day.isoformat()} {h.name}".strip() for h in services.holidays_of(site.id))
    outcome = submit(form, lambda: services.set_closing_days(
                         actor, site.id, {"closed_weekdays": form.closed_weekdays.data or [],
                                          "holidays": form.holidays.data or ""}, utcnow()),
                     lambda saved: flash_redirect(_("Closing days of %(site)s saved. Daily duties skip them.",
                                                    site=saved.name),
                                                  url_for("schedule.closing_days", site_id=site.id)))
    if not isinstance(outcome, int):
        return outcome
    return render_template("schedule/closing_days.html", form=form, site=site), outcome
