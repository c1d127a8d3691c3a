"""Unit tests for ministry.core.permissions: who may read, upload, maintain and manage.

Principals are user names, ``@group`` names and ``@all``; server administrators may
do everything; API tokens only read and upload, on their own index and projects.
"""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name

from ministry.core.models import IndexConfig, ProjectRole, Publisher
from ministry.core.permissions import (
    EVERYONE,
    Identity,
    administers,
    check_admin,
    check_manage_index,
    check_manage_roles,
    check_project_action,
    check_read,
    check_upload_index,
    check_upload_project,
    may_see,
    publisher,
    rights,
)
from ministry.errors import AuthenticationRequired, NotFound, PermissionDenied

PUBLIC = IndexConfig("team/dev", uploaders=("alice", "@release"), admins=("dana",))
PRIVATE = IndexConfig(
    "team/secret",
    private=True,
    readers=("bob", "@readers"),
    uploaders=("alice",),
    admins=("dana", "@owners"),
)
OPEN_TO_ALL = IndexConfig("shared", private=True, readers=(EVERYONE,), uploaders=(EVERYONE,))

ALICE = Identity("alice")
BOB = Identity("bob")
CAROL = Identity("carol")
DANA = Identity("dana")
ROOT = Identity("root", is_admin=True)


def token(user: str, index: str | None = None, *projects: str, is_admin: bool = False) -> Identity:
    """An identity proven by an API token, limited to ``index`` and ``projects`` if given."""
    return Identity(
        user,
        is_admin=is_admin,
        token_id="0123456789abcdef",
        token_index=index,
        token_projects=projects,
    )


# -- Identity -------------------------------------------------------------------------------


def test_principals_are_the_user_every_user_and_the_groups() -> None:
    """An identity is granted rights by its name, by @all and by @group for each group."""
    identity = Identity("erin", groups=frozenset({"readers", "ops"}))
    assert identity.principals == {"erin", "@all", "@readers", "@ops"}


def test_actor_carries_user_and_address() -> None:
    """The audit log names the user and the address the request came from."""
    actor = Identity("erin", address="127.0.0.1").actor
    assert (actor.name, actor.address) == ("erin", "127.0.0.1")


# -- reading ------------------------------------------------------------------------------


@pytest.mark.parametrize("identity", [None, ALICE, CAROL, token("carol", "other")])
def test_anyone_reads_a_public_index(identity: Identity | None) -> None:
    """A public index is readable by anonymous readers, any user and any token."""
    check_read(identity, PUBLIC.name, PUBLIC)
    assert may_see(identity, PUBLIC)


def test_anonymous_reader_of_a_private_index_is_asked_to_log_in() -> None:
    """401, as for a missing index, so that pip and uv retry with credentials."""
    with pytest.raises(AuthenticationRequired, match=r"open to anonymous readers: log in") as seen:
        check_read(None, PRIVATE.name, PRIVATE)
    with pytest.raises(AuthenticationRequired) as missing:
        check_read(None, PRIVATE.name, None)
    assert seen.value.message == missing.value.message
    assert not may_see(None, PRIVATE)


def test_user_without_a_right_is_told_there_is_no_such_index() -> None:
    """A known user with no list naming them gets the 404 of a missing index."""
    with pytest.raises(NotFound, match=r"^No index 'team/secret'\.$") as seen:
        check_read(CAROL, PRIVATE.name, PRIVATE)
    with pytest.raises(NotFound) as missing:
        check_read(CAROL, PRIVATE.name, None)
    assert seen.value.message == missing.value.message
    assert not may_see(CAROL, PRIVATE)


@pytest.mark.parametrize(
    "identity",
    [
        BOB,  # a reader
        ALICE,  # an uploader reads too
        DANA,  # an index admin reads too
        Identity("erin", groups=frozenset({"readers"})),  # through @readers
        Identity("erin", groups=frozenset({"owners"})),  # through @owners (admins)
        ROOT,  # server admin
    ],
)
def test_readers_uploaders_admins_and_server_admins_read_a_private_index(
    identity: Identity,
) -> None:
    """Every list of a private index grants reading; so does the server admin role."""
    check_read(identity, PRIVATE.name, PRIVATE)
    assert may_see(identity, PRIVATE)


