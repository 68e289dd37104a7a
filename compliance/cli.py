"""Flask commands: demo data, tablet set-up links, the scheduler."""
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
    app.cli.add_command(demo_command)
    app.cli.add_command(tablet_link_command)
    app.cli.add_command(scheduler_group)
    app.cli.add_command(audit_group)


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
def audit_verify_command() -> None:
    """Walk every organisation's hash chain; name the first entry that does not hold (exit status 1)."""
    from .audit.models import AuditEntry
    from .audit.services import verify

    breaks = verify()
    total = db.session.scalar(select(db.func.count()).select_from(AuditEntry))
    if not breaks:
        click.echo(f"audit trail intact: {total} entries verified")
        return
    for b in breaks:
        where = f"entry {b.seq}" + (f" (id {b.entry_id})" if b.entry_id else "")
        click.echo(f"organisation {b.organisation_id}: {where}: {b.problem}")
    raise SystemExit(1)
