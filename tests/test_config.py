"""Settings are checked at start: a bad value stops start-up with one line naming the variable."""
import subprocess
import sys
from pathlib import Path

import pytest

from compliance import create_app
from compliance.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_valid():
    values = load_config({})
    assert values["SMTP_PORT"] == 25
    assert values["DEFAULT_TIMEZONE"] == "UTC"
    assert values["ENV"] == "development"
    assert values["OUTBOX_GIVE_UP_DAYS"] == 7 and values["OUTBOX_MAX_BACKOFF_MINUTES"] == 30


@pytest.mark.parametrize("name,value", [
    ("SMTP_PORT", "abc"), ("SMTP_PORT", "70000"), ("DEFAULT_TIMEZONE", "Mars/Olympus"),
    ("DEFAULT_LANGUAGE", "fr"), ("SMTP_SECURITY", "ssl3"), ("MAIL_FROM", "not-an-address"),
    ("BASE_URL", "ftp://x"), ("DATABASE_URL", "mysql://x"), ("TABLET_IDLE_SECONDS", "5"),
    ("COMPLIANCE_ENV", "staging"), ("PROXY_FIX", "maybe"),
    ("OUTBOX_GIVE_UP_DAYS", "0"), ("OUTBOX_GIVE_UP_DAYS", "a week"), ("OUTBOX_MAX_BACKOFF_MINUTES", "0"),
    ("OUTBOX_MAX_BACKOFF_MINUTES", "2000"),
])
def test_bad_value_names_the_variable(name, value):
    with pytest.raises(ConfigError) as exc:
        load_config({name: value})
    assert str(exc.value).startswith(name + " ")


def test_postgres_urls_are_normalised_to_psycopg3():
    assert load_config({"DATABASE_URL": "postgres://u@h/db"})["SQLALCHEMY_DATABASE_URI"] == \
        "postgresql+psycopg://u@h/db"


def test_production_requires_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app(environ={"COMPLIANCE_ENV": "production", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})


def test_production_requires_a_database_url():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        create_app({"INSTANCE_PATH": "/nonexistent"}, environ={"COMPLIANCE_ENV": "production", "SECRET_KEY": "s" * 32})


def test_development_generates_and_keeps_a_secret_key(tmp_path):
    settings = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/a.db", "INSTANCE_PATH": str(tmp_path / "inst")}
    app1 = create_app(settings, environ={})
    key_file = tmp_path / "inst" / "secret_key"
    assert key_file.exists()
    app2 = create_app(settings, environ={})
    assert app1.config["SECRET_KEY"] == app2.config["SECRET_KEY"] == key_file.read_text().strip()


def test_production_requires_an_audit_key(tmp_path):
    environ = {"COMPLIANCE_ENV": "production", "SECRET_KEY": "s" * 32, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
               "INSTANCE_PATH": str(tmp_path / "inst")}
    with pytest.raises(ConfigError, match="AUDIT_KEY is required"):
        create_app(environ=environ)
    assert not (tmp_path / "inst" / "audit_key").exists()  # never made up in production
    with pytest.raises(ConfigError, match="AUDIT_KEY must be at least 32 characters"):
        create_app(environ={**environ, "AUDIT_KEY": "short"})
    app = create_app(environ={**environ, "AUDIT_KEY": "k" * 32})
    assert app.config["AUDIT_KEY"] == "k" * 32
    assert app.config["AUDIT_ANCHOR_FILE"] == str(tmp_path / "inst" / "audit-anchors.jsonl")


def test_development_generates_and_keeps_an_audit_key_apart_from_the_secret_key(tmp_path):
    settings = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/a.db", "INSTANCE_PATH": str(tmp_path / "inst")}
    app1 = create_app(settings, environ={})
    key_file = tmp_path / "inst" / "audit_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    app2 = create_app(settings, environ={})
    assert app1.config["AUDIT_KEY"] == app2.config["AUDIT_KEY"] == key_file.read_text().strip()
    assert len(app1.config["AUDIT_KEY"]) >= 32 and app1.config["AUDIT_KEY"] != app1.config["SECRET_KEY"]
    given = create_app(settings, environ={"AUDIT_KEY": "g" * 40, "AUDIT_ANCHOR_FILE": str(tmp_path / "a.jsonl")})
    assert given.config["AUDIT_KEY"] == "g" * 40 and given.config["AUDIT_ANCHOR_FILE"] == str(tmp_path / "a.jsonl")


def test_overrides_are_checked_like_the_environment():
    with pytest.raises(ConfigError, match="^DEFAULT_TIMEZONE "):
        create_app({"DEFAULT_TIMEZONE": "Nowhere/City", "SECRET_KEY": "x",
                    "SQLALCHEMY_DATABASE_URI": "sqlite://"}, environ={})


def test_start_up_with_a_bad_variable_prints_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SMTP_PORT": "not-a-port", "SECRET_KEY": "x",
           "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "configuration error: SMTP_PORT must be a whole number, got 'not-a-port'"]
