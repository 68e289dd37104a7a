"""The demo organisation: two sites, rooms, people with PINs and passwords, training. Safe to run twice."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from .extensions import db
from .sites.models import Organisation, Room, Site, TrainingRecord, User
from .timeutil import local_today

DEMO_PASSWORD = "demo-password-2026"
ORG_NAME = "Demo Skin Clinics"

SITES = [
    {"name": "Jakarta Kemang", "timezone": "Asia/Jakarta", "language": "id",
     "address": "Jl. Kemang Raya 10, Jakarta Selatan",
     "rooms": [("Ruang Perawatan 1", "treatment"), ("Ruang Perawatan 2", "treatment"),
               ("Ruang Dekontaminasi", "decontamination")]},
    {"name": "London Shoreditch", "timezone": "Europe/London", "language": "en",
     "address": "12 Rivington Street, London EC2A",
     "rooms": [("Treatment room 1", "treatment"), ("Decontamination room", "decontamination")]},
]

# name, email, role, language (None: the site's), sites, PIN
PEOPLE = [
    ("Maya Admin", "admin@demo.clinic", "admin", "en", ["Jakarta Kemang", "London Shoreditch"], None),
    ("Dewi Manajer", "manager@demo.clinic", "manager", None, ["Jakarta Kemang"], "9012"),
    ("Oliver Manager", "manager.london@demo.clinic", "manager", None, ["London Shoreditch"], None),
    ("Ana Auditor", "auditor@demo.clinic", "auditor", "en", ["Jakarta Kemang", "London Shoreditch"], None),
    ("Sari Wulandari", "sari@demo.clinic", "staff", None, ["Jakarta Kemang"], "1234"),
    ("Budi Santoso", "budi@demo.clinic", "staff", None, ["Jakarta Kemang"], "2345"),
    ("Emma Clarke", "emma@demo.clinic", "staff", None, ["London Shoreditch"], "3456"),
    ("Tom Hughes", "tom@demo.clinic", "staff", None, ["London Shoreditch"], "4567"),
]


def _get_or_create(model, counts: dict[str, int], lookup: dict[str, Any], **values):
    row = db.session.scalar(select(model).filter_by(**lookup))
    if row is not None:
        counts["existing"] += 1
        return row
    row = model(**lookup, **values)
    db.session.add(row)
    db.session.flush()
    counts["created"] += 1
    return row


def load_demo(now: datetime) -> dict[str, Any]:
    """Create what is missing of the demo data; existing rows are left exactly as they are."""
    from .auth.services import make_enrolment_token
    from .cli import enrolment_url

    counts = {"created": 0, "existing": 0}
    org = _get_or_create(Organisation, counts, {"name": ORG_NAME}, created_at=now)
    sites: dict[str, Site] = {}
    for spec in SITES:
        site = _get_or_create(Site, counts, {"organisation_id": org.id, "name": spec["name"]},
                              timezone=spec["timezone"], language=spec["language"], address=spec["address"],
                              created_at=now)
        sites[site.name] = site
        for room_name, kind in spec["rooms"]:
            _get_or_create(Room, counts, {"site_id": site.id, "name": room_name}, kind=kind, created_at=now)

    password_hash = None
    users: dict[str, User] = {}
    for name, email, role, language, site_names, pin in PEOPLE:
        existing = db.session.scalar(select(User).where(User.email == email))
        if existing is None:
            password_hash = password_hash or generate_password_hash(DEMO_PASSWORD)
            existing = User(organisation_id=org.id, name=name, email=email, role=role, language=language,
                            password_hash=password_hash if role != "staff" else None,
                            pin_hash=generate_password_hash(pin) if pin else None, created_at=now)
            existing.sites = [sites[s] for s in site_names]
            db.session.add(existing)
            db.session.flush()
            counts["created"] += 1
        else:
            counts["existing"] += 1
        users[email] = existing

    manager = users["manager@demo.clinic"]
    for email, site_name in (("sari@demo.clinic", "Jakarta Kemang"), ("budi@demo.clinic", "Jakarta Kemang"),
                             ("emma@demo.clinic", "London Shoreditch"), ("tom@demo.clinic", "London Shoreditch")):
        person = users[email]
        today = local_today(sites[site_name].timezone, now)
        # Dates are fixed relative to the first run's creation, not moved on later runs.
        plan = {
            "sari@demo.clinic": [("infection_control", 300, 65), ("microneedling", 200, 165)],
            "budi@demo.clinic": [("infection_control", 355, 10)],          # expires in 10 days
            "emma@demo.clinic": [("infection_control", 100, 265), ("microneedling", 90, 640)],
            "tom@demo.clinic": [("infection_control", 400, -35)],          # expired 35 days ago
        }[email]
        for course, days_ago, expires_in in plan:
            exists = db.session.scalar(select(TrainingRecord.id).where(
                TrainingRecord.user_id == person.id, TrainingRecord.course == course))
            if exists:
                counts["existing"] += 1
                continue
            db.session.add(TrainingRecord(
                user_id=person.id, course=course, completed_on=today - timedelta(days=days_ago),
                expires_on=today + timedelta(days=expires_in), evidence_ref=f"CERT-{person.id:03d}-{course[:4].upper()}",
                recorded_by_id=manager.id, created_at=now))
            counts["created"] += 1
    db.session.flush()

    return {
        **counts,
        "password_users": [p[1] for p in PEOPLE if p[2] != "staff"],
        "tablet_links": [(s.name, enrolment_url(make_enrolment_token(s.id, "Demo tablet"))) for s in sites.values()],
        "pins": {s: [(p[0], p[5]) for p in PEOPLE if p[5] and s in p[4]] for s in sites},
    }
