"""``/-/admin/indexes/new`` and ``/-/admin/indexes/<name>/``: create, change and delete
an index in the browser.

The form's fields are the settings ``ministry index create/update`` and
``/-/api/indexes`` take, read by the same ``core.index_settings`` (lists written
with commas, durations like ``5m`` or seconds) and checked by the same service
methods: a form is only another way of writing the API's request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ministry.core.index_settings import index_settings, new_index, settings_document
from ministry.core.models import IndexConfig
from ministry.core.permissions import Identity, check_admin, check_manage_index, seen_by
from ministry.core.sizes import exact_size
from ministry.core.upstream_entries import format_upstream, keeping_secrets
from ministry.errors import Conflict, InvalidRequest, PermissionDenied
from ministry.web.admin import AdminPage, server_admin
from ministry.web.base import status_of

__all__ = ["EditIndexHandler", "NewIndexHandler"]

_LISTS = ("readers", "uploaders", "admins")
_FLAGS = ("private", "allow_delete", "allow_overwrite")
#: Settings of hosted indexes only, and of proxy indexes only.
_HOSTED = ("bases", "routes", "allow_inherit")
_PROXY = ("upstream", "page_ttl", "min_age", "min_age_exempt", "max_cache_size")
#: Settings a new index takes only when given: empty means the default.
_OPTIONAL = frozenset({"upstream", "page_ttl", "min_age", "max_cache_size"})
#: Refusals shown in the form; anything else is an error page.
_SHOWN = (InvalidRequest, Conflict, PermissionDenied)


def shown_values(config: IndexConfig) -> dict[str, Any]:
    """An index's settings as the form shows them: lists joined by commas, the upstreams
    one a line with their passwords masked (as the API shows them)."""
    document = settings_document(config)
    values: dict[str, Any] = {
        name: ", ".join(document[name])
        for name in (*_LISTS, "bases", "allow_inherit", "min_age_exempt")
    }
    values["routes"] = ", ".join(f"{r['pattern']}={r['base']}" for r in document["routes"])
    values.update({name: document[name] for name in _FLAGS})
    values.update(
        description=document["description"],
        # One entry a line, passwords masked (as the API shows them).
        upstream="\n".join(format_upstream(u) for u in config.upstreams),
        page_ttl=str(document["page_ttl"]),
        min_age=str(document["min_age"]),
        max_cache_size=(
            "" if document["max_cache_size"] is None else exact_size(document["max_cache_size"])
        ),
    )
    return values


class _IndexForm(AdminPage):
    """Reads the posted settings as plain values, for ``core.index_settings``."""

    def posted(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The named settings as posted: text, and ticked boxes as true or false."""
        values: dict[str, Any] = {}
        for name in names:
            if name in _FLAGS:
                values[name] = self.get_body_argument(name, None) is not None
            else:
                values[name] = self.get_body_argument(name, "").strip()
        return values

    def render_form(
        self, config: IndexConfig | None, values: Mapping[str, Any], **namespace: Any
    ) -> None:
        """The form page, for a new index (``config`` None) or an existing one."""
        namespace.setdefault("done", self.done_message())
        namespace.setdefault("error", None)
        namespace.setdefault("delete_error", None)
        self.render("admin_index.html", config=config, values=values, **namespace)


class NewIndexHandler(_IndexForm):
    """``/-/admin/indexes/new``: the form that creates an index (server administrators)."""

    async def get(self) -> None:
        """The empty form, with the defaults a new index has."""
        identity = await self.identity_or_login()
        if identity is None:
            return
        check_admin(identity, "create indexes")
        defaults = shown_values(IndexConfig(name=""))
        self.render_form(None, {**defaults, "name": ""}, server_admin=True)

    async def post(self) -> None:
        """Create the index, then show its settings; the form again when refused."""
        identity = await self.require_identity()
        check_admin(identity, "create indexes")
        fields = ("description", *_HOSTED, *_LISTS, *_FLAGS, *_PROXY)
        values = self.posted(fields)
        name = self.get_body_argument("name", "").strip()
        settings = {k: v for k, v in values.items() if v != "" or k not in _OPTIONAL}
        try:
            created = await self.services.indexes.create(identity, new_index(name, settings))
        except _SHOWN as exc:
            self.refuse(
                "admin_index.html",
                exc,
                config=None,
                values={**values, "name": name},
                delete_error=None,
                server_admin=True,
            )
            return
        self.done(f"/-/admin/indexes/{created.name}/", "index-created")


class EditIndexHandler(_IndexForm):
    """``/-/admin/indexes/<name>/``: an index's settings form (its admins and server
    administrators; the upstream the latter only) and its delete form (server
    administrators)."""

    async def get(self, index: str) -> None:
        """The form, filled with the settings as this user may see them."""
        identity = await self.identity_or_login()
        if identity is None:
            return
        current = await self._managed(identity, index)
        configs = await self.services.indexes.configs()
        self.render_form(
            current,
            shown_values(seen_by(identity, current, configs)),
            server_admin=server_admin(identity),
        )

    async def post(self, index: str) -> None:
        """Save the settings, or delete the index, by the button pressed."""
        identity = await self.require_identity()
        current = await self._managed(identity, index)
        if self.get_body_argument("action", "save") == "delete":
            await self._delete(identity, current)
            return
        kind_fields = _HOSTED if current.kind == "hosted" else _PROXY
        values = self.posted(("description", *kind_fields, *_LISTS, *_FLAGS))
        try:
            changes = index_settings(values)
            if "upstreams" in changes:
                # Shown masked and sent back so: the passwords stay.
                changes["upstreams"] = keeping_secrets(changes["upstreams"], current.upstreams)
            await self.services.indexes.update(identity, index, changes)
        except _SHOWN as exc:
            self.refuse(
                "admin_index.html",
                exc,
                config=current,
                values=values,
                delete_error=None,
                server_admin=server_admin(identity),
            )
            return
        self.done(f"/-/admin/indexes/{index}/", "index-saved")

    async def _delete(self, identity: Identity, current: IndexConfig) -> None:
        indexes = self.services.indexes
        try:
            if self.get_body_argument("confirm", "") != "yes":
                raise InvalidRequest("Tick the box to confirm: deleting cannot be undone.")
            force = self.get_body_argument("force", "") == "yes"
            await indexes.delete(identity, current.name, force=force)
        except _SHOWN as exc:
            configs = await indexes.configs()
            self.set_status(status_of(exc))
            self.render_form(
                current,
                shown_values(seen_by(identity, current, configs)),
                done=None,
                delete_error=exc.message,
                server_admin=server_admin(identity),
            )
            return
        self.done("/-/admin/", "index-deleted")

    async def _managed(self, identity: Identity, index: str) -> IndexConfig:
        """The index, if this user may change it: 404 (or 401) if they may not read it,
        403 if they may only read it."""
        current = await self.services.indexes.readable(index, identity)
        check_manage_index(identity, current)
        return current
