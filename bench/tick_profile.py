"""Profile of one tick (the tablet's answer POST) in process, through the Flask test client: SQL statements,
transactions and milliseconds per request, and where the time goes (cProfile).

    .venv/bin/python bench/tick_profile.py [DATABASE_URL] [--items 72] [--answered 50] [--requests 10] [--top 25]

Without DATABASE_URL: a SQLite file in a temporary folder (a given database is emptied first). Makes one site,
one member of staff signed in by PIN on an enrolled tablet, and a checklist of `--items` tick items; answers
`--answered` of them first, then times `--requests` more answer POSTs as htmx sends them (HX-Request: true,
a fresh idempotency key each) and prints, per request, the statements (BEGIN IMMEDIATE, SAVEPOINT … included;
how many transactions), the milliseconds, the last request's statements; then profiles `--requests` more with
cProfile and prints its top functions by cumulative time."""
from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PIN = "2468"
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def _setup(url: str, instance: str, items: int):
    from werkzeug.security import generate_password_hash

    from compliance import create_app
    from compliance.auth.services import create_tablet_link
    from compliance.checklists.services import create_template
    from compliance.extensions import db
    from compliance.sites.models import Organisation, Site, User
    from compliance.timeutil import utcnow

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "profile", "INSTANCE_PATH": instance,
                      "BASE_URL": "http://localhost", "SERVER_NAME": None}, environ={})
    with app.app_context():
        db.drop_all()
        db.create_all()
        now = utcnow()
        org = Organisation(name="Profile clinic")
        site = Site(organisation=org, name="Profile", timezone="Asia/Jakarta", language="en", locale="en-GB")
        db.session.add_all([org, site])
        db.session.flush()
        user = User(organisation_id=org.id, name="Staff", email="staff@profile.test", role="staff",
                    pin_hash=generate_password_hash(PIN), sites=[site])
        db.session.add(user)
        db.session.flush()
        template = create_template(org.id, {
            "key": "many_ticks", "kind": "before_client", "title": {"en": "Many ticks", "id": "Banyak centang"},
            "items": [{"key": f"tick_{n}", "kind": "tick", "en": f"Tick {n}", "id": f"Centang {n}"}
                      for n in range(items)]}, None, now)
        _link, token = create_tablet_link(None, site.id, "Tablet", now)
        ids = (user.id, template.id, token)
        db.session.commit()
    return app, ids


class Tablet:
    """The test client as the enrolled tablet, with the staff member signed in by PIN."""

    def __init__(self, app, user_id: int, token: str):
        from compliance.extensions import db

        self.app, self.db = app, db
        self.http = app.test_client()
        page = self.get(f"/tablet/enrol/{token}")
        self.post(f"/tablet/enrol/{token}", {"csrf_token": CSRF.search(page).group(1)})
        page = self.get(f"/tablet/pin/{user_id}")
        self.post(f"/tablet/pin/{user_id}", {"pin": PIN, "csrf_token": CSRF.search(page).group(1)})

    def request(self, method: str, url: str, data=None, headers=None):
        with self.app.app_context():  # each request in an app context of its own, as in production
            return self.http.open(url, method=method, data=data, headers=headers)

    def get(self, url: str) -> str:
        return self.request("GET", url).get_data(as_text=True)

    def post(self, url: str, data: dict, headers=None):
        return self.request("POST", url, data, headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url", nargs="?")
    parser.add_argument("--items", type=int, default=72)
    parser.add_argument("--answered", type=int, default=50)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.answered + 2 * args.requests > args.items:
        parser.error("--answered + 2 × --requests must not exceed --items (timed, then profiled)")
    instance = tempfile.mkdtemp(prefix="tick-profile-")
    url = args.database_url or f"sqlite:///{instance}/profile.db"
    app, (user_id, template_id, token) = _setup(url, instance, args.items)
    tablet = Tablet(app, user_id, token)
    page = tablet.get("/tablet/checklists")
    started = tablet.post("/tablet/checklists/start", {
        "template_id": template_id, "idempotency_key": uuid.uuid4().hex, "csrf_token": CSRF.search(page).group(1)})
    run_url = started.headers["Location"]
    run_page = tablet.get(run_url)
    csrf = CSRF.search(run_page).group(1)
    item_ids = re.findall(r'<input type="hidden" name="item_id" value="(\d+)">', run_page)
    assert len(item_ids) == args.items, len(item_ids)

    def tick(item_id: str):
        response = tablet.post(f"{run_url}/answers", {"item_id": item_id, "value": "yes",
                                                      "idempotency_key": uuid.uuid4().hex, "csrf_token": csrf},
                               {"HX-Request": "true"})
        assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:500])
        return response

    for item_id in item_ids[:args.answered]:
        tick(item_id)

    from compliance.extensions import db
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    def begin(conn):
        seen.append("BEGIN")

    def commit(conn):
        seen.append("COMMIT")

    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "begin", begin)
    event.listen(engine, "commit", commit)
    timed = item_ids[args.answered:args.answered + args.requests]
    profiled = item_ids[args.answered + args.requests:args.answered + 2 * args.requests]
    per_request, took = [], []
    size = 0
    for item_id in timed:  # timed without the profiler
        seen.clear()
        t0 = time.perf_counter()
        response = tick(item_id)
        took.append((time.perf_counter() - t0) * 1000)
        size = len(response.get_data())
        per_request.append(list(seen))
    event.remove(engine, "before_cursor_execute", record)
    event.remove(engine, "begin", begin)
    event.remove(engine, "commit", commit)
    profiler = cProfile.Profile()
    for item_id in profiled:
        profiler.enable()
        tick(item_id)
        profiler.disable()

    last = per_request[-1]
    sql = [s for s in last if s not in ("BEGIN", "COMMIT")]
    print(f"{url.split('@')[-1]}: {args.items} items, {args.answered} answered before, {len(timed)} answer POSTs")
    counts = sorted({len([s for s in r if s not in ("BEGIN", "COMMIT")]) for r in per_request})
    print(f"statements per request: {counts}"
          f"  (transactions begun: {last.count('BEGIN')}, commits: {last.count('COMMIT')})")
    print(f"ms per request: median {sorted(took)[len(took) // 2]:.1f}, min {min(took):.1f}, max {max(took):.1f}"
          f"  (without the profiler)")
    print(f"response: {size} bytes")
    print("\nstatements of the last request:")
    for n, s in enumerate(last, 1):
        print(f"  {n:>2}. {' '.join(s.split())[:150]}")
    print()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
