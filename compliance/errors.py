"""Errors that services raise; the web and API edges turn them into 4xx answers."""
from __future__ import annotations


class ServiceError(Exception):
    """A refused operation. `field` names the input at fault (or None); `rule` the guideline id, if any."""

    status = 400
    # True when what the service flushed before refusing must still be committed (a failed-attempt count).
    keep_changes = False

    def __init__(self, message, field: str | None = None, rule: str | None = None):
        super().__init__(message)
        self._message = message  # often a lazy translation: rendered in the language of whoever reads it
        self.field = field
        self.rule = rule

    @property
    def message(self) -> str:
        return str(self._message)

    def __str__(self) -> str:
        return self.message

    def details(self) -> dict:
        """More for the API's answer than the message (e.g. the reasons a load would fail)."""
        return {}

    def as_dict(self) -> dict:
        body: dict = {"message": self.message}
        if self.field:
            body["errors"] = {self.field: [self.message]}
        if self.rule:
            body["rule"] = self.rule
        return {**body, **self.details()}


class Invalid(ServiceError):
    status = 422


class NotFound(ServiceError):
    status = 404


class Forbidden(ServiceError):
    status = 403


class Conflict(ServiceError):
    status = 409


class Duplicate(Conflict):
    """A record like this one exists already (or its idempotency key was used for another request): the answer
    names the existing record's id, when it is in the caller's reach, so that a client can read it instead."""

    def __init__(self, message, existing_id: int | None, field: str | None = None, rule: str | None = None):
        super().__init__(message, field=field, rule=rule)
        self.existing_id = existing_id

    def details(self) -> dict:
        return {} if self.existing_id is None else {"existing_id": self.existing_id}
