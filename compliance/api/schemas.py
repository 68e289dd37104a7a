"""What the JSON API reads and writes: input shapes (types, lengths, choices) and outputs without secrets.

The services stay the authority on the business rules (unique names, who may give which role, site
reach); these schemas refuse malformed input early and document it in the OpenAPI document.
"""
from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..auth.rules import MIN_PASSWORD_LENGTH, PIN_RE
from ..boundary import MAX_ID
from ..config import LANGUAGES, LOCALES
from ..sites.models import ROLES
from ..sites.services import ROOM_KINDS
from ..sites.training import COURSES
from ..timeutil import is_valid_timezone
from ..validation import day_problem


class UTCDateTimeField(fields.DateTime):
    """An aware datetime as ISO 8601 in UTC with its offset, e.g. 2025-01-31T08:00:00+00:00."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if value.tzinfo is None:  # the UTC column type never hands back a naive datetime
            raise ValueError(f"naive datetime in {attr}")
        return super()._serialize(value.astimezone(timezone.utc), attr, obj, **kwargs)


class SortedIntList(fields.List):
    """A set of ids as a sorted JSON array."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else super()._serialize(sorted(value), attr, obj, **kwargs)


def _timezone(value: str) -> None:
    if not is_valid_timezone(value):
        raise ValidationError("must be an IANA time zone such as Asia/Jakarta")


def _text(max_len: int, required: bool = True, **kw) -> fields.String:
    """A string of at most max_len characters (and not empty, when required)."""
    if required:
        return fields.String(required=True, validate=validate.Length(min=1, max=max_len), **kw)
    return fields.String(load_default="", validate=validate.Length(max=max_len), **kw)


def _plausible_moment(value) -> None:
    """Dates and times the API reads lie in the window every record is kept in (2000-01-01 to ten years
    ahead); narrower limits (not in the future) are the services' own."""
    today = datetime.now(timezone.utc).date()
    day = value.astimezone(timezone.utc).date() if isinstance(value, datetime) and value.tzinfo else (
        value.date() if isinstance(value, datetime) else value)
    window = day_problem(day, today)
    if window:
        raise ValidationError(f"must be between {window[0].isoformat()} and {window[1].isoformat()}")


def _bound(field_obj: fields.Field) -> None:
    if isinstance(field_obj, fields.Integer) and not any(isinstance(v, validate.Range) for v in field_obj.validators):
        field_obj.validators.append(validate.Range(min=-MAX_ID - 1, max=MAX_ID))
    elif isinstance(field_obj, (fields.Date, fields.DateTime)):
        field_obj.validators.append(_plausible_moment)
    elif isinstance(field_obj, fields.List):
        _bound(field_obj.inner)


class BoundedSchema(Schema):
    """Every schema of the API: an integer it reads fits the database's INTEGER (an id beyond that exists
    nowhere: 422, never a database error), and a date or time lies in the plausible window."""

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        super().on_bind_field(field_name, field_obj)
        _bound(field_obj)


class InputSchema(BoundedSchema):
    """JSON bodies: a field the endpoint does not know is refused (422), never silently dropped."""

    class Meta:
        unknown = RAISE


# --- outputs -----------------------------------------------------------------------------------

class SiteSchema(BoundedSchema):
    id = fields.Integer()
    name = fields.String()
    timezone = fields.String(metadata={"description": "IANA time zone; local times are shown in it"})
    language = fields.String()
    locale = fields.String(metadata={"enum": list(LOCALES),
                                     "description": "How pages, emails and PDFs write dates, times and numbers"})
    address = fields.String()
    is_active = fields.Boolean()
    created_at = UTCDateTimeField()


