"""Flask commands: first run, demo data, tablet set-up links, the scheduler."""
from __future__ import annotations

import logging
import signal
from datetime import datetime, timezone

import click
from flask import Flask, current_app, url_for
from sqlalchemy import select

from .extensions import db
from .timeutil import utcnow


def register_cli(app: Flask) -> None:
    app.cli.add_command(setup_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(tablet_link_command)
    app.cli.add_command(scheduler_group)
    app.cli.add_command(audit_group)
    app.cli.add_command(export_command)


# (input, option, prompt): the order the command asks in, as the set-up page does.
SETUP_INPUTS = [
    ("organisation", "--organisation", "Organisation (the clinic's name)"),
    ("admin_name", "--admin-name", "First admin: name"),
    ("admin_email", "--admin-email", "First admin: email (signs in with it)"),
    ("admin_password", "--admin-password", "First admin: password (at least 10 characters)"),
    ("site_name", "--site-name", "First site: name"),
    ("timezone", "--timezone", "Time zone (IANA, e.g. Asia/Jakarta or Europe/London)"),
    ("language", "--language", "Language of the site's tablet (en or id)"),
    ("locale", "--locale", "Dates and numbers written as (en-GB, en-US, en-AU or id-ID)"),
    ("closed_days", "--closed-days", "Closed every week on (e.g. sun or sat,sun; none)"),
    ("opening_hour", "--opening-hour", "Opening checks due by (hour, 0-23)"),
    ("closing_hour", "--closing-hour", "Closing checks due by (hour, 0-23)"),
]


@click.command("setup")
@click.option("--organisation", help="The organisation (clinic) name.")
@click.option("--admin-name", help="The first admin's name.")
@click.option("--admin-email", help="The first admin's email; they sign in with it.")
@click.option("--admin-password", envvar="SETUP_ADMIN_PASSWORD", show_envvar=True,
              help="The first admin's password (better: the environment variable, or the prompt).")
@click.option("--site-name", help="The first site's name.")
@click.option("--timezone", help="The site's IANA time zone, e.g. Asia/Jakarta.")
@click.option("--language", type=click.Choice(["en", "id"]), help="The language of the site's tablet.")
@click.option("--locale", help="How dates, times and numbers are written: en-GB, en-US, en-AU or id-ID "
                               "(default: from the language and time zone).")
@click.option("--closed-days", help="Weekly days off, e.g. sun or sat,sun (none: open every day).")
@click.option("--opening-hour", help="Local hour the opening checks are due by (default 9).")
@click.option("--closing-hour", help="Local hour the closing checks are due by (default 20).")
@click.option("--address", default="", help="The site's address (optional).")
@click.option("--no-input", is_flag=True, help="Never prompt: a missing value is an error (for scripts).")
def setup_command(no_input: bool, address: str, **given: str | None) -> None:
    """First run: create the organisation, its first admin and its first site (with the default checklists
    and the site's obligations). Asks for what the options don't give; refused once an organisation exists."""
    from .audit.services import system_actor
    from .errors import ServiceError
    from .sites import setup

    if setup.organisation_exists():
        raise click.ClickException("this installation is already set up: an organisation exists "
                                   "(nothing was changed; people sign in at /login)")
    defaults = {"language": current_app.config["BABEL_DEFAULT_LOCALE"], "closed_days": "none",
                "opening_hour": str(setup.check_hour("opening_hour", None)),
                "closing_hour": str(setup.check_hour("closing_hour", None))}
    data: dict[str, str | None] = {"address": address}
    for name, option, label in SETUP_INPUTS:
        if given.get(name) is not None:
            data[name] = given[name]
            continue
        if name == "locale":  # from the language and time zone unless told otherwise
            from .sites.rules import default_locale

            defaults[name] = default_locale(data.get("language"), data.get("timezone"))
        if no_input:
            if name in defaults:
                data[name] = defaults[name]
                continue
            raise click.UsageError(f"{option} is required with --no-input")
        data[name] = click.prompt(label, default=defaults.get(name), hide_input=name == "admin_password",
                                  confirmation_prompt="Repeat the password" if name == "admin_password" else False,
                                  value_proc=_checked(name, data))
    token = system_actor.set("first run (command line)")
    try:
        result = setup.set_up(data, utcnow())
    except ServiceError as exc:
        db.session.rollback()
        option = {n: o for n, o, _label in SETUP_INPUTS}.get(exc.field or "", "")
        raise click.ClickException(f"{option + ': ' if option else ''}{exc.message} (nothing was stored)") from None
    finally:
        system_actor.reset(token)
    db.session.commit()
    site = result.site
    click.echo(f"Set up {result.organisation.name}: site {site.name} ({site.timezone}, {site.language}, {site.locale}), "
               f"{result.checklists} checklists, {result.obligations} obligations.")
    click.echo(f"Sign in at {current_app.config['BASE_URL']}/login as {result.admin.email}; add people, "
               "rooms, sterilisers and tablets from there.")


def _checked(name: str, data: dict):
    """A prompt's value_proc: the service's own check, so that a wrong value is asked again at once."""
    from .errors import ServiceError
    from .sites import setup

    def check(raw: str):
        try:
            if name == "locale":
                setup.check_locale(raw, data.get("language"), data.get("timezone"))
            else:
                setup.CHECKS[name](raw)
            if name == "closing_hour":
                setup.check_hours(setup.check_hour("opening_hour", data.get("opening_hour")),
                                  setup.check_hour("closing_hour", raw))
        except ServiceError as exc:
            raise click.BadParameter(exc.message) from None
        return raw

    return check


@click.command("demo")
def demo_command() -> None:
    """Create the demo organisation (idempotent) and print how to sign in."""
    from .audit.services import system_actor
    from .demo import DEMO_PASSWORD, load_demo

    system_actor.set("demo data")
    summary = load_demo(utcnow())
    db.session.commit()
    base = current_app.config["BASE_URL"]
    click.echo(f"Demo data ready ({summary['created']} rows created, {summary['existing']} already there).")
    click.echo(f"Open {base}/login")
    for email in summary["password_users"]:
        click.echo(f"  password sign-in: {email} / {DEMO_PASSWORD}")
    click.echo("Tablet: open one of these links to make the browser a site's shared tablet "
               "(each sets up one tablet, within 24 hours; `flask tablet-link` makes more):")
    for site_name, tablet_name, link in summary["tablet_links"]:
        click.echo(f"  {site_name}: {link}")
        click.echo(f"    (sets up “{tablet_name}”)")
    for site_name, people in summary["pins"].items():
        click.echo(f"  PINs at {site_name}: " + ", ".join(f"{n} {p}" for n, p in people))


@click.command("tablet-link")
@click.option("--site", "site_name", required=True, help="The site's name.")
@click.option("--name", required=True, help="The tablet's name, e.g. its room (unique among the site's tablets).")
def tablet_link_command(site_name: str, name: str) -> None:
    """Print a single-use link (valid 24 hours) that makes one browser the site's shared tablet."""
    from .audit.services import system_actor
    from .auth.services import create_tablet_link
    from .errors import ServiceError
    from .sites.models import Site

    system_actor.set("tablet-link (command line)")
    site = db.session.scalar(select(Site).where(Site.name == site_name))
    if site is None:
        raise click.ClickException(f"no site named {site_name!r}")
    try:
        _link, token = create_tablet_link(None, site.id, name, utcnow())
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(enrolment_url(token))


def enrolment_url(token: str) -> str:
    with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
        return url_for("auth.enrol_from_link", token=token, _external=True)


def _instant(raw: str | None) -> datetime:
    if not raw:
        return utcnow()
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {raw!r} (e.g. 2026-11-26T03:00:00Z)") from None
    if moment.tzinfo is None:
        raise click.BadParameter("give the offset too (e.g. 2026-11-26T10:00+07:00 or …Z)")
    return moment.astimezone(timezone.utc)


@click.group("scheduler", invoke_without_command=True)
@click.pass_context
def scheduler_group(ctx: click.Context) -> None:
    """Run the scheduler (scan, send, sync jobs) in this process until stopped; or a sub-command."""
    if ctx.invoked_subcommand is not None:
        return
    from .audit.services import system_actor
    from .schedule.runner import Runner

    system_actor.set("scheduler")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = Runner(current_app._get_current_object())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop.set())
    click.echo("scheduler: waiting for the leader lock (one scheduler runs per database)")
    runner.serve()


