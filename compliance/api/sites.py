"""Sites, rooms, people and training over JSON: read input → one service call → commit → respond.

Lists are paginated by flask-smorest: ?page= (from 1) and ?page_size= (default 25, at most 100); the
body is a JSON array and the X-Pagination header holds {total, total_pages, page, ...}.
"""
from __future__ import annotations


from flask import current_app, url_for
from flask.views import MethodView
from sqlalchemy import Select
from sqlalchemy.orm import selectinload

from ..auth import accounts
from ..auth.models import ApiKey
from ..auth.permissions import PERMISSIONS
from ..extensions import db
from ..sites import services
from ..sites.models import User, count
from ..timeutil import utcnow
from .auth import api_actor, authenticate_request, error_docs
from .blueprint import Blueprint
from .schemas import (
    MeSchema,
    PinResetSchema,
    RoomInputSchema,
    RoomQuerySchema,
    RoomSchema,
    SiteInputSchema,
    SiteQuerySchema,
    SiteSchema,
    TrainingCorrectionSchema,
    TrainingInputSchema,
    TrainingQuerySchema,
    TrainingSchema,
    TrainingWithdrawalSchema,
    UserInputSchema,
    UserQuerySchema,
    UserSchema,
)

blp = Blueprint("api_sites", __name__, url_prefix="/api/v1", description=(
    "Sites, rooms, people and training. A site's API key reads none of them (403), only /me."))

# Reads take a session cookie or a site API key; a session's writes also need the X-CSRFToken header.
PAGE = {"page_size": 25, "max_page_size": 100}


blp.before_request(authenticate_request)
_errors = error_docs(blp)


def _reader(action: str):
    """The caller, allowed `action` (403 else): the services' look-ups by id also serve other actions' checks."""
    actor = api_actor()
    actor.require(action)
    return actor


def _page(stmt: Select, pagination_parameters) -> list:
    pagination_parameters.item_count = count(stmt)
    if pagination_parameters.first_item >= pagination_parameters.item_count:
        return []  # past the last page (any page number, however large: no offset reaches the database)
    return list(db.session.scalars(
        stmt.limit(pagination_parameters.page_size).offset(pagination_parameters.first_item)))


def _created(obj, endpoint: str, **values):
    return obj, 201, {"Location": url_for(endpoint, **values)}


# --- who is calling ------------------------------------------------------------------------------

@blp.route("/me", tags=["me"])
class Me(MethodView):
    @blp.response(200, MeSchema)
    @_errors()
    def get(self):
        """Who is calling: a person (by session) or a site's API key, with role and sites."""
        actor = api_actor()
        if actor.api_key_id is not None:
            kind, name = "api_key", db.session.get(ApiKey, actor.api_key_id).name
        else:
            kind, name = "user", db.session.get(User, actor.user_id).name
        return {
            "kind": kind, "name": name, "role": actor.role, "organisation_id": actor.organisation_id,
            "site_ids": actor.site_ids, "user_id": actor.user_id, "api_key_id": actor.api_key_id,
            "permissions": sorted(action for action in PERMISSIONS if actor.can(action)),
        }


# --- sites ---------------------------------------------------------------------------------------

@blp.route("/sites", tags=["sites"])
class Sites(MethodView):
    @blp.arguments(SiteQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, SiteSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, q, include_inactive):
        """List the sites in the caller's reach, by name."""
        return _page(services.sites_query(api_actor(), q, include_inactive), pagination_parameters)

    @blp.arguments(SiteInputSchema)
    @blp.response(201, SiteSchema)
    @_errors(400, 403, 409, write=True)
    def post(self, data):
        """Add a site (admins)."""
        site = services.create_site(api_actor(), data, utcnow())
        db.session.commit()
        return _created(site, ".SiteItem", site_id=site.id)


@blp.route("/sites/<int:site_id>", tags=["sites"])
class SiteItem(MethodView):
    @blp.response(200, SiteSchema)
    @_errors(403, 404)
    def get(self, site_id):
        """One site."""
        return services.get_site(_reader("sites.read"), site_id)

    @blp.arguments(SiteInputSchema)
    @blp.response(200, SiteSchema)
    @_errors(400, 403, 404, 409, write=True)
    def put(self, data, site_id):
        """Change a site's settings (admins); every field is replaced."""
        site = services.update_site(api_actor(), site_id, data)
        db.session.commit()
        return site


@blp.route("/sites/<int:site_id>/deactivate", tags=["sites"])
class SiteDeactivate(MethodView):
    @blp.response(200, SiteSchema)
    @_errors(400, 403, 404, write=True)
    def post(self, site_id):
        """Deactivate a site (admins); sites are never deleted."""
        site = services.set_site_active(api_actor(), site_id, False)
        db.session.commit()
        return site


# --- rooms ---------------------------------------------------------------------------------------

@blp.route("/rooms", tags=["rooms"])
class Rooms(MethodView):
    @blp.arguments(RoomQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, RoomSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, q, include_inactive, site_id):
        """List the rooms of the caller's sites (optionally of one site), by site and name."""
        stmt = services.rooms_query(api_actor(), site_id=site_id, search=q, include_inactive=include_inactive)
        return _page(stmt, pagination_parameters)

    @blp.arguments(RoomInputSchema)
    @blp.response(201, RoomSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data):
        """Add a room to one of the caller's sites (managers, admins)."""
        room = services.create_room(api_actor(), data, utcnow())
        db.session.commit()
        return _created(room, ".RoomItem", room_id=room.id)


