"""The admin commands against a running server, through its management API (docs/api.md).

``ministry user list --url https://pypi.example`` does what ``ministry user list`` does
on the server's machine, with the same output. The credentials come from the
environment or ``~/.netrc`` and are sent only as HTTP Basic authentication; they are
never printed. Plain ``http://`` is refused for any host but this machine unless
``--insecure`` says the network is trusted: whoever can read the traffic would read
the password (docs/security.md, "Remote administration").
"""

from __future__ import annotations

import ipaddress
import netrc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ministry.cli.admin import Document
from ministry.core.models import RoleName
from ministry.errors import InvalidRequest, MinistryError

__all__ = ["RemoteAdmin", "check_url", "credentials"]

_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, insecure: bool) -> str:
    """The server's base URL without a trailing slash; refuses what would leak the password."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"--url needs an http:// or https:// address, not {url[:100]!r}.")
    if parts.username or parts.password:
        raise InvalidRequest(
            "Put no credentials in --url (they would show in process lists): set "
            "MINISTRY_USER and MINISTRY_PASSWORD, MINISTRY_TOKEN, or a ~/.netrc entry."
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not insecure:
        raise InvalidRequest(
            f"Refused: {parts.hostname} over plain http would send the password unencrypted. "
            "Use https://, or --insecure if the network between you and the server is trusted."
        )
    return url.strip().rstrip("/")


def credentials(url: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """User name and password: ``MINISTRY_USER``/``MINISTRY_PASSWORD``, else
    ``MINISTRY_TOKEN`` (as ``__token__``), else the netrc entry of the server's host."""
    user, password = environ.get("MINISTRY_USER"), environ.get("MINISTRY_PASSWORD")
    if user and password is not None:
        return user, password
    token = environ.get("MINISTRY_TOKEN")
    if token:
        return "__token__", token
    host = urlsplit(url).hostname or ""
    path = Path(environ.get("NETRC") or Path(environ.get("HOME", "~")) / ".netrc")
    try:
        entry = netrc.netrc(path.expanduser()).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        entry = None
    if entry and entry[0] and entry[2] is not None:
        return entry[0], entry[2]
    raise InvalidRequest(
        f"No credentials for {host}: set MINISTRY_USER and MINISTRY_PASSWORD (or "
        f"MINISTRY_TOKEN), or add a 'machine {host}' entry to ~/.netrc."
    )


