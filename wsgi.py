"""Entry point for `flask --app wsgi` and gunicorn (`gunicorn wsgi:app`)."""
import sys

from compliance import create_app
from compliance.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:  # one line naming the variable, not a traceback
    sys.exit(f"configuration error: {exc}")

if app.config.get("RUN_SCHEDULER"):
    # The embedded default (scripts/dev sets RUN_SCHEDULER for its single gunicorn worker only). A leader
    # lock keeps it to one scheduler per database even if this runs in more than one process.
    from compliance.schedule.runner import start_in_process

    start_in_process(app)
