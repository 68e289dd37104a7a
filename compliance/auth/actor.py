"""Who is acting: a person or a site's API key, with the sites in their reach."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..errors import Forbidden, NotFound
from ..extensions import db
from ..labels import ROLE_LABELS
from ..sites.models import Site, User
from .permissions import role_can, scoped_site_ids


@dataclass(frozen=True)
class Actor:
    organisation_id: int
    role: str  # a user role, or "machine" for an API key
    site_ids: frozenset[int] = field(default_factory=frozenset)
    user_id: int | None = None
    api_key_id: int | None = None

    def can(self, action: str) -> bool:
        return role_can(self.role, action)

    def require(self, action: str) -> None:
        """Raise Forbidden unless this actor's role allows the action."""
        if not self.can(action):
            raise Forbidden(_l("your role (%(role)s) may not do this (%(action)s)",
                               role=ROLE_LABELS.get(self.role, self.role), action=action))

    def require_site(self, site_id: int | None) -> None:
        """Raise NotFound for a site outside this actor's reach (not Forbidden: don't confirm it exists)."""
        if site_id not in self.site_ids:
            raise NotFound(_l("no such site"), field="site_id")


def actor_for_user(user: User) -> Actor:
    """The actor for a signed-in person, scoped to their sites (an admin: every site of the organisation)."""
    org_site_ids = db.session.scalars(select(Site.id).where(Site.organisation_id == user.organisation_id)).all()
    return Actor(
        organisation_id=user.organisation_id,
        role=user.role,
        site_ids=frozenset(scoped_site_ids(user.role, user.site_ids, org_site_ids)),
        user_id=user.id,
    )
