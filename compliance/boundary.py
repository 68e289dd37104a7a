"""The one boundary every request crosses before any view, form or API schema reads it.

- Ids in URLs are whole numbers that fit the database's INTEGER (1 … 2^31 − 1); any other is "not found",
  on SQLite and PostgreSQL alike (the `int` URL converter).
- Text (query strings, form fields, JSON strings and keys) is NFC-normalised; a lone surrogate or a control
  character (other than tab, line feed and carriage return) is refused with 422 naming the field.
- A JSON body is parsed strictly: a key given twice, nesting deeper than MAX_JSON_DEPTH, NaN or Infinity,
  and integers beyond 64 bits are refused (400), before anything else reads it. The checked, normalised body
  replaces the raw one, so Flask, webargs and the views all read the same value.
Pure functions first (no Flask), then the wiring."""
from __future__ import annotations

import json
import unicodedata
from typing import Any

from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest, UnprocessableEntity
from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1          # PostgreSQL INTEGER; SQLite holds more, but an id beyond it exists nowhere
MAX_JSON_INTEGER = 2**63 - 1
MAX_JSON_DEPTH = 32
_ALLOWED_CONTROLS = frozenset("\t\n\r")


class TextRefused(ValueError):
    """A text value that cannot be stored: `field` names where it was, `reason` why."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class JSONRefused(ValueError):
    """A JSON body that is not accepted (duplicate key, too deep, NaN, an integer too large, not UTF-8)."""


def text_problem(value: str) -> str | None:
    """Why a text value is refused, or None."""
    for ch in value:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            return "contains a lone surrogate (not valid Unicode text)"
        if (code < 0x20 or 0x7F <= code < 0xA0) and ch not in _ALLOWED_CONTROLS:
            return f"contains a control character (U+{code:04X})"
    return None


def clean_text(value: str, field: str) -> str:
    """The value in Unicode NFC, or TextRefused."""
    problem = text_problem(value)
    if problem:
        raise TextRefused(field, problem)
    return unicodedata.normalize("NFC", value)


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise JSONRefused(f"the key {key!r} is given twice; send each key once")
        seen[key] = value
    return seen


def _refuse_constant(name: str):
    raise JSONRefused(f"{name} is not a JSON number; send a finite number")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or abs(int(text)) > MAX_JSON_INTEGER:
        raise JSONRefused(f"the number {text[:30]} is too large")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JSONRefused(f"the number {text[:30]} is too large")
    return value


def _depth_at_most(raw: str, limit: int) -> bool:
    """Whether the arrays and objects of a JSON text nest at most `limit` deep (read before parsing, so a
    hundred thousand nested brackets never reach the recursive parser)."""
    depth, in_string, escaped = 0, False, False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _clean_json(value: Any, path: str) -> Any:
    if isinstance(value, str):
        return clean_text(value, path or "body")
    if isinstance(value, list):
        return [_clean_json(item, f"{path}[{n}]") for n, item in enumerate(value)]
    if isinstance(value, dict):
        return {clean_text(key, f"{path}.{key}" if path else "key"): _clean_json(item, f"{path}.{key}" if path else key)
                for key, item in value.items()}
    return value


def strict_json(raw: bytes | str) -> Any:
    """Parse a JSON body by the rules above; JSONRefused or TextRefused when it breaks one."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise JSONRefused("the body is not UTF-8 text") from None
    if not _depth_at_most(raw, MAX_JSON_DEPTH):
        raise JSONRefused(f"arrays and objects nest more than {MAX_JSON_DEPTH} deep")
    try:
        value = json.loads(raw, object_pairs_hook=_pairs_without_duplicates, parse_constant=_refuse_constant,
                           parse_int=_bounded_int, parse_float=_finite_float)
    except (JSONRefused, TextRefused):
        raise
    except (ValueError, RecursionError) as exc:
        raise JSONRefused(f"not valid JSON: {exc}") from None
    return _clean_json(value, "")


def clean_multidict(values: ImmutableMultiDict) -> ImmutableMultiDict:
    """A query string's or form's values (and names), each cleaned."""
    return ImmutableMultiDict([(clean_text(key, key), clean_text(value, key) if isinstance(value, str) else value)
                               for key, value in values.items(multi=True)])


def _at_most(limit: int) -> str:
    """A regular expression for the whole numbers 0 … limit (no sign), digit by digit."""
    digits = str(limit)
    parts = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for n, d in enumerate(digits):
        if d != "0":
            rest = len(digits) - n - 1
            parts.append(digits[:n] + (f"[0-{int(d) - 1}]" if d != "1" else "0") + (f"[0-9]{{{rest}}}" if rest else ""))
    parts.append(digits)
    return "(?:" + "|".join(parts) + ")"


class BoundedInt(IntegerConverter):
    """`<int:…>` in every route: 0 … 2^31 − 1, by the route's own pattern, so that a larger number matches no
    route at all (404, as a missing id; a check after matching would answer 405 where another method's route
    has the same path)."""

    regex = _at_most(MAX_ID)

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


RAW_BODY = "compliance.raw_body"


def raw_body() -> bytes:
    """The request's body byte for byte, as the client sent it (a JSON body's later readers see it normalised)."""
    from flask import request

    return request.environ.get(RAW_BODY) or request.get_data()


# --- wiring ------------------------------------------------------------------------------------

def _refuse_text(exc: TextRefused):
    error = UnprocessableEntity(f"{exc.field}: {exc.reason}")
    error.data = {"errors": {exc.field: [exc.reason]}}
    raise error


def guard_request() -> None:
    """Before every request: clean the query string, the form and a JSON body, or refuse the request."""
    from flask import request

    try:
        if request.args:
            request.__dict__["args"] = clean_multidict(request.args)
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            request.__dict__["form"] = clean_multidict(request.form)
        elif request.is_json and request.method not in ("GET", "HEAD", "OPTIONS"):
            raw = request.get_data(cache=True)
            if raw.strip():
                checked = strict_json(raw)
                request.environ[RAW_BODY] = raw  # as sent: kept as evidence where a body is (cycle records)
                # The body every later reader sees (Flask's get_json, webargs): checked and normalised.
                request._cached_data = json.dumps(checked, ensure_ascii=False).encode("utf-8")
    except TextRefused as exc:
        _refuse_text(exc)
    except JSONRefused as exc:
        raise BadRequest(f"JSON body refused: {exc}") from None


def init_app(app) -> None:
    """Call before the blueprints are registered (their routes take the `int` converter then)."""
    app.url_map.converters["int"] = BoundedInt
    funcs = app.before_request_funcs.setdefault(None, [])
    # First, but after the check of the URL's length (a too-long URL is 414 before its text is read).
    after = [n for n, f in enumerate(funcs) if f.__name__ == "_refuse_long_url"]
    funcs.insert(after[0] + 1 if after else 0, guard_request)
