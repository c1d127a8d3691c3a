"""What both metadata backends decide alike about trusted publishers and their tokens.

When two publishers of a project are one, how long a minted token is kept, and
how their changes read in the audit log: the SQLite and Redis stores must agree
on each, or a store moved by ``ministry migrate`` would judge differently.
"""

from __future__ import annotations

from datetime import timedelta

from ministry.core.trusted_publishing import PublishToken, TrustedPublisher
from ministry.errors import Conflict

__all__ = [
    "KEPT_AFTER_EXPIRY",
    "burn_detail",
    "duplicate_of",
    "mint_detail",
    "publisher_detail",
]

#: How long a minted token is kept once it has expired (then forgotten: a run makes a
#: token every time it publishes, and an expired one opens nothing). The audit log
#: keeps its minting for good.
KEPT_AFTER_EXPIRY = timedelta(days=1)


def _workflow(publisher: TrustedPublisher) -> tuple[str, ...]:
    # ``claims_match`` compares repository, workflow and environment without regard to
    # case, so publishers that differ only in case accept the same tokens.
    return (
        publisher.index,
        publisher.project,
        publisher.provider,
        publisher.issuer,
        publisher.repository.lower(),
        publisher.workflow.lower(),
        (publisher.environment or "").lower(),
    )


def duplicate_of(publisher: TrustedPublisher, others: list[TrustedPublisher]) -> Conflict | None:
    """The refusal of a publisher that another of the project accepts the same tokens as."""
    for other in others:
        if _workflow(other) == _workflow(publisher):
            return Conflict(
                f"Project {publisher.project!r} of index {publisher.index!r} has a trusted "
                f"publisher for {other.description} already ({other.publisher_id})."
            )
    return None


def publisher_detail(publisher: TrustedPublisher) -> str:
    """The audit detail of adding or removing a publisher: its id and what it names."""
    return f"{publisher.publisher_id} {publisher.description}"


def mint_detail(token: PublishToken) -> str:
    """The audit detail of an exchange: who the token names, its id, and the run."""
    run = " ".join(f"{name}={value}" for name, value in token.claims)
    return f"{token.name} {token.token_id}" + (f" {run}" if run else "")


def burn_detail(token: PublishToken) -> str:
    """The audit detail of revoking a minted token."""
    return f"{token.name} {token.token_id}"
