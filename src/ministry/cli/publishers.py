"""``ministry publisher add|list|remove``: trusted publishers, as the local administrator."""

from __future__ import annotations

import argparse

from ministry.cli.output import print_json
from ministry.cli.runtime import local_admin, with_services
from ministry.core.documents import publisher_document
from ministry.core.trusted_publishing import Provider, TrustedPublisher, project_named
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["add", "remove", "show"]


def _line(publisher: TrustedPublisher) -> str:
    owner = f" (its first publish makes {publisher.owner} the owner)" if publisher.owner else ""
    return (
        f"{publisher.publisher_id}  {publisher.index}/{publisher.project}  "
        f"{publisher.description}  issuer {publisher.issuer}{owner}"
    )


def add(settings: Settings, arguments: argparse.Namespace) -> int:
    """Let a workflow publish a project."""

    async def work(services: Services) -> TrustedPublisher:
        provider: Provider = "github" if arguments.github else "gitlab"
        return await services.publishers.add(
            local_admin(),
            arguments.index,
            project_named(arguments.project),
            provider,
            arguments.github or arguments.gitlab,
            arguments.workflow,
            environment=arguments.environment,
            issuer=arguments.issuer,
            owner=arguments.owner,
        )

    print(_line(with_services(settings, work)))
    return 0


def show(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print the publishers of an index, or of one project."""

    async def work(services: Services) -> list[TrustedPublisher]:
        project = project_named(arguments.project) if arguments.project else None
        return await services.publishers.list(local_admin(), arguments.index, project)

    publishers = with_services(settings, work)
    if arguments.json:
        print_json([publisher_document(publisher) for publisher in publishers])
        return 0
    for publisher in publishers:
        print(_line(publisher))
    return 0


def remove(settings: Settings, arguments: argparse.Namespace) -> int:
    """Stop a publisher."""

    async def work(services: Services) -> TrustedPublisher:
        return await services.publishers.remove(local_admin(), arguments.publisher_id)

    print("removed", _line(with_services(settings, work)))
    return 0
