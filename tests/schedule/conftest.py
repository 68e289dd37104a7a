"""Shared for the schedule tests: a real SMTP server on loopback (aiosmtpd) that can be stopped and started."""
import email
import email.policy
import socket
import time

import pytest
from aiosmtpd.controller import Controller
from tests.conftest import LONG_AGO


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def wait_until(predicate, timeout: float = 10.0) -> bool:
    """Poll `predicate` every 20 ms until it holds (True) or `timeout` seconds pass (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real SMTP server on a loopback port that can be stopped and started again (a new controller each time)."""

    def __init__(self):
        self.inbox, self.port, self.controller = Inbox(), free_port(), None

    def start(self):
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(app):
    server = Server()
    server.start()
    old = {k: app.config[k] for k in ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "SMTP_USER")}
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=server.port, SMTP_SECURITY="none", SMTP_USER="")
    yield server.inbox, server
    server.stop()
    app.config.update(old)




@pytest.fixture
def make_steriliser(db):
    from compliance.devices.models import Steriliser

    def make(site, type="B", name=None):
        steriliser = Steriliser(site_id=site.id, name=name or f"Autoclave {Steriliser.query.count() + 1}", type=type,
                                created_at=LONG_AGO,
                                is_in_service=True)
        db.session.add(steriliser)
        db.session.commit()
        return steriliser

    return make
