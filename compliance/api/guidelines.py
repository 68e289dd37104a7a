"""A site's guideline numbers over JSON: every number of the pack with the site's value beside the default, the
range a site may set it in, the gate's override settings and the history of changes; a manager sets one (or
goes back to the default) with a reason. Read input → one service call → commit → respond."""
from __future__ import annotations

from flask.views import MethodView
from flask_babel import get_locale
from marshmallow import fields

from ..extensions import db
from ..guidelines import LOOSER, OVERRIDE_CHOICES
from ..guidelines import services
from ..guidelines.numbers import NumberRow
from ..timeutil import utcnow
from .auth import api_actor, authenticate_request, error_docs
from .blueprint import Blueprint
from .schemas import BoundedSchema, InputSchema, UTCDateTimeField, _text

blp = Blueprint("api_guidelines", __name__, url_prefix="/api/v1", description=(
    "A site's own numbers for the guideline pack (a monthly spore test, a longer shelf life), within the range "
    "the pack allows, with their history. Managers, admins and auditors read them; a site's API key does not."))

TAGS = [{"name": "site numbers", "description": "The guideline pack's numbers at a site: the default, the site's "
                                                "value, the allowed range and which way is looser; changed by a "
                                                "manager with a reason, every change kept"}]
KINDS = ("whole", "decimal", "choice", "fixed")

blp.before_request(authenticate_request)
_errors = error_docs(blp)


# --- what goes out -------------------------------------------------------------------------------

class NumberSchema(BoundedSchema):
    """One number of the pack at a site."""

    rule_id = fields.String(metadata={"description": "The rule; \"notices\" for when people are told, \"gate\" for "
                                                     "the point-of-use gate's refusals"})
    key = fields.String(metadata={"description": "The number's key; for the gate, the refusal's code"})
    default = fields.Raw(metadata={"description": "The pack's value"})
    value = fields.Raw(metadata={"description": "The value in force at the site"})
    differs = fields.Boolean(metadata={"description": "The site's value is not the pack's"})
    editable = fields.Boolean(metadata={"description": "A site may change it (a fixed number, a list, a text, or a "
                                                       "gate refusal that is never overridable: no)"})
    kind = fields.String(metadata={"enum": list(KINDS), "description": (
        "whole or decimal: a number in [min, max]; choice: a gate refusal's never or manager; fixed: shown only")})
    min = fields.Raw(allow_none=True)
    max = fields.Raw(allow_none=True)
    looser = fields.String(allow_none=True, metadata={"enum": list(LOOSER), "description": (
        "Which way relaxes the rule (higher: a rarer test, a longer shelf life); null when neither")})
    at_most = fields.String(allow_none=True, metadata={"description": "Another key of the rule it may not exceed"})
    choices = fields.List(fields.String(), metadata={"description": "A gate refusal's settings"})
    gate_rule = fields.String(allow_none=True, metadata={"description": "A gate refusal: the rule it applies"})


class NumberGroupSchema(BoundedSchema):
    rule_id = fields.String()
    title = fields.String(metadata={"description": "In the caller's language"})
    severity = fields.String(allow_none=True, metadata={"enum": ["critical", "major", "minor"]})
    numbers = fields.List(fields.Nested(NumberSchema))


class NumberChangeSchema(BoundedSchema):
    """One change: a row appended; the one it replaced keeps `replaced_at`."""

    id = fields.Integer()
    rule_id = fields.String()
    key = fields.String()
    old_value = fields.Raw(allow_none=True, metadata={"description": "The value it replaced (the pack's default "
                                                                     "before the first change)"})
    new_value = fields.Raw()
    reason = fields.String()
    set_by_id = fields.Integer(allow_none=True)
    set_by = fields.String(metadata={"description": "The person's name"})
    set_at = UTCDateTimeField()
    replaced_at = UTCDateTimeField(allow_none=True, metadata={"description": "null: in force now"})