def test_group_membership_that_does_not_match_grants_nothing() -> None:
    """Being in some group is not being in the listed one."""
    identity = Identity("erin", groups=frozenset({"ops"}))
    with pytest.raises(NotFound):
        check_read(identity, PRIVATE.name, PRIVATE)


def test_at_all_means_every_user_but_not_anonymous() -> None:
    """``@all`` names every logged-in user; an anonymous reader is still asked to log in."""
    check_read(CAROL, OPEN_TO_ALL.name, OPEN_TO_ALL)
    assert may_see(CAROL, OPEN_TO_ALL)
    with pytest.raises(AuthenticationRequired):
        check_read(None, OPEN_TO_ALL.name, OPEN_TO_ALL)
    assert not may_see(None, OPEN_TO_ALL)


def test_token_for_its_own_private_index_reads_it() -> None:
    """A token limited to an index reads that index like its user."""
    check_read(token("bob", "team/secret"), PRIVATE.name, PRIVATE)


def test_unlimited_token_reads_what_its_user_reads() -> None:
    """A token with no index limit reads every index its user may read."""
    check_read(token("bob"), PRIVATE.name, PRIVATE)
    with pytest.raises(NotFound):
        check_read(token("carol"), PRIVATE.name, PRIVATE)


def test_token_for_another_index_cannot_read_a_private_index() -> None:
    """Even if its user could: the token names the index it is for."""
    with pytest.raises(NotFound, match=r"^No index 'team/secret'\.$"):
        check_read(token("bob", "team/dev"), PRIVATE.name, PRIVATE)


def test_token_of_a_server_admin_is_still_limited_to_its_index() -> None:
    """The admin role does not lift a token's index limit."""
    with pytest.raises(NotFound):
        check_read(token("root", "team/dev", is_admin=True), PRIVATE.name, PRIVATE)


# -- uploading ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "identity",
    [ALICE, Identity("erin", groups=frozenset({"release"})), DANA, ROOT],
)
def test_uploaders_admins_and_server_admins_may_upload(identity: Identity) -> None:
    """Uploaders by name or @group, index admins and server admins upload."""
    check_upload_index(identity, PUBLIC)
    check_upload_project(identity, PUBLIC, "anything")


@pytest.mark.parametrize("identity", [BOB, CAROL, Identity("erin", groups=frozenset({"ops"}))])
def test_others_may_not_upload(identity: Identity) -> None:
    """Reading a public index is not uploading to it."""
    with pytest.raises(PermissionDenied, match=r"may not upload to index 'team/dev'"):
        check_upload_index(identity, PUBLIC)
    with pytest.raises(PermissionDenied):
        check_upload_project(identity, PUBLIC, "anything")


def test_readers_of_a_private_index_may_not_upload() -> None:
    """Reading rights are not upload rights."""
    with pytest.raises(PermissionDenied, match="may not upload"):
        check_upload_index(BOB, PRIVATE)


def test_at_all_uploaders_means_every_user() -> None:
    """An index with ``@all`` uploaders (like the default index) takes uploads from anyone."""
    check_upload_index(CAROL, OPEN_TO_ALL)


def test_token_uploads_to_its_own_index_only() -> None:
    """A token limited to an index cannot upload anywhere else, even where its user may."""
    check_upload_index(token("alice", "team/dev"), PUBLIC)
    with pytest.raises(PermissionDenied, match=r"token is for index 'team/secret', not 'team/dev'"):
        check_upload_index(token("alice", "team/secret"), PUBLIC)


def test_unlimited_token_uploads_where_its_user_may() -> None:
    """No index limit: the user's own upload rights apply."""
    check_upload_index(token("alice"), PUBLIC)
    with pytest.raises(PermissionDenied):
        check_upload_index(token("bob"), PUBLIC)


