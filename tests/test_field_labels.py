"""A message about an input names it by its label, in the reader's language, never by its key ("passes")."""
import re
from pathlib import Path

from flask_babel import force_locale

from compliance import validation as v
from compliance.errors import Invalid
from compliance.labels import FIELD_LABELS
from compliance.stock.rules import BarcodeError, parse_gs1
from compliance.stock.services import BARCODE_PROBLEMS

ROOT = Path(__file__).resolve().parent.parent
# A field's key as the services name it: a validation helper's second argument, or field="…" of a refusal.
NAMED = re.compile(r"v\.(?:text|choice|date_value|integer|decimal|check_day|check_moment|ident)\(\w+, \"(\w+)\""
                   r"|field=\"(\w+)\"|_datetime\(data, \"(\w+)\"|_limit\(\w+, \"(\w+)\"")


def test_every_field_a_service_names_has_a_label():
    names = set()
    for path in (ROOT / "compliance").rglob("*.py"):
        for match in NAMED.finditer(path.read_text()):
            names.add(next(group for group in match.groups() if group))
    assert len(names) > 50
    assert sorted(names - set(FIELD_LABELS)) == []


def _refusal(call) -> Invalid:
    try:
        call()
    except Invalid as exc:
        return exc
    raise AssertionError("not refused")


def test_the_message_shows_the_label_and_the_error_keeps_the_key(app):
    exc = _refusal(lambda: v.integer({"passes": "x"}, "passes", 1, 10))
    assert exc.field == "passes" and exc.as_dict()["errors"] == {"passes": [exc.message]}
    with app.test_request_context(), force_locale("en"):
        assert exc.message == "Passes must be a whole number"
    with app.test_request_context(), force_locale("id"):
        assert exc.message == "Jumlah lintasan harus berupa bilangan bulat"
        assert "temperature_c" not in str(_refusal(lambda: v.decimal({"temperature_c": "x"}, "temperature_c", 0, 200)))
        assert "reason" not in str(_refusal(lambda: v.text({}, "reason", 100)))


def test_a_barcode_refusal_is_in_our_words(app):
    for raw, kind in (("hello", "not_gs1"), ("(01)09506000134353", "check_digit"), ("", "empty")):
        try:
            parse_gs1(raw)
        except BarcodeError as exc:
            assert exc.kind == kind, (raw, exc.kind, str(exc))
        else:
            raise AssertionError(f"{raw!r} was read")
    with app.test_request_context(), force_locale("id"):
        words = str(BARCODE_PROBLEMS["check_digit"])
    assert "GTIN" in words and "check digit" not in words