@scheduler_group.command("scan")
@click.option("--dry-run", is_flag=True, help="List what would be done; change nothing.")
@click.option("--at", "at", default=None, help="The moment to scan at, ISO 8601 with offset (default: now).")
def scan_command(dry_run: bool, at: str | None) -> None:
    """Scan once: reminders, overdue alerts, escalations, repeats (and digests when not a dry run)."""
    from .audit.services import system_actor
    from .schedule import services

    system_actor.set("scheduler (command line)")
    moment = _instant(at)
    if dry_run:
        rows = services.dry_run(moment)
        click.echo(f"At {moment.isoformat()}: {len(rows)} obligation(s) would be acted on (dry run, nothing changed).")
        for r in rows:
            missed = f"{r['missed']} earlier due time(s) missed; " if r["missed"] else ""
            click.echo(f"  #{r['obligation_id']} {r['site']} · {r['kind']} · {r['subject']} → {r['action']}; "
                       f"{missed}due {r['due_at'].isoformat()} UTC = {r['due_local'].isoformat()} local; "
                       f"to {', '.join(r['recipients']) or 'nobody'}")
        return
    result = services.scan(moment)
    digests = services.queue_digests(moment)
    db.session.commit()
    click.echo(f"{result.occurrences} due time(s) recorded, {len(result.findings)} finding(s), notices "
               f"{result.notices or {}}, {digests} digest(s), {len(result.skipped)} skipped")


