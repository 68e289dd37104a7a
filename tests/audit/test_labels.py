"""The audit log's page speaks the reader's language: actions, system actors, tables and columns as words; the
stored codes stay beside them (the log itself is never rewritten)."""
import re

from tests.test_i18n_crawl import visible_text


def test_the_audit_page_of_an_indonesian_reader_shows_words_not_codes(client, login_as, make_site, make_user):
    from compliance.audit.services import system_actor

    token = system_actor.set("system")  # rows written outside a request (an earlier test may have named another)
    jakarta = make_site(name="Jakarta Audit", timezone="Asia/Jakarta", language="id")
    manager = make_user("manager", [jakarta])
    login_as(manager)
    system_actor.reset(token)
    html = client.get("/audit").get_data(as_text=True)
    text = visible_text(html)
    assert "sistem" in text and not re.search(r"\bsystem\b", text)  # written outside a request
    assert "dibuat" in text and not re.search(r"\bcreate\b", text)
    # The tables sites and users, with the record's id (PostgreSQL's ids go on counting between tests).
    assert f"Lokasi {jakarta.id}" in text and f"Personel {manager.id}" in text
    assert "Zona waktu" in text and "timezone" not in text  # a column, by its field's label
    assert "<code>sites</code>" in html  # the stored code, in small print


def test_a_persons_role_and_an_api_key_are_named_in_the_readers_language(app):
    from flask_babel import force_locale

    from compliance.audit.labels import actor_label

    with app.test_request_context(), force_locale("id"):
        assert actor_label("Dewi Manajer (manager)") == "Dewi Manajer (Manajer)"
        assert actor_label("API key logger") == "Kunci API logger"
        assert actor_label("anonymous") == "tidak ada yang masuk"
        assert actor_label("someone (else)") == "someone (else)"


def test_every_table_and_column_has_a_label(app):
    from compliance.audit.labels import TABLE_LABELS, column_label
    from compliance.extensions import db

    tables = db.metadata.tables.values()
    assert sorted(t.name for t in tables if t.name not in TABLE_LABELS) == []
    with app.test_request_context():
        assert sorted(c.name for t in tables for c in t.columns if column_label(c.name) == c.name) == []
