"""What a failed operation on the local disk means to a client: full, unavailable, or broken.

The blob directory and the upload spool both live on local disks and report
their failures through this one table, so that a full disk is a 507 and a
read-only one a 503 wherever it is met. The messages name no path: the cause,
with its path, is chained for the server log.
"""

from __future__ import annotations

import errno

from ministry.errors import StorageError, StorageFull, StorageUnavailable

__all__ = ["disk_error"]

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def disk_error(exc: OSError) -> StorageError:
    """The domain error for a failed disk operation (raise it ``from exc``)."""
    if exc.errno in _FULL:
        return StorageFull(
            "No space left on the server's storage; nothing was written. "
            "Ask the server's administrator to free space."
        )
    if exc.errno in _NOT_WRITABLE:
        reason = "read-only" if exc.errno == errno.EROFS else "not writable by the server"
        return StorageUnavailable(
            f"The server's storage is {reason}; nothing was written. "
            "Ask the server's administrator to check the data volume."
        )
    if exc.errno == errno.EIO:
        return StorageUnavailable("The server's storage failed (an I/O error); try again later.")
    return StorageError(
        f"The server's storage failed ({errno.errorcode.get(exc.errno or 0, 'error')})."
    )
