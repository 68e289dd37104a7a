"""Entry point for `flask --app wsgi` and gunicorn (`gunicorn wsgi:app`)."""
import sys

from compliance import create_app
from compliance.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:  # one line naming the variable, not a traceback
    sys.exit(f"configuration error: {exc}")
