"""The product's WSGI app with one extra route for bench/tick.py: POST /bench/insert does one ORM INSERT and one
COMMIT (an auth_events row) behind every before-request hook the real pages pass — the yardstick a tick is
compared with. Only for the benchmark; never served otherwise."""
from compliance import create_app
from compliance.auth.models import AuthEvent
from compliance.extensions import csrf, db
from compliance.timeutil import utcnow

app = create_app()


@app.post("/bench/insert")
@csrf.exempt
def bench_insert():
    db.session.add(AuthEvent(kind="bench", at=utcnow()))
    db.session.commit()
    return "", 204
