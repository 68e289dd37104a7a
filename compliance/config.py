"""Settings from environment variables, checked at start: a bad value stops start-up with one line."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlparse

from email_validator import EmailNotValidError, validate_email

from .timeutil import is_valid_timezone

LANGUAGES = ("en", "id")
# Formats of dates, times and numbers (BCP 47 tags); the language of the words is LANGUAGES'.
LOCALES = ("en-GB", "en-US", "en-AU", "id-ID")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be a whole number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {raw!r}")
        return raw

    return parse


def _timezone(raw: str) -> str:
    if not is_valid_timezone(raw):
        raise ValueError(f"must be an IANA time zone such as Asia/Jakarta, got {raw!r}")
    return raw


def _email(raw: str) -> str:
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"must be an email address ({exc})") from None


def _url(raw: str) -> str:
    parts = urlparse(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {raw!r}")
    return raw.rstrip("/")


def _audit_key(raw: str) -> str:
    if len(raw) < 32:
        raise ValueError("must be at least 32 characters (e.g. python3 -c 'import secrets; print(secrets.token_hex(32))')")
    return raw


def _database_url(raw: str) -> str:
    if not raw.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
        raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
    if raw.startswith("postgres:"):
        raw = "postgresql+psycopg:" + raw[len("postgres:"):]
    elif raw.startswith("postgresql:"):
        raw = "postgresql+psycopg:" + raw[len("postgresql:"):]
    return raw


# (environment variable, config key, parser, default). A default of None means optional.
SETTINGS: list[tuple[str, str, Callable[[str], Any], str | None]] = [
    ("COMPLIANCE_ENV", "ENV", _choice("development", "production"), "development"),
    ("DATABASE_URL", "SQLALCHEMY_DATABASE_URI", _database_url, None),
    ("SECRET_KEY", "SECRET_KEY", str, None),
    ("INSTANCE_PATH", "INSTANCE_PATH", str, None),
    ("AUDIT_KEY", "AUDIT_KEY", _audit_key, None),
    ("AUDIT_ANCHOR_FILE", "AUDIT_ANCHOR_FILE", str, None),
    ("AUDIT_ANCHOR_MINUTES", "AUDIT_ANCHOR_MINUTES", _int(5, 1440), "60"),
    ("BASE_URL", "BASE_URL", _url, "http://127.0.0.1:5000"),
    ("SMTP_HOST", "SMTP_HOST", str, "localhost"),
    ("SMTP_PORT", "SMTP_PORT", _int(1, 65535), "25"),
    ("SMTP_USER", "SMTP_USER", str, ""),
    ("SMTP_PASSWORD", "SMTP_PASSWORD", str, ""),
    ("SMTP_SECURITY", "SMTP_SECURITY", _choice("none", "starttls", "tls"), "none"),
    ("MAIL_FROM", "MAIL_FROM", _email, "compliance@localhost.localdomain"),
    ("DEFAULT_TIMEZONE", "DEFAULT_TIMEZONE", _timezone, "UTC"),
    ("DEFAULT_LANGUAGE", "BABEL_DEFAULT_LOCALE", _choice(*LANGUAGES), "en"),
    ("TABLET_IDLE_SECONDS", "TABLET_IDLE_SECONDS", _int(30, 86400), "300"),
    ("PIN_MAX_ATTEMPTS", "PIN_MAX_ATTEMPTS", _int(1, 100), "5"),
    ("PIN_LOCK_MINUTES", "PIN_LOCK_MINUTES", _int(1, 1440), "15"),
    ("LOGIN_MAX_FAILURES", "LOGIN_MAX_FAILURES", _int(1, 1000), "5"),
    ("LOGIN_MAX_FAILURES_PER_ADDRESS", "LOGIN_MAX_FAILURES_PER_ADDRESS", _int(1, 10000), "20"),
    ("LOGIN_WINDOW_MINUTES", "LOGIN_WINDOW_MINUTES", _int(1, 1440), "15"),
    ("INVITATION_HOURS", "INVITATION_HOURS", _int(1, 720), "72"),
    ("PASSWORD_RESET_MINUTES", "PASSWORD_RESET_MINUTES", _int(5, 1440), "60"),
    ("PROXY_FIX", "PROXY_FIX", _bool, "false"),
    ("RUN_SCHEDULER", "RUN_SCHEDULER", _bool, "false"),
    ("SCAN_LOOKBACK_DAYS", "SCAN_LOOKBACK_DAYS", _int(1, 366), "14"),
    ("OUTBOX_GIVE_UP_DAYS", "OUTBOX_GIVE_UP_DAYS", _int(1, 365), "7"),
    ("OUTBOX_MAX_BACKOFF_MINUTES", "OUTBOX_MAX_BACKOFF_MINUTES", _int(1, 1440), "30"),
]

# Keys checked again after overrides (tests pass values directly, not through the environment).
_CHECKS: dict[str, Callable[[str], Any]] = {
    key: parser for _env, key, parser, _default in SETTINGS if parser is not str
}


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read and check every setting; raise ConfigError naming the first bad variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for env_name, key, parser, default in SETTINGS:
        raw = environ.get(env_name)
        if raw is None or raw == "":
            if default is None:
                continue
            raw = default
        try:
            values[key] = parser(raw)
        except ValueError as exc:
            raise ConfigError(f"{env_name} {exc}") from None
    return values


def check_overrides(values: Mapping[str, Any]) -> None:
    """Check values given to create_app() directly with the same parsers as the environment."""
    env_of = {key: env for env, key, _p, _d in SETTINGS}
    for key, parser in _CHECKS.items():
        if key in values and isinstance(values[key], str):
            try:
                parser(values[key])
            except ValueError as exc:
                raise ConfigError(f"{env_of[key]} {exc}") from None


def ensure_secret_key(config: dict[str, Any], instance_path: str) -> None:
    """In development, make and keep a secret key in the instance folder; in production require one."""
    if config.get("SECRET_KEY"):
        return
    if config.get("ENV") == "production":
        raise ConfigError("SECRET_KEY is required when COMPLIANCE_ENV=production")
    path = Path(instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    config["SECRET_KEY"] = path.read_text().strip()


def ensure_audit_key(config: dict[str, Any], instance_path: str) -> None:
    """The audit chain's HMAC key, never stored in the database: required in production; in development made
    once and kept in the instance folder (like the secret key). The anchor file defaults to the instance folder."""
    if not config.get("AUDIT_ANCHOR_FILE"):
        config["AUDIT_ANCHOR_FILE"] = str(Path(instance_path) / "audit-anchors.jsonl")
    if config.get("AUDIT_KEY"):
        return
    if config.get("ENV") == "production":
        raise ConfigError("AUDIT_KEY is required when COMPLIANCE_ENV=production (at least 32 characters, kept "
                          "outside the database)")
    path = Path(instance_path) / "audit_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # created readable by its owner only, and never overwritten (another process may have made it first)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    config["AUDIT_KEY"] = path.read_text().strip()


def default_database_url(config: dict[str, Any], instance_path: str) -> None:
    """SQLite in the instance folder unless DATABASE_URL says otherwise (required in production)."""
    if config.get("SQLALCHEMY_DATABASE_URI"):
        return
    if config.get("ENV") == "production":
        raise ConfigError("DATABASE_URL is required when COMPLIANCE_ENV=production")
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(instance_path) / 'compliance.db'}"