def _message(response: httpx.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        return str(document["message"])
    return response.reason_phrase or "no reason given"


def _path(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


class RemoteAdmin:
    """The admin interface of ``ministry.cli.admin`` over the management API."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self._client = client
        self._url = url

    @classmethod
    def connect(cls, url: str, environ: Mapping[str, str], *, insecure: bool) -> RemoteAdmin:
        """An admin for the server at ``url``, with the credentials ``environ`` gives."""
        base = check_url(url, insecure=insecure)
        client = httpx.Client(
            base_url=base + "/-/api/",
            auth=credentials(base, environ),
            timeout=_TIMEOUT,
            headers={"Accept": "application/json"},
        )
        return cls(client, base)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            with self._client as client:
                response = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise MinistryError(
                f"Cannot reach the server at {self._url}: {type(exc).__name__}"
                f"{': ' + str(exc) if str(exc) else ''}."
            ) from exc
        status = response.status_code
        if response.is_redirect:
            # Not followed: the password would go wherever the redirect points.
            raise MinistryError(
                f"The server at {self._url} answered {status}, a redirect to "
                f"{response.headers.get('Location', '?')[:200]}: give that address as --url."
            )
        if status >= 400:
            raise MinistryError(
                f"The server at {self._url} answered {status}: {_message(response)}"
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise MinistryError(
                f"The server at {self._url} did not answer as Ministry's API does: is it the "
                "address of a Ministry server?"
            ) from exc

    def list_users(self) -> list[Document]:
        """Every user."""
        return list(self._call("GET", "users")["users"])

    def add_user(self, name: str, password: str, *, admin: bool) -> Document:
        """Create a user."""
        body = {"name": name, "password": password, "admin": admin}
        return dict(self._call("POST", "users", json=body))

    def update_user(
        self, name: str, *, password: str | None, admin: bool | None, disabled: bool | None
    ) -> Document:
        """Change what is not None."""
        given = {"password": password, "admin": admin, "disabled": disabled}
        body = {key: value for key, value in given.items() if value is not None}
        return dict(self._call("PATCH", _path("users", name), json=body))

    def remove_user(self, name: str) -> None:
        """Delete a user with their tokens and group memberships."""
        self._call("DELETE", _path("users", name))

    def list_tokens(self, user: str) -> list[Document]:
        """A user's tokens, without secrets."""
        return list(self._call("GET", _path("users", user, "tokens"))["tokens"])

    def create_token(
        self, user: str, *, description: str, expires: str | None, index: str | None,
        projects: Sequence[str],
    ) -> str:  # fmt: skip
        """A new token's secret."""
        body = {"description": description, "expires": expires, "index": index,
                "projects": list(projects)}  # fmt: skip
        return str(self._call("POST", _path("users", user, "tokens"), json=body)["token"])

    def revoke_token(self, user: str, token_id: str) -> None:
        """Revoke one of a user's tokens."""
        self._call("DELETE", _path("users", user, "tokens", token_id))

    def list_groups(self) -> list[Document]:
        """Every group and its members."""
        return list(self._call("GET", "groups")["groups"])

    def change_group(self, action: str, group: str, users: Sequence[str]) -> None:
        """``create``, ``delete``, ``add`` or ``remove``."""
        if action == "create":
            self._call("POST", "groups", json={"name": group})
        elif action == "delete":
            self._call("DELETE", _path("groups", group))
        else:
            self._call("PATCH", _path("groups", group), json={action: list(users)})

    def list_indexes(self) -> list[Document]:
        """Every index the credentials may see, by name."""
        indexes = self._call("GET", "indexes")["indexes"]
        return sorted(indexes, key=lambda document: str(document["name"]))

    def show_index(self, name: str) -> Document:
        """One index's settings."""
        return dict(self._call("GET", f"indexes/{_path(*name.split('/'))}"))

    def create_index(self, name: str, given: Mapping[str, Any]) -> Document:
        """Create an index with the settings given."""
        return dict(self._call("POST", "indexes", json={"name": name, **given}))

    def update_index(self, name: str, given: Mapping[str, Any]) -> Document:
        """Change the settings given."""
        path = f"indexes/{_path(*name.split('/'))}"
        return dict(self._call("PATCH", path, json=dict(given)))

    def delete_index(self, name: str, *, force: bool) -> None:
        """Delete an index."""
        path = f"indexes/{_path(*name.split('/'))}"
        self._call("DELETE", path, params={"force": "true" if force else "false"})

    def change_files(
        self, action: str, index: str, project: str, *, version: str | None,
        filename: str | None, reason: str,
    ) -> list[str]:  # fmt: skip
        """Yank, unyank or delete; the names of the files changed."""
        path = f"indexes/{_path(*index.split('/'))}/projects/{_path(project)}"
        if filename:
            path += f"/files/{_path(filename)}"
        elif version:
            path += f"/releases/{_path(version)}"
        if action == "delete":
            answer = self._call("DELETE", path)
        elif action == "yank":
            answer = self._call("POST", path + "/yank", json={"reason": reason})
        else:
            answer = self._call("DELETE", path + "/yank")
        return [str(file["filename"]) for file in answer["files"]]

    def log(self, *, since: int, limit: int, index: str | None) -> list[Document]:
        """The newest changes, newest first."""
        query: dict[str, Any] = {"since": since, "limit": limit, "order": "newest"}
        if index is not None:
            query["index"] = index
        return list(self._call("GET", "log", params=query)["changes"])

    def promote(self, source: str, project: str, version: str, target: str) -> list[Document]:
        """Promote a release: each file's ``filename``, ``sha256`` and ``created``."""
        path = (
            f"indexes/{_path(*source.split('/'))}/projects/{_path(project)}"
            f"/releases/{_path(version)}/promote"
        )
        return list(self._call("POST", path, json={"to": target})["files"])

    def add_publisher(self, index: str, project: str, given: Mapping[str, Any]) -> Document:
        """Add a trusted publisher; the first publish of a new project makes the caller
        its owner (``--owner`` is for the server's machine)."""
        if given["owner"] is not None:
            raise InvalidRequest(
                "--owner works only on the server's machine; through --url the first "
                "publish of a new project makes you its owner."
            )
        body = {
            given["provider"]: given["repository"],
            "workflow": given["workflow"],
            "environment": given["environment"],
            "issuer": given["issuer"],
        }
        path = f"indexes/{_path(*index.split('/'))}/projects/{_path(project)}/publishers"
        return dict(self._call("POST", path, json=body))

    def list_publishers(self, index: str, project: str | None) -> list[Document]:
        """The publishers of an index, or of one project."""
        if project:
            path = f"indexes/{_path(*index.split('/'))}/projects/{_path(project)}/publishers"
            return list(self._call("GET", path))
        return list(self._call("GET", "publishers", params={"index": index}))

    def remove_publisher(self, publisher_id: str) -> Document:
        """Stop a publisher; it as it was."""
        return dict(self._call("DELETE", _path("publishers", publisher_id)))

    def roles(self, index: str, project: str) -> Document:
        """A project's ``owners`` and ``maintainers``."""
        path = f"indexes/{_path(*index.split('/'))}/projects/{_path(project)}/roles"
        return dict(self._call("GET", path))

    def change_role(
        self, change: str, index: str, project: str, principal: str, role: RoleName
    ) -> Document:
        """``add`` (PUT) or ``remove`` (DELETE) a role; the roles after the change."""
        path = (
            f"indexes/{_path(*index.split('/'))}/projects/{_path(project)}/{role}s/"
            f"{_path(principal)}"
        )
        return dict(self._call("PUT" if change == "add" else "DELETE", path))
