"""Making users server administrators, and no longer: the server always keeps an enabled
administrator (``AccountService.update_user``, for the API, the CLI and the users page
alike).

Real services on a SQLite file; the identities are those a request would carry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ministry.core.permissions import Identity
from ministry.errors import Conflict, InvalidRequest
from ministry.wiring import Services
from support.services import in_event_loop, started_services

ROOT = Identity("root", is_admin=True)
PASSWORD = "long-enough-password"


async def administrators(services: Services) -> list[str]:
    users = await services.accounts.list_users(ROOT)
    return sorted(u.name for u in users if u.is_admin and not u.disabled)


@in_event_loop
async def test_the_last_enabled_administrator_keeps_the_right(tmp_path: Path) -> None:
    async with started_services(tmp_path / "data") as services:
        accounts = services.accounts
        await accounts.create_user(ROOT, "root", PASSWORD, admin=True)
        await accounts.create_user(ROOT, "ada", PASSWORD)
        cli = Identity("cli:operator", is_admin=True)  # the local CLI is no user

        # The only administrator: neither the right nor the account can be taken, by
        # the local CLI or by themselves.
        for who in (cli, ROOT):
            for change in ({"admin": False}, {"disabled": True}):
                with pytest.raises(Conflict, match="'root' is the last enabled server admin"):
                    await accounts.update_user(who, "root", **change)  # type: ignore[arg-type]
        assert await administrators(services) == ["root"]

        # With a second one, either may lose it, but not by their own hand.
        made = await accounts.update_user(ROOT, "ada", admin=True)
        assert made.is_admin
        with pytest.raises(InvalidRequest, match="cannot take away your own administrator"):
            await accounts.update_user(ROOT, "root", admin=False)
        with pytest.raises(InvalidRequest, match="cannot disable yourself"):
            await accounts.update_user(ROOT, "root", disabled=True)
        ada = Identity("ada", is_admin=True)
        await accounts.update_user(ada, "root", admin=False)
        assert await administrators(services) == ["ada"]

        # A disabled administrator does not count: ada stays the last enabled one.
        await accounts.update_user(ada, "root", admin=True)
        await accounts.update_user(ada, "root", disabled=True)
        with pytest.raises(Conflict, match="'ada' is the last enabled"):
            await accounts.update_user(cli, "ada", admin=False)
        assert await administrators(services) == ["ada"]
        # Changing a password, or an administrator's other flags, is no demotion.
        await accounts.update_user(ada, "ada", password="another-long-password")
        await accounts.update_user(cli, "ada", admin=True, disabled=False)
        assert await administrators(services) == ["ada"]