@blp.route("/rooms/<int:room_id>", tags=["rooms"])
class RoomItem(MethodView):
    @blp.response(200, RoomSchema)
    @_errors(403, 404)
    def get(self, room_id):
        """One room."""
        return services.get_room(_reader("rooms.read"), room_id)

    @blp.arguments(RoomInputSchema)
    @blp.response(200, RoomSchema)
    @_errors(400, 403, 404, 409, write=True)
    def put(self, data, room_id):
        """Rename a room, change its kind or move it to another of the caller's sites; every field is replaced."""
        room = services.update_room(api_actor(), room_id, data)
        db.session.commit()
        return room


@blp.route("/rooms/<int:room_id>/deactivate", tags=["rooms"])
class RoomDeactivate(MethodView):
    @blp.response(200, RoomSchema)
    @_errors(400, 403, 404, write=True)
    def post(self, room_id):
        """Deactivate a room; rooms are never deleted."""
        room = services.set_room_active(api_actor(), room_id, False)
        db.session.commit()
        return room


# --- people --------------------------------------------------------------------------------------

@blp.route("/users", tags=["users"])
class Users(MethodView):
    @blp.arguments(UserQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, UserSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, q, include_inactive, site_id, role):
        """List the people of the caller's sites, by name."""
        stmt = services.users_query(api_actor(), site_id=site_id, search=q, role=role,
                                    include_inactive=include_inactive)
        return _page(stmt.options(selectinload(User.sites)), pagination_parameters)

    @blp.arguments(UserInputSchema)
    @blp.response(201, UserSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data):
        """Add a person to one or more of the caller's sites (managers: staff and managers only). A manager,
        admin or auditor sent without a password is invited by email to choose their own (a single-use link,
        valid INVITATION_HOURS)."""
        user, _invited = accounts.add_person(api_actor(), data, utcnow(),
                                             accounts.LinkPolicy.from_config(current_app.config))
        db.session.commit()
        return _created(user, ".UserItem", user_id=user.id)


@blp.route("/users/<int:user_id>", tags=["users"])
class UserItem(MethodView):
    @blp.response(200, UserSchema)
    @_errors(403, 404)
    def get(self, user_id):
        """One person."""
        return services.get_user(_reader("users.read"), user_id)

    @blp.arguments(UserInputSchema)
    @blp.response(200, UserSchema)
    @_errors(400, 403, 404, 409, write=True)
    def put(self, data, user_id):
        """Change a person; a password or PIN left out stays, sites outside the caller's reach stay."""
        user = services.update_user(api_actor(), user_id, data)
        db.session.commit()
        return user


@blp.route("/users/<int:user_id>/deactivate", tags=["users"])
class UserDeactivate(MethodView):
    @blp.response(200, UserSchema)
    @_errors(400, 403, 404, 422, write=True)
    def post(self, user_id):
        """Deactivate a person (not oneself); their records stay theirs."""
        user = services.set_user_active(api_actor(), user_id, False)
        db.session.commit()
        return user


@blp.route("/users/<int:user_id>/pin", tags=["users"])
class UserPin(MethodView):
    @blp.arguments(PinResetSchema)
    @blp.response(200, UserSchema)
    @_errors(400, 403, 404, write=True)
    def post(self, data, user_id):
        """Give a person a new PIN and lift any PIN lock; whoever was signed in with the old PIN is signed out."""
        user = services.reset_pin(api_actor(), user_id, data["pin"])
        db.session.commit()
        return user


# --- training ------------------------------------------------------------------------------------

@blp.route("/training", tags=["training"])
class Training(MethodView):
    @blp.arguments(TrainingQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, TrainingSchema(many=True))
    @blp.paginate(**PAGE)
    @_errors(403)
    def get(self, pagination_parameters, q, include_inactive, user_id, course):
        """List training records of the people in the caller's reach, newest first."""
        stmt = services.training_query(api_actor(), user_id=user_id, search=q, course=course,
                                       include_inactive=include_inactive)
        return _page(stmt, pagination_parameters)

    @blp.arguments(TrainingInputSchema)
    @blp.response(201, TrainingSchema)
    @_errors(400, 403, 404, write=True)
    def post(self, data):
        """Record a completed course for a person in the caller's reach."""
        record = services.record_training(api_actor(), data, utcnow())
        db.session.commit()
        return _created(record, ".TrainingItem", record_id=record.id)


@blp.route("/training/<int:record_id>", tags=["training"])
class TrainingItem(MethodView):
    @blp.response(200, TrainingSchema)
    @_errors(403, 404)
    def get(self, record_id):
        """One training record (active or not)."""
        return services.get_training(_reader("training.read"), record_id)


@blp.route("/training/<int:record_id>/correct", tags=["training"])
class TrainingCorrect(MethodView):
    @blp.arguments(TrainingCorrectionSchema)
    @blp.response(201, TrainingSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data, record_id):
        """Correct a record: a new record replaces it; the old one stays, inactive, with the reason."""
        record = services.correct_training(api_actor(), record_id, data, utcnow())
        db.session.commit()
        return _created(record, ".TrainingItem", record_id=record.id)


@blp.route("/training/<int:record_id>/withdraw", tags=["training"])
class TrainingWithdraw(MethodView):
    @blp.arguments(TrainingWithdrawalSchema)
    @blp.response(200, TrainingSchema)
    @_errors(400, 403, 404, 409, write=True)
    def post(self, data, record_id):
        """Withdraw a record entered in error; it stays in the history with the reason."""
        record = services.withdraw_training(api_actor(), record_id, data["reason"])
        db.session.commit()
        return record
