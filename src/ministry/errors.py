"""The domain error tree.

Every error a client can see carries a message a person can act on. Nothing here
knows about HTTP: ``web/base.py`` maps each class to a status code in one table.
"""

from __future__ import annotations

__all__ = [
    "AttestationRejected",
    "AuthenticationFailed",
    "AuthenticationRequired",
    "Conflict",
    "FileExists",
    "Gone",
    "InvalidRequest",
    "InvalidUpload",
    "MinistryError",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RangeNotSatisfiable",
    "StorageError",
    "StorageFull",
    "StorageUnavailable",
    "TooManyAttempts",
    "UnsupportedMediaType",
    "UpstreamUnavailable",
]


class MinistryError(Exception):
    """Base of every error the server reports to a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(MinistryError):
    """The project, release, file or user does not exist (or is not visible to the caller)."""


class InvalidRequest(MinistryError):
    """The request itself is malformed: a bad header, a bad range, a bad argument."""


class InvalidUpload(InvalidRequest):
    """An upload was refused; ``field`` names the form field or part that is wrong, if one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AttestationRejected(InvalidUpload):
    """PEP 740 attestations that are malformed or do not prove what they must.

    ``reason`` names the check that failed, for logs and metrics: ``"shape"`` (not the
    JSON the protocol defines, or over a cap), ``"subject"`` (a statement about another
    file or other bytes), ``"publisher"`` (signed by another workflow than the trusted
    publisher) or ``"signature"`` (a signature, certificate or log entry that does not
    verify). The message names the file and what did not match.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message, field="attestations")
        self.reason = reason


class Conflict(MinistryError):
    """The change contradicts what is already stored."""


class FileExists(Conflict):
    """A filename (or its content) is already published with other bytes.

    Kept apart from other conflicts because upload clients recognise it by the
    words "File already exists" and skip the file (``--skip-existing``).
    """


class PayloadTooLarge(MinistryError):
    """An uploaded file is bigger than the configured limit."""


class AuthenticationRequired(MinistryError):
    """No credentials, or credentials that are not valid: the client should (re)authenticate."""


class AuthenticationFailed(AuthenticationRequired):
    """Credentials were sent but do not match a user or a live token."""


class TooManyAttempts(MinistryError):
    """Too many failed logins: refused, unchecked, for ``retry_after`` seconds
    (docs/security.md, "Credentials")."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermissionDenied(MinistryError):
    """The caller is known but may not do this."""


class UnsupportedMediaType(MinistryError):
    """A request body in a format the endpoint does not take (a form where JSON is due)."""


class NotAcceptable(MinistryError):
    """No representation matches the client's Accept header."""


class RangeNotSatisfiable(MinistryError):
    """A byte range lies outside the file; ``size`` is the file's length."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class Gone(MinistryError):
    """A feature that clients may still try but that no longer exists (pre-registration, docs)."""


class StorageError(MinistryError):
    """A store failed; the message is safe to show, the cause is logged."""


class StorageFull(StorageError):
    """The data volume has no space left."""


class StorageUnavailable(StorageError):
    """A store cannot take the request now (down, unreachable, read-only); a retry may succeed."""


class UpstreamUnavailable(MinistryError):
    """An upstream index failed (down, slow, broken answer) and nothing cached can stand in.

    ``unreachable`` tells a failure of the whole upstream (no connection, a timeout)
    from a bad answer about one project.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable
