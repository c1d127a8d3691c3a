"""Who may do what: pure decisions over an identity, an index's settings and a project's roles.

Principals in an index's lists are user names, ``@group`` names, or ``@all``
(every user). Server administrators may do everything. API tokens read and
upload only, and only on their own index and projects; managing anything takes
a password, so a leaked CI token cannot delete, yank or grant (docs/security.md, "Credentials").

Within a hosted index each project has owners and maintainers, as on the public
index (docs/security.md, "Project ownership"): the index's ``uploaders`` decide who
may create projects, a project's roles who may publish in it, yank and unyank
(owners and maintainers), delete and change its roles (owners). The index's admins
and server admins manage every project of the index; a project without roles is
theirs alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from packaging.utils import canonicalize_name

from ministry.core.models import Actor, IndexConfig, ProjectRole, Publisher
from ministry.core.trusted_publishing import TrustedPublisher
from ministry.errors import AuthenticationRequired, MinistryError, NotFound, PermissionDenied

__all__ = [
    "EVERYONE",
    "Identity",
    "administers",
    "check_admin",
    "check_manage_index",
    "check_manage_roles",
    "check_project_action",
    "check_read",
    "check_upload_index",
    "check_upload_project",
    "manages_index",
    "may_read",
    "may_see",
    "project_refusal",
    "publisher",
    "rights",
    "seen_by",
]

#: The principal that names every user.
EVERYONE = "@all"


@dataclass(frozen=True)
class Identity:
    """A proven user: by password, or by one of their tokens (then ``token_id`` is set).

    A browser session, begun with the password, acts as the password does;
    ``session_id`` names it so that logging out can end it.
    """

    user: str
    address: str = "local"
    is_admin: bool = False
    groups: frozenset[str] = field(default_factory=frozenset)
    token_id: str | None = None
    token_index: str | None = None
    token_projects: tuple[str, ...] = ()
    session_id: str | None = None
    #: Set for an upload token minted for a CI run (``user`` then names its repository,
    #: such as ``github:OWNER/REPO``): it uploads to these publishers' projects only.
    publishers: tuple[TrustedPublisher, ...] = ()

    def trusted_for(self, index: str, project: str | None = None) -> TrustedPublisher | None:
        """The publisher that lets this identity upload here, if it is a minted token."""
        wanted = canonicalize_name(project) if project is not None else None
        for found in self.publishers:
            if found.index == index and wanted in (None, found.project):
                return found
        return None

    @property
    def actor(self) -> Actor:
        """The identity as the audit log names it."""
        return Actor(self.user, self.address)

    @property
    def principals(self) -> frozenset[str]:
        """Every name an index's lists may grant this identity a right by."""
        return frozenset({self.user, EVERYONE, *(f"@{group}" for group in self.groups)})


def _granted(identity: Identity, *lists: tuple[str, ...]) -> bool:
    return identity.is_admin or any(identity.principals & set(names) for names in lists)


def may_see(identity: Identity | None, index: IndexConfig) -> bool:
    """Whether the user may read an index's contents (through inheritance too)."""
    if not index.private:
        return True
    if identity is None:
        return False
    return _granted(identity, index.readers, index.uploaders, index.admins)


def rights(identity: Identity, index: IndexConfig) -> tuple[str, ...]:
    """What an index grants this identity beyond what it grants everyone, for people to read."""
    granted = (
        ("read", index.private and may_see(identity, index)),
        ("upload", _granted(identity, index.uploaders, index.admins)),
        ("admin", _granted(identity, index.admins)),
    )
    return tuple(name for name, held in granted if held)


def may_read(identity: Identity | None, index: IndexConfig) -> bool:
    """Whether this identity may read the index by its URL (a token only its own index)."""
    if not index.private:
        return True
    if identity is None:
        return False
    if identity.token_index is not None and identity.token_index != index.name:
        return False
    if identity.publishers:
        return False  # a minted token uploads and does nothing else
    return may_see(identity, index)


def seen_by(
    identity: Identity | None, config: IndexConfig, configs: Mapping[str, IndexConfig]
) -> IndexConfig:
    """An index's settings as this identity may see them: bases it may not read left out.

    A private index is named nowhere to those who may not read it, not even as
    another index's base (docs/security.md, "Private indexes").
    """

    def shown(name: str) -> bool:
        return name == "-" or (name in configs and may_see(identity, configs[name]))

    return replace(
        config,
        bases=tuple(base for base in config.bases if shown(base)),
        routes=tuple(route for route in config.routes if shown(route.base)),
    )


def _hidden_index(name: str, identity: Identity | None) -> MinistryError:
    """The one answer for an index this caller may not read and for one that does not exist.

    A stranger is challenged (401), so that pip and uv send their keyring or netrc
    credentials; a signed-in caller is told there is no such index (404). Nothing
    in the answer depends on whether the index exists (docs/security.md, "Private
    indexes").
    """
    if identity is None:
        return AuthenticationRequired(
            f"No index {name!r} is open to anonymous readers: log in to read it."
        )
    return NotFound(f"No index {name!r}.")


def check_read(identity: Identity | None, name: str, index: IndexConfig | None) -> IndexConfig:
    """Reading index ``name`` (``index``, None when there is none): the index, or the one answer."""
    if index is None or not may_read(identity, index):
        raise _hidden_index(name, identity)
    return index


def _check_token_index(identity: Identity, index: IndexConfig) -> None:
    if identity.token_index is not None and identity.token_index != index.name:
        raise PermissionDenied(
            f"This token is for index {identity.token_index!r}, not {index.name!r}."
        )