def test_token_limited_to_projects_uploads_only_those() -> None:
    """A token's project list is compared by normalized name."""
    limited = token("alice", "team/dev", "Acme_Lib", "other")
    check_upload_project(limited, PUBLIC, "acme-lib")
    check_upload_project(limited, PUBLIC, "ACME.lib")
    check_upload_project(limited, PUBLIC, "other")
    with pytest.raises(PermissionDenied, match="not allowed to upload project 'acme-tools'"):
        check_upload_project(limited, PUBLIC, "acme-tools")


def test_project_limit_does_not_widen_the_index_limit() -> None:
    """The index is checked before the projects."""
    limited = token("alice", "team/secret", "acme-lib")
    with pytest.raises(PermissionDenied, match="token is for index"):
        check_upload_project(limited, PUBLIC, "acme-lib")


def test_project_limited_token_of_a_user_without_rights_cannot_upload() -> None:
    """The project list narrows the user's rights; it never grants any."""
    with pytest.raises(PermissionDenied, match="may not upload"):
        check_upload_project(token("bob", "team/dev", "acme-lib"), PUBLIC, "acme-lib")


# -- maintaining (yank, delete) and project roles ----------------------------------------

ROLES = [
    ProjectRole("team/dev", canonicalize_name("demo"), "alice", "owner"),
    ProjectRole("team/dev", canonicalize_name("demo"), "@release", "maintainer"),
]


@pytest.mark.parametrize(
    "identity", [ALICE, DANA, Identity("erin", groups=frozenset({"release"})), ROOT]
)
def test_owners_maintainers_and_admins_may_yank(identity: Identity) -> None:
    """Yanking belongs to a project's owners and maintainers and the index's admins."""
    check_project_action(identity, PUBLIC, "demo", ROLES, "yank")


@pytest.mark.parametrize("identity", [BOB, CAROL, Identity("frank", groups=frozenset({"x"}))])
def test_others_may_not_yank(identity: Identity) -> None:
    """Uploading to the index is not maintaining someone's project; the owners are named."""
    with pytest.raises(
        PermissionDenied,
        match=rf"{identity.user!r} may not yank in project 'demo' .*its owners \(alice\)",
    ):
        check_project_action(identity, PUBLIC, "demo", ROLES, "yank")


@pytest.mark.parametrize("identity", [ALICE, DANA, ROOT])
def test_owners_and_admins_may_delete(identity: Identity) -> None:
    """Deleting belongs to owners, index admins and server admins."""
    check_project_action(identity, PUBLIC, "demo", ROLES, "delete", owners_only=True)


def test_maintainers_may_not_delete() -> None:
    """Publishing and yanking do not include deleting."""
    erin = Identity("erin", groups=frozenset({"release"}))
    with pytest.raises(PermissionDenied, match="'erin' may not delete in project 'demo'"):
        check_project_action(erin, PUBLIC, "demo", ROLES, "delete", owners_only=True)


def test_a_project_without_roles_belongs_to_the_index_admins() -> None:
    """Migrated projects with no known uploader: only the index's admins act on them."""
    check_project_action(DANA, PUBLIC, "demo", [], "yank")
    with pytest.raises(PermissionDenied, match="only the admins of index 'team/dev'"):
        check_project_action(ALICE, PUBLIC, "demo", [], "yank")


def test_maintainers_may_not_manage_roles() -> None:
    """Only owners and index admins add and remove owners and maintainers."""
    check_manage_roles(ALICE, PUBLIC, "demo", ROLES)
    check_manage_roles(DANA, PUBLIC, "demo", ROLES)
    erin = Identity("erin", groups=frozenset({"release"}))
    with pytest.raises(PermissionDenied, match="'erin' may not change who maintains"):
        check_manage_roles(erin, PUBLIC, "demo", ROLES)