@scheduler_group.command("send")
def send_command() -> None:
    """Send the queued emails whose time has come, once."""
    from .schedule import services

    click.echo(f"{services.send_due(utcnow()) or 'nothing to send'}")


@scheduler_group.command("resend")
@click.option("--failed", "failed", is_flag=True, help="Queue every failed email again (the only choice today).")
def resend_command(failed: bool) -> None:
    """Queue failed emails again: next try now, given up again only after OUTBOX_GIVE_UP_DAYS more."""
    from .audit.services import system_actor
    from .schedule import services

    if not failed:
        raise click.UsageError("say which emails to send again: --failed")
    system_actor.set("scheduler (command line)")
    count = services.resend_failed(utcnow())
    db.session.commit()
    click.echo(f"{count} failed email(s) queued again; the scheduler sends them within a minute "
               f"(or now: flask --app wsgi scheduler send)")


@scheduler_group.command("sync")
def sync_command() -> None:
    """Make every site's obligations match its subjects and the guideline pack, once."""
    from .schedule import services

    result = services.sync(utcnow())
    db.session.commit()
    click.echo(f"{result}")


@click.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
@click.option("--anchor", "anchor_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An anchor file (or a digest's anchor lines pasted into one): every anchored entry must still "
                   "be there, unchanged. May be given more than once.")
@click.option("--state", "state", is_flag=True,
              help="Also replay the logged values and compare them with the current rows of the audited tables.")
def audit_verify_command(anchor_files: tuple[str, ...], state: bool) -> None:
    """Walk every organisation's HMAC chain; name the first entry that does not hold (exit status 1)."""
    from .audit.anchors import read_anchors
    from .audit.models import AuditEntry
    from .audit.services import seal, verify

    seal()  # entries committed but not yet in their chains (a crash between the two commits) are sealed first
    anchors, unreadable = [], []
    for path in anchor_files:
        found, problems = read_anchors(path)
        anchors += found
        unreadable += problems
    breaks = verify(anchors=anchors)
    total = db.session.scalar(select(db.func.count()).select_from(AuditEntry))
    failed = bool(breaks or unreadable)
    for line in unreadable:
        click.echo(line)
    if not breaks:
        held = f"; {len(anchors)} anchor(s) hold" if anchor_files else ""
        click.echo(f"audit trail intact: {total} entries verified{held}")
    for b in breaks:
        where = f"entry {b.seq}" + (f" (id {b.entry_id})" if b.entry_id else "")
        click.echo(f"organisation {b.organisation_id}: {where}: {b.problem}")
    if state:
        from .audit.state import differences

        count = 0
        for difference in differences():
            count += 1
            click.echo(f"state: {difference}")
        click.echo("state: every audited row matches its audit trail" if not count else
                   f"state: {count} difference(s) between the audit trail and the tables")
        failed = failed or count > 0
    if failed:
        raise SystemExit(1)


@audit_group.command("anchor")
@click.option("--file", "path", type=click.Path(dir_okay=False), default=None,
              help="Append to this file instead of AUDIT_ANCHOR_FILE.")
def audit_anchor_command(path: str | None) -> None:
    """Append every organisation's chain head (sequence and HMAC) to the anchor file now, and print it."""
    from .audit.anchors import anchor_file, append_anchors

    anchors = append_anchors(utcnow(), path)
    target = path or anchor_file()
    if not anchors:
        click.echo("no audit trail yet: nothing to anchor")
        return
    for a in anchors:
        click.echo(a.line())
    click.echo(f"{len(anchors)} anchor(s) appended to {target}")


@click.command("export")
@click.option("--organisation", "organisation", required=True, help="The organisation's id or exact name.")
@click.option("--output", "-o", "output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Where to write the zip.")
def export_command(organisation: str, output: str) -> None:
    """Export a whole organisation: one CSV per table and a manifest, in a zip (recorded in its audit trail)."""
    from .audit.export import export_organisation
    from .audit.services import system_actor
    from .sites.models import Organisation
    from .timeutil import utcnow

    system_actor.set("export (command line)")
    row = db.session.scalar(select(Organisation).where(
        (Organisation.id == int(organisation)) if organisation.isdigit() else (Organisation.name == organisation)))
    if row is None:
        raise click.ClickException(f"no organisation {organisation!r}")
    body, manifest = export_organisation(None, row.id, utcnow())
    db.session.commit()
    with open(output, "wb") as fh:
        fh.write(body)
    rows = sum(t["rows"] for t in manifest["tables"].values())
    click.echo(f"{output}: {len(manifest['tables'])} tables, {rows} rows, sha256 {manifest['sha256']}")
