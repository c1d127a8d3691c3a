"""``ministry publisher add|list|remove``: trusted publishers, as the local administrator."""

from __future__ import annotations

import argparse
from datetime import datetime

from ministry.cli.admin import Document, admin_for
from ministry.cli.output import print_json
from ministry.core.trusted_publishing import TrustedPublisher
from ministry.settings import Settings

__all__ = ["add", "remove", "show"]


def _line(document: Document) -> str:
    publisher = TrustedPublisher(
        publisher_id=document["id"],
        **{key: document[key] for key in ("index", "project", "provider", "repository",
                                          "workflow", "environment", "issuer", "owner",
                                          "added_by")},
        created=datetime.fromisoformat(document["created"]),
    )  # fmt: skip
    owner = f" (its first publish makes {publisher.owner} the owner)" if publisher.owner else ""
    return (
        f"{publisher.publisher_id}  {publisher.index}/{publisher.project}  "
        f"{publisher.description}  issuer {publisher.issuer}{owner}"
    )


def add(settings: Settings, arguments: argparse.Namespace) -> int:
    """Let a workflow publish a project."""
    given = {
        "provider": "github" if arguments.github else "gitlab",
        "repository": arguments.github or arguments.gitlab,
        "workflow": arguments.workflow,
        "environment": arguments.environment,
        "issuer": arguments.issuer,
        "owner": arguments.owner,
    }
    added = admin_for(settings, arguments).add_publisher(arguments.index, arguments.project, given)
    print(_line(added))
    return 0


def show(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print the publishers of an index, or of one project."""
    publishers = admin_for(settings, arguments).list_publishers(arguments.index, arguments.project)
    if arguments.json:
        print_json(publishers)
        return 0
    for publisher in publishers:
        print(_line(publisher))
    return 0


def remove(settings: Settings, arguments: argparse.Namespace) -> int:
    """Stop a publisher."""
    print("removed", _line(admin_for(settings, arguments).remove_publisher(arguments.publisher_id)))
    return 0
