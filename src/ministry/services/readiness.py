"""Whether the stores can serve every request now: what ``/-/ready`` reports.

docs/security.md, "Stores that fail".

``/-/health`` says that the process runs; this says whether it can do its work:
both stores answer, and both take writes, so that a load balancer or an
orchestrator can tell a node whose storage failed from one that is merely busy.
A full disk is not seen here (nothing is full until a write needs the space):
uploads report it with 507. A store started despite a risk (``redis_durability
warn``) stays ready, and the risk is reported beside its state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field

from ministry.errors import StorageError
from ministry.storage.protocols import BlobStore, StoreLifecycle

__all__ = ["Readiness", "check_stores"]

log = logging.getLogger(__name__)

# A store that takes longer than this to answer a probe is as good as down.
_CHECK_SECONDS = 10.0
_OK = "ok"


@dataclass(frozen=True)
class Readiness:
    """Each store's state: ``"ok"``, or a message that says what fails."""

    stores: dict[str, str]
    #: What a store was started despite, by store (only those with a risk).
    risks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Whether every store is ok."""
        return all(state == _OK for state in self.stores.values())


async def check_stores(metadata: StoreLifecycle, blobs: BlobStore) -> Readiness:
    """Probe both stores at once."""
    results = await asyncio.gather(
        _probe("metadata", metadata.check()), _probe("blobs", blobs.check())
    )
    risks = {"metadata": " ".join(metadata.risks())} if metadata.risks() else {}
    return Readiness(dict(results), risks)


async def _probe(name: str, check: Awaitable[None]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(check, _CHECK_SECONDS)
    except StorageError as exc:
        cause = exc.__cause__
        log.warning(
            "the %s store is not ready: %s (cause: %s: %s)",
            name,
            exc.message,
            type(cause).__name__,
            cause,
        )
        return name, exc.message
    except TimeoutError:
        log.warning("the %s store did not answer within %.0f s", name, _CHECK_SECONDS)
        return name, f"The {name} store did not answer within {_CHECK_SECONDS:.0f} s."
    return name, _OK