def check_upload_index(identity: Identity, index: IndexConfig) -> None:
    """May this identity upload to the index at all? Checked before the body is read."""
    _check_token_index(identity, index)
    if identity.publishers:
        if identity.trusted_for(index.name) is None:
            raise PermissionDenied(
                f"This token was minted for a trusted publisher of another index, "
                f"not {index.name!r}."
            )
        return
    if not _granted(identity, index.uploaders, index.admins):
        raise PermissionDenied(f"User {identity.user!r} may not upload to index {index.name!r}.")


def check_upload_project(identity: Identity, index: IndexConfig, project: str) -> None:
    """May this identity upload this project? A token may be limited to some projects."""
    check_upload_index(identity, index)
    if identity.publishers and identity.trusted_for(index.name, project) is None:
        raise PermissionDenied(
            f"This token was minted for a trusted publisher of another project, not {project!r}."
        )
    allowed = {canonicalize_name(name) for name in identity.token_projects}
    if allowed and canonicalize_name(project) not in allowed:
        raise PermissionDenied(f"This token is not allowed to upload project {project!r}.")


def manages_index(identity: Identity, index: IndexConfig) -> bool:
    """Index admins and server admins manage every project of the index."""
    return _granted(identity, index.admins)


def administers(identity: Identity, configs: Mapping[str, IndexConfig]) -> bool:
    """Whether there is anything this identity may administer (some index, or the server):
    what decides showing the administration pages' link, which check again on every action."""
    if identity.token_id is not None:
        return False
    return identity.is_admin or any(manages_index(identity, c) for c in configs.values())


def publisher(identity: Identity, index: IndexConfig, project: str | None = None) -> Publisher:
    """What the store checks when this identity's upload commits.

    The command line's own identity (``cli:<login>``, a name no account can have)
    owns nothing: what it imports belongs to the index's admins. A trusted publisher
    was set up by the project's owners (or, for a project yet to exist, names who
    will own it), so its uploads pass the roles check.
    """
    trusted = identity.trusted_for(index.name, project) if project is not None else None
    if trusted is not None:
        if trusted.owner is None:
            return Publisher(None, None)
        # Added for a project yet to exist: it publishes there only while the user who
        # added it holds a role, so that a project someone else created first is not
        # theirs to publish in.
        return Publisher(trusted.owner, frozenset({trusted.owner}))
    owner = None if ":" in identity.user else identity.user
    principals = None if manages_index(identity, index) else identity.principals
    return Publisher(owner, principals)


def _holds(identity: Identity, roles: list[ProjectRole], *wanted: str) -> bool:
    return any(r.principal in identity.principals and r.role in wanted for r in roles)


def _owners_text(index: IndexConfig, roles: list[ProjectRole]) -> str:
    owners = sorted(r.principal for r in roles if r.role == "owner")
    if owners:
        return "its owners (" + ", ".join(owners) + ")"
    return f"the admins of index {index.name!r}"


def project_refusal(
    identity: Identity, index: IndexConfig, project: str, roles: list[ProjectRole]
) -> PermissionDenied:
    """The refusal of an upload to someone else's project, naming who to ask."""
    return PermissionDenied(
        f"User {identity.user!r} may not upload to project {project!r} in index "
        f"{index.name!r}: it belongs to {_owners_text(index, roles)}. "
        "Ask one of them to add you as a maintainer."
    )


def check_project_action(
    identity: Identity,
    index: IndexConfig,
    project: str,
    roles: list[ProjectRole],
    what: str,
    *,
    owners_only: bool = False,
) -> None:
    """Yanking and unyanking (owners, maintainers), deleting (owners), by password."""
    _check_password(identity, what)
    wanted = ("owner",) if owners_only else ("owner", "maintainer")
    if manages_index(identity, index) or _holds(identity, roles, *wanted):
        return
    raise PermissionDenied(
        f"User {identity.user!r} may not {what} in project {project!r} of index "
        f"{index.name!r}: only {_who(index, roles, wanted)} may."
    )


def _who(index: IndexConfig, roles: list[ProjectRole], wanted: tuple[str, ...]) -> str:
    owners = sorted(r.principal for r in roles if r.role == "owner")
    who = [f"its owners ({', '.join(owners)})"] if owners else []
    if "maintainer" in wanted and any(r.role == "maintainer" for r in roles):
        who.append("its maintainers")
    who.append(f"the admins of index {index.name!r}")
    return " and ".join(who) if len(who) < 3 else f"{who[0]}, {who[1]} and {who[2]}"


def check_manage_roles(
    identity: Identity, index: IndexConfig, project: str, roles: list[ProjectRole]
) -> None:
    """Adding and removing owners and maintainers: owners and index admins, by password."""
    _check_password(identity, "changing a project's owners and maintainers")
    if manages_index(identity, index) or _holds(identity, roles, "owner"):
        return
    raise PermissionDenied(
        f"User {identity.user!r} may not change who maintains project {project!r} in index "
        f"{index.name!r}: only {_who(index, roles, ('owner',))} may."
    )


def _check_password(identity: Identity, what: str) -> None:
    if identity.token_id is not None:
        raise PermissionDenied(f"API tokens only read and upload; {what} needs your password.")


def check_manage_index(identity: Identity, index: IndexConfig) -> None:
    """Changing an index's settings: its admins and server admins, by password."""
    _check_password(identity, "changing an index")
    if not _granted(identity, index.admins):
        raise PermissionDenied(f"User {identity.user!r} may not change index {index.name!r}.")


def check_admin(identity: Identity, what: str) -> None:
    """Server-wide management (users, groups, indexes): server admins, by password."""
    _check_password(identity, what)
    if not identity.is_admin:
        raise PermissionDenied(f"Only server administrators may {what}.")
