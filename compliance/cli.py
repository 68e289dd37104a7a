"""Flask commands: demo data, tablet set-up links."""
from __future__ import annotations



import click
from flask import Flask, current_app, url_for
from sqlalchemy import select

from .extensions import db
from .timeutil import utcnow


def register_cli(app: Flask) -> None:
    app.cli.add_command(demo_command)
    app.cli.add_command(tablet_link_command)


@click.command("demo")
def demo_command() -> None:
    """Create the demo organisation (idempotent) and print how to sign in."""
    from .demo import DEMO_PASSWORD, load_demo

    summary = load_demo(utcnow())
    db.session.commit()
    base = current_app.config["BASE_URL"]
    click.echo(f"Demo data ready ({summary['created']} rows created, {summary['existing']} already there).")
    click.echo(f"Open {base}/login")
    for email in summary["password_users"]:
        click.echo(f"  password sign-in: {email} / {DEMO_PASSWORD}")
    click.echo("Tablet: open one of these links to make the browser a site's shared tablet (valid 24 hours):")
    for site_name, link in summary["tablet_links"]:
        click.echo(f"  {site_name}: {link}")
    for site_name, people in summary["pins"].items():
        click.echo(f"  PINs at {site_name}: " + ", ".join(f"{n} {p}" for n, p in people))


@click.command("tablet-link")
@click.option("--site", "site_name", required=True, help="The site's name.")
@click.option("--name", default="Tablet", show_default=True, help="A name for the tablet.")
def tablet_link_command(site_name: str, name: str) -> None:
    """Print a link (valid 24 hours) that makes a browser the site's shared tablet."""
    from .auth.services import make_enrolment_token
    from .sites.models import Site

    site = db.session.scalar(select(Site).where(Site.name == site_name))
    if site is None:
        raise click.ClickException(f"no site named {site_name!r}")
    click.echo(enrolment_url(make_enrolment_token(site.id, name)))


def enrolment_url(token: str) -> str:
    with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
        return url_for("auth.enrol_from_link", token=token, _external=True)