class SiteNumbersSchema(BoundedSchema):
    site_id = fields.Integer()
    pack = fields.String()
    version = fields.String()
    groups = fields.List(fields.Nested(NumberGroupSchema), metadata={
        "description": "Each rule with numbers, then \"notices\", then \"gate\""})
    history = fields.List(fields.Nested(NumberChangeSchema), metadata={"description": "Newest first"})


class SiteNumberSchema(NumberSchema):
    site_id = fields.Integer()
    history = fields.List(fields.Nested(NumberChangeSchema), metadata={"description": "This number's, newest first"})


# --- what comes in -------------------------------------------------------------------------------

class NumberInputSchema(InputSchema):
    value = fields.Raw(required=True, allow_none=False, metadata={"description": (
        "A number within the pack's range (a whole number where the default is one); for the gate: "
        f"{' or '.join(OVERRIDE_CHOICES)}, never looser than the pack")})
    reason = _text(services.MAX_REASON, metadata={"description": "Why (kept in the history)"})


class NumberResetInputSchema(InputSchema):
    reason = _text(services.MAX_REASON, metadata={"description": "Why (kept in the history)"})


# --- views ---------------------------------------------------------------------------------------

def _number(row: NumberRow) -> dict:
    limit = row.limit
    return {"rule_id": row.rule_id, "key": row.key, "default": row.default, "value": row.value,
            "differs": row.differs, "editable": row.editable, "kind": row.kind, "choices": list(row.choices),
            "min": limit.min if limit else None, "max": limit.max if limit else None,
            "looser": limit.looser if limit else None, "at_most": limit.at_most if limit else None,
            "gate_rule": row.gate_rule}


def _one(site_id: int, rule_id: str, key: str) -> dict:
    _site, row = services.get_number(api_actor(), site_id, rule_id, key)
    return {**_number(row), "site_id": site_id, "history": services.number_history(site_id, rule_id, key)}


@blp.route("/sites/<int:site_id>/numbers", tags=["site numbers"])
class SiteNumbers(MethodView):
    @blp.response(200, SiteNumbersSchema)
    @_errors(403, 404)
    def get(self, site_id):
        """Every number of the pack at a site: default, the site's value, range, the gate's settings, history."""
        data = services.numbers_of_site(api_actor(), site_id, str(get_locale()))
        return {"site_id": site_id, "pack": data.pack.name, "version": data.pack.version, "history": data.history,
                "groups": [{"rule_id": g.rule_id, "title": g.title, "severity": g.severity,
                            "numbers": [_number(r) for r in g.numbers]} for g in data.groups]}


@blp.route("/sites/<int:site_id>/numbers/<rule_id>/<key>", tags=["site numbers"])
class SiteNumber(MethodView):
    @blp.response(200, SiteNumberSchema)
    @_errors(403, 404)
    def get(self, site_id, rule_id, key):
        """One number at a site, with its history."""
        return _one(site_id, rule_id, key)

    @blp.arguments(NumberInputSchema)
    @blp.response(200, SiteNumberSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def put(self, data, site_id, rule_id, key):
        """Set the site's own number with a reason (managers, admins); the site's obligations follow it. 422 (naming
        the rule) outside the pack's range, not a number, a fixed number, a gate refusal made looser, or no
        reason; 404 for a rule or key the pack does not have; 409 when it is that value already."""
        services.set_site_number(api_actor(), site_id, rule_id, key, data["value"], data["reason"], utcnow())
        db.session.commit()
        return _one(site_id, rule_id, key)


@blp.route("/sites/<int:site_id>/numbers/<rule_id>/<key>/reset", tags=["site numbers"])
class SiteNumberReset(MethodView):
    @blp.arguments(NumberResetInputSchema)
    @blp.response(200, SiteNumberSchema)
    @_errors(400, 403, 404, 409, 422, write=True)
    def post(self, data, site_id, rule_id, key):
        """Back to the pack's default with a reason (managers, admins): a change like any other, kept in the
        history. 409 when the site has the default already."""
        services.reset_site_number(api_actor(), site_id, rule_id, key, data["reason"], utcnow())
        db.session.commit()
        return _one(site_id, rule_id, key)
