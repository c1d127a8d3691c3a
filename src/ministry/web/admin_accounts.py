"""``/-/admin/groups`` and ``/-/admin/users``: groups, their members and users, for
server administrators (``services.accounts`` decides, as for ``/-/api/groups`` and
``/-/api/users``)."""

from __future__ import annotations

from ministry.core.permissions import Identity
from ministry.errors import Conflict, InvalidRequest, NotFound
from ministry.web.admin import AdminPage
from ministry.web.base import status_of

__all__ = ["GroupsHandler", "UsersHandler"]

#: Refusals shown beside the form that caused them; a 403 is the error page (the
#: whole page is for server administrators).
_SHOWN = (InvalidRequest, Conflict, NotFound)


def _check_confirmed(page: AdminPage, what: str) -> None:
    """An action that cannot be undone needs its box ticked: the browser asks for it, and
    a form sent without it (a script, an old page) is refused here, nothing changed."""
    if page.get_body_argument("confirm", "") != "yes":
        raise InvalidRequest(f"Tick the box to confirm: {what} cannot be undone.")


class _AccountsPage(AdminPage):
    """A page of accounts: shown after a login, and again with a refused form."""

    async def get(self) -> None:
        """The page, with the confirmation of what led here."""
        identity = await self.identity_or_login()
        if identity is not None:
            await self._show(identity, done=self.done_message(), error=None, form="", kept={})

    async def _show(self, identity: Identity, **namespace: object) -> None:
        raise NotImplementedError


class GroupsHandler(_AccountsPage):
    """Every group with its members: create and delete groups, add and remove members."""

    async def post(self) -> None:
        """One change, by the button pressed."""
        identity = await self.require_identity()
        accounts = self.services.accounts
        action = self.get_body_argument("action", "")
        group = self.get_body_argument("group", "").strip()
        member = self.get_body_argument("member", "").strip()
        form = "create" if action == "create" else f"group:{group}"
        try:
            if action == "create":
                await accounts.create_group(identity, group)
                code = "group-created"
            elif action == "delete":
                _check_confirmed(self, "deleting a group")
                await accounts.delete_group(identity, group)
                code = "group-deleted"
            elif action == "add":
                if not member:
                    raise InvalidRequest("Write the user name of the new member.")
                await accounts.change_members(identity, group, add=[member])
                code = "member-added"
            elif action == "remove":
                await accounts.change_members(identity, group, remove=[member])
                code = "member-removed"
            else:
                raise InvalidRequest("Choose what to do: create, delete, add or remove.")
        except _SHOWN as exc:
            self.set_status(status_of(exc))
            kept = {"member": member, "group": group}
            await self._show(identity, done=None, error=exc.message, form=form, kept=kept)
            return
        self.done("/-/admin/groups", code)

    async def _show(self, identity: Identity, **namespace: object) -> None:
        groups = await self.services.accounts.list_groups(identity)
        self.render("admin_groups.html", groups=sorted(groups, key=lambda g: g.name), **namespace)


class UsersHandler(_AccountsPage):
    """Every user: create one, disable or enable, set a password, make a server
    administrator or no longer one, remove."""

    async def post(self) -> None:
        """One change, by the button pressed."""
        identity = await self.require_identity()
        accounts = self.services.accounts
        action = self.get_body_argument("action", "")
        name = self.get_body_argument("name", "").strip()
        password = self.get_body_argument("password", "")
        form = "create" if action == "create" else f"user:{name}"
        try:
            if action == "create":
                admin = self.get_body_argument("admin", "") == "yes"
                await accounts.create_user(identity, name, password, admin=admin)
                code = "user-created"
            elif action in ("disable", "enable"):
                disabled = action == "disable"
                await accounts.update_user(identity, name, disabled=disabled)
                code = "user-disabled" if disabled else "user-enabled"
            elif action == "password":
                await accounts.update_user(identity, name, password=password)
                code = "password-set"
            elif action in ("grant-admin", "revoke-admin"):
                granted = action == "grant-admin"
                await accounts.update_user(identity, name, admin=granted)
                code = "admin-granted" if granted else "admin-revoked"
            elif action == "remove":
                _check_confirmed(self, "removing a user")
                await accounts.remove_user(identity, name)
                code = "user-removed"
            else:
                raise InvalidRequest(
                    "Choose: create, disable, enable, password, administrator or remove."
                )
        except _SHOWN as exc:
            self.set_status(status_of(exc))
            # The password is never sent back to the browser.
            kept = {"name": name, "admin": self.get_body_argument("admin", "")}
            await self._show(identity, done=None, error=exc.message, form=form, kept=kept)
            return
        self.done("/-/admin/users", code)

    async def _show(self, identity: Identity, **namespace: object) -> None:
        users = await self.services.accounts.list_users(identity)
        self.render("admin_users.html", users=sorted(users, key=lambda u: u.name), **namespace)
