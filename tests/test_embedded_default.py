"""The product started exactly as the README starts it, with no settings at all (STACK.md trap 9).

Each test copies the tracked source tree into a temporary folder, so that its default `instance/` folder (the
SQLite database, the secret key, the scheduler's lock file) is its own, and links the `.venv` that runs these
tests into it. Then:

- `scripts/dev` itself runs there (its `scripts/setup` replaced by a stand-in that only compiles the
  translations: the linked `.venv` is already installed), with the app's variables removed from the
  environment; a real SMTP server (aiosmtpd) listens on 127.0.0.1:1025, the port scripts/dev sends to;
- `flask --app wsgi scheduler` runs on the default SQLite after `db upgrade` and `demo`, as the README says.

Both must deliver one of the demo's queued emails and keep running. Slow (tens of seconds): they start real
processes. They run in the SQLite run of scripts/test; the embedded default is SQLite whatever the run.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from compliance.config import SETTINGS
from tests.schedule.conftest import Inbox, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")),
                       reason="the embedded default is SQLite whatever the run: tested in the SQLite run"),
]

ROOT = Path(__file__).resolve().parent.parent
SINK_PORT = 1025  # scripts/dev's SMTP_PORT when none is set
ARRIVAL_SECONDS = 90
SETUP_STAND_IN = """#!/usr/bin/env bash
# Test stand-in for scripts/setup: .venv is linked to the one running the tests (already installed).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/pybabel compile -d compliance/translations >/dev/null 2>&1
"""


def _clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any of the app's variables (and nothing of Flask's or the tests')."""
    app_variables = {env for env, _key, _parser, _default in SETTINGS} | {
        "RUN_SCHEDULER", "PORT", "TEST_DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
    env = {k: v for k, v in os.environ.items() if k not in app_variables and not k.startswith("FLASK_")}
    env.update(extra)
    return env


@pytest.fixture
def source_copy(tmp_path) -> Path:
    """The tracked files (as they are in the working tree) in a folder of their own, with the .venv linked."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    copy = tmp_path / "product"
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    assert not (copy / "instance").exists()
    (copy / ".venv").symlink_to(Path(sys.prefix))
    setup = copy / "scripts" / "setup"
    setup.write_text(SETUP_STAND_IN)
    setup.chmod(0o755)
    return copy


@pytest.fixture
def sink() -> Inbox:
    """A real SMTP server on 127.0.0.1:1025. The port is fixed (it is the default under test), so a lock file
    keeps two test processes (pytest -n, another checkout) from wanting it at once."""
    lock_path = Path(tempfile.gettempdir()) / f"compliance-tests-smtp-{SINK_PORT}.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # waits for the other test process, if any
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=SINK_PORT)
        deadline = time.monotonic() + 60
        while True:
            try:
                controller.start()
                break
            except (OSError, RuntimeError) as exc:
                if time.monotonic() > deadline:
                    pytest.fail(f"port {SINK_PORT} stays taken by something else ({exc}); stop it and run again")
                controller = Controller(inbox, hostname="127.0.0.1", port=SINK_PORT)
                time.sleep(1)
        try:
            yield inbox
        finally:
            controller.stop()


@contextmanager
def _started(args: list[str], cwd: Path, env: dict[str, str], log: Path):
    """A process of our own (its own process group), stopped with SIGTERM at the end (SIGKILL if it hangs)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)


def _wait_for_mail(inbox: Inbox, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + ARRIVAL_SECONDS
    while time.monotonic() < deadline and not inbox.messages:
        if process.poll() is not None:
            pytest.fail(f"the process ended (status {process.returncode}) before any email arrived:\n"
                        f"{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.5)
    assert inbox.messages, f"no email within {ARRIVAL_SECONDS} s:\n{log.read_text(errors='replace')[-4000:]}"


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_scripts_dev_with_no_settings_serves_and_sends_the_demo_emails(source_copy, sink, tmp_path):
    port = free_port()
    log = tmp_path / "dev.log"
    with _started(["scripts/dev"], source_copy, _clean_environment(PORT=str(port)), log) as process:
        _wait_for_mail(sink, process, log)
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and '"database":"ok"' in body.replace(" ", "")
        status, body = _get(f"http://127.0.0.1:{port}/login")
        assert status == 200 and "csrf" in body
        assert process.poll() is None  # still serving
    output = log.read_text(errors="replace")
    assert "KeyError" not in output and "Traceback" not in output, output[-4000:]
    # Everything it made is in the copy's own default instance folder.
    assert (source_copy / "instance" / "compliance.db").exists()
    assert (source_copy / "instance" / "scheduler.lock").exists()
    message = sink.messages[0]
    assert message["From"] == "compliance@localhost.localdomain" and message["Message-ID"]


def test_the_scheduler_command_on_the_default_sqlite_stays_up_and_sends(source_copy, sink, tmp_path):
    env = _clean_environment(SMTP_PORT=str(SINK_PORT))  # as scripts/dev exports it
    flask = str(source_copy / ".venv" / "bin" / "flask")
    for step in (["db", "upgrade"], ["demo"]):
        done = subprocess.run([flask, "--app", "wsgi", *step], cwd=source_copy, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    log = tmp_path / "scheduler.log"
    with _started([flask, "--app", "wsgi", "scheduler"], source_copy, env, log) as process:
        _wait_for_mail(sink, process, log)
        assert process.poll() is None  # it keeps running: the next minute's jobs come
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(60) == 0
    output = log.read_text(errors="replace")
    assert "scheduler started" in output and "scheduler stopped" in output, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    assert (source_copy / "instance" / "scheduler.lock").exists()
