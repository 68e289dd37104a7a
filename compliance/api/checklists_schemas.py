"""What the checklists API reads and writes.

An answer's value is a JSON string, number or boolean: a tick is true, a yes/no a boolean, a number its digits as
a string ("11", "4.5"), a choice or a text its string, a photo or signature the stored file's name. Limits are
decimal strings, as stored. As elsewhere, these schemas refuse malformed input early; the services decide whether
an answer fits its item (a number that is not a number answers 422 naming `value`).
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate

from ..checklists.models import ITEM_KINDS, NOTE_WHEN, TEMPLATE_KINDS
from ..checklists.rules import MAX_TEXT
from .schemas import BoundedSchema, InputSchema, UTCDateTimeField, _text
from .sterilisation_schemas import DecimalString

ACTION_STATES = ("open", "closed", "all")


class TextsField(fields.Dict):
    """A text in both languages: {"en": …, "id": …}."""

    def __init__(self, **kwargs):
        super().__init__(keys=fields.String(), values=fields.String(), metadata={
            "description": "The text in English (en) and Indonesian (id)",
            "example": {"en": "Site opening", "id": "Pembukaan klinik"}}, **kwargs)


def _scalar(value) -> None:
    if isinstance(value, (dict, list)) or value is None:
        raise ValidationError("must be a string, a number or a boolean")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ValidationError(f"must be at most {MAX_TEXT} characters")


class AnswerValue(fields.Raw):
    """A string, a number or a boolean (checked against the item by the service)."""

    def __init__(self, **kwargs):
        super().__init__(required=True, validate=_scalar, metadata={
            "oneOf": [{"type": "string", "maxLength": MAX_TEXT}, {"type": "number"}, {"type": "boolean"}],
            "description": "tick: true; yes_no: true or false; number: \"4.5\" or 4.5; choice: one of the item's "
                           "choices; text and scan: a string"}, **kwargs)


# --- outputs -------------------------------------------------------------------------------------

class TemplateItemSchema(BoundedSchema):
    id = fields.Integer()
    position = fields.Integer()
    key = fields.String()
    kind = fields.String(metadata={"enum": list(ITEM_KINDS)})
    label = TextsField()
    rule_id = fields.String(allow_none=True, metadata={"description": "The guideline rule the item serves"})
    is_required = fields.Boolean()
    note_when = fields.String(metadata={"enum": list(NOTE_WHEN), "description": (
        "When an answer needs a note (and opens a corrective action): never, on a \"no\", or out of limits")})
    min_value = DecimalString(2, allow_none=True)
    max_value = DecimalString(2, allow_none=True)
    unit = fields.String()
    choices = fields.List(fields.String(), allow_none=True)


class TemplateVersionBriefSchema(BoundedSchema):
    id = fields.Integer()
    number = fields.Integer()
    title = TextsField()
    is_frozen = fields.Boolean(metadata={"description": "A run used it: an edit makes a new version"})
    created_by_id = fields.Integer(allow_none=True)
    created_at = UTCDateTimeField()


class TemplateVersionSchema(TemplateVersionBriefSchema):
    items = fields.List(fields.Nested(TemplateItemSchema))


class ChecklistTemplateSchema(BoundedSchema):
    id = fields.Integer()
    key = fields.String()
    kind = fields.String(metadata={"enum": list(TEMPLATE_KINDS)})
    is_active = fields.Boolean()
    created_at = UTCDateTimeField()
    title = fields.Function(lambda t: t.versions[-1].title, metadata={
        "type": "object", "description": "The current version's title in English (en) and Indonesian (id)"})
    current_version = fields.Function(lambda t: t.versions[-1].number, metadata={"type": "integer"})
    item_count = fields.Function(lambda t: len(t.versions[-1].items), metadata={"type": "integer"})


class ChecklistTemplateDetailSchema(ChecklistTemplateSchema):
    version = fields.Nested(TemplateVersionSchema, metadata={"description": "The current version with its items"})
    versions = fields.List(fields.Nested(TemplateVersionBriefSchema), metadata={"description": "Oldest first"})


class AnswerSchema(BoundedSchema):
    """An answer as given. A correction is a new answer whose amends_id names the one it corrects."""

    id = fields.Integer()
    run_id = fields.Integer()
    item_id = fields.Integer()
    value = fields.Raw(metadata={"description": "As stored: true/false, a number as a string, or a string"})
    note = fields.String()
    file_name = fields.String(attribute="file_path", allow_none=True,
                              metadata={"description": "A photo or signature taken on the tablet"})
    idempotency_key = fields.String()
    amends_id = fields.Integer(allow_none=True)
    amend_reason = fields.String()
    answered_by_id = fields.Integer(allow_none=True)
    answered_at = UTCDateTimeField(metadata={"description": "When it was given"})
    received_at = UTCDateTimeField(allow_none=True, metadata={"description": "When it reached the server"})


class CorrectiveActionSchema(BoundedSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    run_id = fields.Integer()
    answer_id = fields.Integer()
    rule_id = fields.String(allow_none=True)
    what = fields.String()
    assigned_to_id = fields.Integer(allow_none=True)
    due_on = fields.Date(metadata={"description": "The site's local date"})
    is_open = fields.Function(lambda a: a.closed_at is None, metadata={"type": "boolean"})
    opened_at = UTCDateTimeField()
    closed_at = UTCDateTimeField(allow_none=True)
    closed_by_id = fields.Integer(allow_none=True)
    close_note = fields.String()


class ChecklistRunSchema(BoundedSchema):
    id = fields.Integer()
    site_id = fields.Integer()
    room_id = fields.Integer(allow_none=True)
    treatment_id = fields.Integer(allow_none=True)
    template_id = fields.Integer(attribute="version.template_id")
    version_id = fields.Integer()
    version_number = fields.Integer(attribute="version.number")
    day = fields.Date(metadata={"description": "The site's local date the run belongs to"})
    started_by_id = fields.Integer(allow_none=True)
    started_at = UTCDateTimeField()
    completed_at = UTCDateTimeField(allow_none=True, metadata={"description": "When every required item was "
                                                                             "answered"})
    is_complete = fields.Function(lambda r: r.completed_at is not None, metadata={"type": "boolean"})


class ChecklistRunDetailSchema(ChecklistRunSchema):
    title = TextsField(attribute="version.title")
    items = fields.List(fields.Nested(TemplateItemSchema), attribute="version.items",
                        metadata={"description": "The items of the run's own version, in order"})
    answers = fields.List(fields.Nested(AnswerSchema), metadata={"description": "The answer in force for each "
                                                                                "answered item"})
    history = fields.List(fields.Nested(AnswerSchema), metadata={"description": "Every answer and correction, "
                                                                                "oldest first"})
    corrective_actions = fields.List(fields.Nested(CorrectiveActionSchema))


# --- inputs --------------------------------------------------------------------------------------

def _key() -> fields.String:
    return fields.String(required=True, validate=validate.Length(min=8, max=64), metadata={
        "description": "Made by the client, one per answer: a retry with the same key stores nothing new and "
                       "answers 200 with the answer stored the first time"})


class RunInputSchema(InputSchema):
    site_id = fields.Integer(required=True, strict=True)
    template_id = fields.Integer(required=True, strict=True)
    room_id = fields.Integer(load_default=None, allow_none=True, strict=True)
    treatment_id = fields.Integer(load_default=None, allow_none=True, strict=True,
                                  metadata={"description": "For a before- or after-a-client checklist"})
    idempotency_key = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Regexp(r"^[A-Za-z0-9_-]{16,64}$"), metadata={
        "description": "Optional, made by the client, one per run started (16 to 64 letters, digits, _ or -): a "
                       "retry with the same key by the same person, for the same site and checklist, starts "
                       "nothing new and answers with the run started the first time; the key used for another "
                       "run answers 409"})


class AnswerInputSchema(InputSchema):
    item_id = fields.Integer(required=True, strict=True)
    value = AnswerValue()
    note = _text(2000, required=False, metadata={"description": "Needed when the answer needs attention"})
    idempotency_key = _key()
    given_at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "When the answer was given, if earlier than it is sent (kept offline on the tablet). Default: "
                       "now. Refused in the future or before the run started (two minutes of clock skew allowed)"})


class AmendInputSchema(InputSchema):
    value = AnswerValue()
    note = _text(2000, required=False)
    reason = _text(2000, metadata={"description": "Why the earlier answer was wrong"})
    idempotency_key = _key()


class CloseActionInputSchema(InputSchema):
    note = _text(2000, metadata={"description": "What was done"})


# --- list filters (query string) -----------------------------------------------------------------

class RunQuerySchema(BoundedSchema):
    site_id = fields.Integer(load_default=None)
    template_id = fields.Integer(load_default=None)
    complete = fields.Boolean(load_default=None, allow_none=True,
                              metadata={"description": "true: complete runs only; false: runs in progress only"})
    date_from = fields.Date(load_default=None, data_key="from", metadata={"description": "Local day, from"})
    date_to = fields.Date(load_default=None, data_key="to", metadata={"description": "Local day, up to and "
                                                                                      "including"})


class ActionQuerySchema(BoundedSchema):
    site_id = fields.Integer(load_default=None)
    state = fields.String(load_default="open", validate=validate.OneOf(ACTION_STATES),
                          metadata={"description": "open (default), closed or all (open first)"})