class RoomSchema(BoundedSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    name = fields.String()
    kind = fields.String(metadata={"enum": list(ROOM_KINDS)})
    is_active = fields.Boolean()
    created_at = UTCDateTimeField()


class UserSchema(BoundedSchema):
    """A person; never their password or PIN hash."""

    id = fields.Integer()
    name = fields.String()
    email = fields.String()
    role = fields.String(metadata={"enum": list(ROLES)})
    language = fields.String(allow_none=True)
    locale = fields.String(allow_none=True, metadata={"description": "The person's own formats; null: the site's"})
    is_active = fields.Boolean(attribute="is_active_user")
    site_ids = SortedIntList(fields.Integer())
    has_password = fields.Function(lambda u: u.password_hash is not None, metadata={"type": "boolean"})
    has_pin = fields.Function(lambda u: u.pin_hash is not None, metadata={"type": "boolean"})
    pin_locked_until = UTCDateTimeField(allow_none=True)
    created_at = UTCDateTimeField()


class TrainingSchema(BoundedSchema):
    """A completed course. An inactive record was replaced (replaced_by_id) or withdrawn (void_reason)."""

    id = fields.Integer()
    user_id = fields.Integer()
    course = fields.String(metadata={"enum": list(COURSES)})
    completed_on = fields.Date()
    expires_on = fields.Date(allow_none=True)
    evidence_ref = fields.String()
    is_active = fields.Boolean()
    replaced_by_id = fields.Integer(allow_none=True)
    void_reason = fields.String()
    recorded_by_id = fields.Integer(allow_none=True)
    created_at = UTCDateTimeField()


class MeSchema(BoundedSchema):
    """The caller: a signed-in person or a site's API key."""

    kind = fields.String(metadata={"enum": ["user", "api_key"]})
    name = fields.String()
    role = fields.String(metadata={"enum": [*ROLES, "machine"]})
    organisation_id = fields.Integer()
    site_ids = SortedIntList(fields.Integer())
    user_id = fields.Integer(allow_none=True)
    api_key_id = fields.Integer(allow_none=True)
    permissions = fields.List(fields.String(), metadata={"description": "Actions this caller's role allows"})


class ApiErrorSchema(BoundedSchema):
    """Every error answer (4xx) of the API."""

    code = fields.Integer(metadata={"description": "The HTTP status"})
    message = fields.String()
    errors = fields.Dict(metadata={"description": (
        "Field errors. From the business rules: {field: [messages]}. When the request itself could not "
        "be read (types, lengths, choices, unknown fields): {location: {field: [messages]}}, location "
        "being json or query.")})
    rule = fields.String(metadata={"description": "The guideline rule that refused the operation, if any"})
    existing_id = fields.Integer(metadata={"description": (
        "With a 409 for a duplicate (a cycle number used before, the same steriliser test again, an idempotency key "
        "used for another request, a name, serial, label, key or email taken): the id of the record that exists, "
        "when the caller may read it")})


# --- inputs ------------------------------------------------------------------------------------

class SiteInputSchema(InputSchema):
    name = _text(200)
    timezone = fields.String(required=True, validate=[validate.Length(max=64), _timezone])
    language = fields.String(required=True, validate=validate.OneOf(LANGUAGES))
    locale = fields.String(validate=validate.OneOf(LOCALES), metadata={
        "description": "Formats of dates, times and numbers; left out: kept, or for a new site chosen from its "
                       "language and time zone"})
    address = _text(500, required=False)


class RoomInputSchema(InputSchema):
    site_id = fields.Integer(required=True, strict=True)
    name = _text(120)
    kind = fields.String(required=True, validate=validate.OneOf(ROOM_KINDS))


class UserInputSchema(InputSchema):
    """A person. On update, a password or PIN left out stays as it was."""

    name = _text(200)
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    language = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(LANGUAGES))
    locale = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(LOCALES),
                           metadata={"description": "The person's own formats of dates and numbers; null: the site's"})
    site_ids = fields.List(fields.Integer(strict=True), required=True, validate=validate.Length(min=1, max=500))
    password = fields.String(load_only=True, validate=validate.Length(min=MIN_PASSWORD_LENGTH, max=200),
                             metadata={"description": "Needed by managers, admins and auditors"})
    pin = fields.String(load_only=True, validate=validate.Regexp(PIN_RE, error="must be 4 to 6 digits"),
                        metadata={"description": "4 to 6 digits; staff sign in on the tablet with it"})


class PinResetSchema(InputSchema):
    pin = fields.String(required=True, load_only=True,
                        validate=validate.Regexp(PIN_RE, error="must be 4 to 6 digits"))


class TrainingInputSchema(InputSchema):
    user_id = fields.Integer(required=True, strict=True)
    course = fields.String(required=True, validate=validate.OneOf(list(COURSES)))
    completed_on = fields.Date(required=True)
    expires_on = fields.Date(load_default=None, allow_none=True)
    evidence_ref = _text(300, required=False, metadata={"description": "Certificate number or file reference"})


class TrainingCorrectionSchema(TrainingInputSchema):
    """The corrected record in full, and why the old one was wrong."""

    reason = _text(2000)


class TrainingWithdrawalSchema(InputSchema):
    reason = _text(2000)


# --- list filters (query string; parameters not named here, such as page, are ignored) ---------

class SiteQuerySchema(BoundedSchema):
    q = fields.String(load_default="", validate=validate.Length(max=200),
                      metadata={"description": "Part of the name"})
    include_inactive = fields.Boolean(load_default=False)


class RoomQuerySchema(SiteQuerySchema):
    site_id = fields.Integer(load_default=None)


class UserQuerySchema(SiteQuerySchema):
    q = fields.String(load_default="", validate=validate.Length(max=200),
                      metadata={"description": "Part of the name or email"})
    site_id = fields.Integer(load_default=None)
    role = fields.String(load_default=None, validate=validate.OneOf(ROLES))


class TrainingQuerySchema(SiteQuerySchema):
    q = fields.String(load_default="", validate=validate.Length(max=200),
                      metadata={"description": "Part of the person's name or of the evidence reference"})
    user_id = fields.Integer(load_default=None)
    course = fields.String(load_default=None, validate=validate.OneOf(list(COURSES)))
