"""``/-/admin/``: administration in the browser, and what its pages share.

The pages call the same service methods as the management API, which check every
action; a page only decides which forms to offer. Each form posts back with its
XSRF token; success answers 303 to a page that says what was done (a fixed message
chosen by a code in ``?done=``, never text from the request); a refusal shows the
form again with its message and the input kept.
"""

from __future__ import annotations

from typing import Any

from ministry.core.permissions import Identity, check_admin, manages_index
from ministry.errors import MinistryError, PermissionDenied
from ministry.web.base import status_of
from ministry.web.ui import PageHandler, allowed

__all__ = ["AdminHandler", "AdminPage", "server_admin"]

#: What ``?done=CODE`` says on the next page; unknown codes say nothing.
_DONE = {
    "index-created": "Index created.",
    "index-saved": "Settings saved.",
    "index-deleted": "Index deleted.",
    "group-created": "Group created.",
    "group-deleted": "Group deleted.",
    "member-added": "Member added.",
    "member-removed": "Member removed.",
    "user-created": "User created.",
    "user-disabled": "User disabled: they can no longer sign in or use their tokens.",
    "user-enabled": "User enabled.",
    "password-set": "Password changed.",
    "admin-granted": "The user is now a server administrator.",
    "admin-revoked": "The user is no longer a server administrator.",
    "user-removed": "User removed.",
}


class AdminPage(PageHandler):
    """Base of the administration pages: never cached, and they confirm what was done."""

    def set_default_headers(self) -> None:
        """What an administrator sees is theirs alone, and changes with every form."""
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def done_message(self) -> str | None:
        """The confirmation of the action that led here, if any."""
        return _DONE.get(self.get_argument("done", ""))

    def done(self, target: str, code: str) -> None:
        """POST-redirect-GET: 303 to ``target``, which confirms ``code``."""
        if code not in _DONE:
            raise AssertionError(f"unknown confirmation {code!r}")
        self.redirect(f"{target}?done={code}", status=303)

    def refuse(self, template: str, error: MinistryError, **namespace: Any) -> None:
        """The page again, with the refused form's message and its input, and the
        error's status (400, 403, 404, 409)."""
        self.set_status(status_of(error))
        self.render(template, done=None, error=error.message, **namespace)


class AdminHandler(AdminPage):
    """``/-/admin/``: what this user may administer, linked."""

    async def get(self) -> None:
        """The overview; 403 for a user who administers nothing."""
        identity = await self.identity_or_login()
        if identity is None:
            return
        configs = await self.services.indexes.configs()
        managed = sorted(n for n, c in configs.items() if manages_index(identity, c))
        if not self.administers:
            raise PermissionDenied(
                "Nothing here is yours to administer: ask a server administrator for a right."
            )
        self.render(
            "admin.html",
            done=self.done_message(),
            managed=managed,
            server_admin=server_admin(identity),
        )


def server_admin(identity: Identity) -> bool:
    """Whether to offer what only server administrators may do (the services check again)."""
    return allowed(check_admin, identity, "manage the server")