@pytest.mark.parametrize("identity", [token("alice", "team/dev"), token("root", is_admin=True)])
def test_tokens_never_yank_delete_or_grant(identity: Identity) -> None:
    """A leaked CI token cannot yank, delete or change a project's roles, whoever it is."""
    with pytest.raises(PermissionDenied, match="API tokens only read and upload; delete needs"):
        check_project_action(identity, PUBLIC, "demo", ROLES, "delete", owners_only=True)
    with pytest.raises(PermissionDenied, match="API tokens only read and upload"):
        check_manage_roles(identity, PUBLIC, "demo", ROLES)


def test_the_command_line_owns_nothing_and_admins_publish_anywhere() -> None:
    """What an admin uploads is judged by nobody's roles; a cli: identity owns nothing."""
    assert publisher(ROOT, PUBLIC) == Publisher("root", None)
    assert publisher(Identity("cli:root", is_admin=True), PUBLIC) == Publisher(None, None)
    assert publisher(ALICE, PUBLIC).principals == ALICE.principals


# -- managing -----------------------------------------------------------------------------


@pytest.mark.parametrize("identity", [DANA, Identity("erin", groups=frozenset({"owners"})), ROOT])
def test_index_admins_and_server_admins_manage_an_index(identity: Identity) -> None:
    """Index admins by name or @group, and server admins, change an index's settings."""
    check_manage_index(identity, PRIVATE)


@pytest.mark.parametrize("identity", [ALICE, BOB, CAROL])
def test_uploaders_and_readers_do_not_manage_an_index(identity: Identity) -> None:
    """Uploading is not administering."""
    with pytest.raises(PermissionDenied, match=r"may not change index 'team/secret'"):
        check_manage_index(identity, PRIVATE)


def test_token_of_an_index_admin_does_not_manage_the_index() -> None:
    """Managing takes a password."""
    with pytest.raises(PermissionDenied, match="changing an index needs your password"):
        check_manage_index(token("dana", "team/secret"), PRIVATE)


def test_server_management_is_for_server_admins() -> None:
    """Users, groups and indexes are managed by server admins only."""
    check_admin(ROOT, "create users")
    with pytest.raises(PermissionDenied, match="Only server administrators may create users"):
        check_admin(DANA, "create users")


def test_token_of_a_server_admin_does_not_manage_the_server() -> None:
    """Even an admin's token is refused, with a message that asks for the password."""
    with pytest.raises(PermissionDenied, match="create indexes needs your password"):
        check_admin(token("root", is_admin=True), "create indexes")


@pytest.mark.parametrize(
    ("identity", "index", "expected"),
    [
        (ALICE, PUBLIC, ("upload",)),
        (CAROL, PUBLIC, ()),
        (DANA, PUBLIC, ("upload", "admin")),
        (BOB, PRIVATE, ("read",)),
        (ALICE, PRIVATE, ("read", "upload")),
        (CAROL, PRIVATE, ()),
        (Identity("erin", groups=frozenset({"owners"})), PRIVATE, ("read", "upload", "admin")),
        (ROOT, PRIVATE, ("read", "upload", "admin")),
    ],
)
def test_rights_as_the_user_page_lists_them(
    identity: Identity, index: IndexConfig, expected: tuple[str, ...]
) -> None:
    """The same grants the checks use: an admin of an index may also upload to it."""
    assert rights(identity, index) == expected


# -- The administration pages' link -----------------------------------------------------------


def test_index_admins_and_server_admins_administer_something_and_tokens_nothing() -> None:
    configs = {c.name: c for c in (PUBLIC, PRIVATE, OPEN_TO_ALL)}
    assert administers(DANA, configs)  # an admin of team/dev
    assert administers(Identity("erin", groups=frozenset({"owners"})), configs)
    assert administers(ROOT, {})
    assert not administers(ALICE, configs)  # an uploader only
    assert not administers(BOB, configs)
    assert not administers(token("dana"), configs)
    assert not administers(token("root", is_admin=True), configs)
