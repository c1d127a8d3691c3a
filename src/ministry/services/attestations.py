"""PEP 740 attestations: read them, check them against a file and a trusted publisher,
and build or check the provenance document the Integrity API serves.

Two sources bring attestations: the ``attestations`` field of an upload
(``twine upload --attestations`` sends a JSON array of attestation objects), and the
provenance document an upstream index serves for a proxied file. Both are checked the
same way: the shape (pypi-attestations' models), then each statement's subject against
the file (``ministry.core.attestations``), then the Sigstore signature and the
publisher's identity in its certificate.

Verification is offline: ``Attestation.verify(..., offline=True)`` uses the Sigstore
trust root that the installed ``sigstore`` package ships (copied once into sigstore's
per-user cache, which it then reads) and never contacts the TUF repository, Rekor or
Fulcio: PyPI's attestations carry their transparency log entry with its inclusion proof.
docs/security.md, "Attestations" says what this proves and how the trust root is renewed.

Every function here is synchronous and CPU-bound (some milliseconds per attestation):
call it in a worker thread. The Sigstore libraries take most of a second to import, so
they are imported on first use, never when the server or a command starts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ministry.core.attestations import (
    MAX_ATTESTATIONS,
    MAX_ATTESTATIONS_BYTES,
    MAX_PROVENANCE_BYTES,
    ProvenancePublisher,
    check_statement,
    publisher_from_provenance,
)
from ministry.errors import AttestationRejected

if TYPE_CHECKING:
    from pypi_attestations import Attestation, Distribution, GitHubPublisher, GitLabPublisher
    from sigstore.verify.policy import VerificationPolicy

__all__ = [
    "check_subjects",
    "parse_attestations",
    "provenance",
    "verify",
    "verify_provenance",
]

# sigstore copies its bundled trust root into its cache on first use with a plain write,
# which a second thread could read half-written: verifications take turns.
_VERIFYING = threading.Lock()
# Certificate extensions (Fulcio's OIDs) that say who signed, for messages.
_ISSUER = "1.3.6.1.4.1.57264.1.8"
_SOURCE_REPOSITORY_URI = "1.3.6.1.4.1.57264.1.12"
_BUILD_CONFIG_URI = "1.3.6.1.4.1.57264.1.18"


def parse_attestations(raw: str | bytes) -> list[Attestation]:
    """The attestations of an upload's ``attestations`` field: a JSON array of 1 to
    ``MAX_ATTESTATIONS`` PEP 740 attestation objects, at most ``MAX_ATTESTATIONS_BYTES``.

    Raises ``AttestationRejected`` (reason ``"shape"``) with a message saying what is wrong.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > MAX_ATTESTATIONS_BYTES:
        raise AttestationRejected(
            f"The attestations field is {len(data)} bytes; at most "
            f"{MAX_ATTESTATIONS_BYTES // 1024} KiB is accepted.",
            "shape",
        )
    value = _json(data, "The attestations field")
    if not isinstance(value, list):
        raise AttestationRejected(
            "The attestations field must be a JSON array of attestation objects.", "shape"
        )
    return _attestations(value, "The attestations field")


def check_subjects(attestations: Sequence[Attestation], filename: str, sha256: str) -> None:
    """Refuse unless every attestation's statement names ``filename`` with this sha256
    (and nothing else), of a predicate type the public index knows.

    Cheap and unverified: ``verify`` runs it before the signatures, which prove that the
    statement checked here is the one that was signed.
    """
    for position, attestation in enumerate(attestations, start=1):
        try:
            statement = attestation.statement
        except (UnicodeDecodeError, ValueError):
            raise AttestationRejected(
                f"Attestation {position} for {filename} holds a statement that is not JSON.",
                "shape",
            ) from None
        check_statement(statement, filename, sha256, position)


def verify(
    attestations: Sequence[Attestation],
    filename: str,
    sha256: str,
    publisher: ProvenancePublisher,
) -> None:
    """Refuse unless every attestation is a valid Sigstore signature, by ``publisher``'s
    repository and workflow, over a statement about ``filename`` with this sha256.

    ``sha256`` is the hex digest of the file's bytes (an upload's spool computes it).
    The repository and workflow are checked in the signing certificate; the environment
    is not in it (``ProvenancePublisher``), so a caller that requires one checks it where it
    is stated. Raises ``AttestationRejected`` whose ``reason`` is ``"subject"``,
    ``"publisher"`` or ``"signature"``, naming the file and what did not match.
    """
    from pypi_attestations import Distribution

    if not attestations:
        raise AttestationRejected(f"No attestation for {filename}.", "shape")
    check_subjects(attestations, filename, sha256)
    try:
        distribution = Distribution(name=filename, digest=sha256.lower())
    except ValueError:
        raise AttestationRejected(
            f"{filename} is not a distribution filename that attestations can name.", "subject"
        ) from None
    identity = _library_publisher(publisher)
    for position, attestation in enumerate(attestations, start=1):
        try:
            _verify_one(attestation, identity, distribution)
        except _Failed as failed:
            where = f"Attestation {position} for {filename}"
            raise _refusal(attestation, distribution, where, publisher, failed.cause) from None


def provenance(
    attestations: Sequence[Attestation], publisher: ProvenancePublisher
) -> dict[str, Any]:
    """The PEP 740 provenance object of a file whose ``attestations`` were verified
    against ``publisher``: what the Integrity API serves, shaped as the public index
    serves it."""
    return {
        "version": 1,
        "attestation_bundles": [
            {
                "publisher": publisher.provenance_object(),
                "attestations": [a.model_dump(mode="json") for a in attestations],
            }
        ],
    }


def verify_provenance(
    document: str | bytes,
    filename: str,
    sha256: str,
    publisher: ProvenancePublisher | None = None,
) -> list[ProvenancePublisher]:
    """Check a provenance document fetched from an upstream against the file it is for,
    and return the publishers it proves (for the UI: ``describe()`` of each).

    With ``publisher`` (the trusted publisher configured for the project), every bundle
    must name that publisher (and its environment, if it has one; the environment is the
    upstream's word, as the certificate does not carry it) and its attestations must be
    signed by its repository and workflow. Without one, each bundle's attestations must
    be signed by the publisher the bundle names: that proves who published the file,
    not that it was the right publisher. Raises ``AttestationRejected``.
    """
    from pydantic import ValidationError
    from pypi_attestations import Provenance

    data = document.encode() if isinstance(document, str) else document
    if len(data) > MAX_PROVENANCE_BYTES:
        raise AttestationRejected(
            f"The provenance of {filename} is {len(data)} bytes; at most "
            f"{MAX_PROVENANCE_BYTES // 1024} KiB is read.",
            "shape",
        )
    value = _json(data, f"The provenance of {filename}")
    try:
        parsed = Provenance.model_validate(value)
    except ValidationError as error:
        raise AttestationRejected(
            f"The provenance of {filename} is not a PEP 740 provenance object: "
            f"{_first_error(error)}.",
            "shape",
        ) from None
    bundles = parsed.attestation_bundles
    count = sum(len(bundle.attestations) for bundle in bundles)
    if not bundles or count == 0:
        raise AttestationRejected(f"The provenance of {filename} holds no attestation.", "shape")
    if count > MAX_ATTESTATIONS:
        raise AttestationRejected(
            f"The provenance of {filename} holds {count} attestations; at most "
            f"{MAX_ATTESTATIONS} are checked.",
            "shape",
        )
    proven = []
    for bundle in bundles:
        claimed = publisher_from_provenance(bundle.publisher.model_dump(mode="json"))
        if publisher is not None and not publisher.admits(claimed):
            raise AttestationRejected(
                f"The provenance of {filename} names the publisher {claimed.describe()}; "
                f"the trusted publisher is {publisher.describe()}.",
                "publisher",
            )
        verify(bundle.attestations, filename, sha256, publisher or claimed)
        proven.append(claimed)
    return proven


def _json(data: bytes, what: str) -> object:
    """Parsed JSON, or a refusal saying where the text stops being JSON."""
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise AttestationRejected(f"{what} is not UTF-8 text.", "shape") from None
    except json.JSONDecodeError as error:
        raise AttestationRejected(
            f"{what} is not JSON: {error.msg} at line {error.lineno}, column {error.colno}.",
            "shape",
        ) from None
    except RecursionError:
        raise AttestationRejected(f"{what} is nested too deeply.", "shape") from None


def _attestations(values: list[object], what: str) -> list[Attestation]:
    """Each value as an attestation object, between one and ``MAX_ATTESTATIONS`` of them."""
    from pydantic import ValidationError
    from pypi_attestations import Attestation

    if not values:
        raise AttestationRejected(f"{what} is an empty list: send at least one.", "shape")
    if len(values) > MAX_ATTESTATIONS:
        raise AttestationRejected(
            f"{what} holds {len(values)} attestations; at most {MAX_ATTESTATIONS} are accepted.",
            "shape",
        )
    parsed = []
    for position, value in enumerate(values, start=1):
        if not isinstance(value, dict):
            raise AttestationRejected(
                f"Attestation {position} of {what.lower()} is not a JSON object.", "shape"
            )
        if value.get("version") != 1 or isinstance(value.get("version"), bool):
            # pydantic would take ``true`` for 1, and serve it back as ``true``.
            raise AttestationRejected(
                f"Attestation {position} of {what.lower()} must have version 1.", "shape"
            )
        try:
            parsed.append(Attestation.model_validate(value))
        except ValidationError as error:
            raise AttestationRejected(
                f"Attestation {position} of {what.lower()} is not a PEP 740 attestation "
                f"object: {_first_error(error)}.",
                "shape",
            ) from None
    return parsed


def _first_error(error: Any) -> str:
    """Pydantic's first complaint, as ``where: what`` (the full list can be long)."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "the document"
    return f"{where}: {first['msg']}"


def _library_publisher(publisher: ProvenancePublisher) -> GitHubPublisher | GitLabPublisher:
    """pypi-attestations' form of the publisher: it turns it into a Sigstore policy."""
    from pypi_attestations import GitHubPublisher, GitLabPublisher

    if publisher.kind == "GitHub":
        return GitHubPublisher(
            repository=publisher.repository,
            workflow=publisher.workflow,
            environment=publisher.environment,
        )
    return GitLabPublisher(
        repository=publisher.repository,
        workflow_filepath=publisher.workflow,
        environment=publisher.environment,
    )


class _Failed(Exception):
    """An attestation did not verify; ``cause`` says why, in the libraries' words."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _verify_one(
    attestation: Attestation,
    identity: GitHubPublisher | GitLabPublisher | VerificationPolicy,
    distribution: Distribution,
) -> None:
    """``Attestation.verify`` offline, every failure of the attestation as ``_Failed``.

    Hostile bytes make the libraries raise more than their own error types (cryptography's
    certificate parsing errors, for one), and each is a refusal, never a 500. ``OSError``
    is the exception: it is this server's (sigstore's cache on disk), so it propagates.
    """
    try:
        with _VERIFYING:
            attestation.verify(identity, distribution, offline=True)
    except OSError:
        raise
    except Exception as error:
        raise _Failed(error) from error


def _refusal(
    attestation: Attestation,
    distribution: Distribution,
    where: str,
    publisher: ProvenancePublisher,
    error: Exception,
) -> AttestationRejected:
    """The refusal for a failed verification: ``"publisher"`` when the signature holds but
    its certificate names another workflow than the trusted publisher's, else
    ``"signature"``. The second verification (against the certificate's own issuer, so
    that only the identity is left out) runs on failures only, and makes sure a message
    never names a signer that a forged certificate made up."""
    from sigstore.verify.policy import OIDCIssuerV2

    claims = _claims(attestation)
    signer = claims.get(_BUILD_CONFIG_URI) or claims.get(_SOURCE_REPOSITORY_URI)
    issuer = claims.get(_ISSUER)
    if signer and issuer and not signer.startswith(_build_config_prefix(publisher)):
        try:
            _verify_one(attestation, OIDCIssuerV2(issuer), distribution)
        except _Failed:
            pass
        else:
            return AttestationRejected(
                f"{where} was signed by {signer}, not by the trusted publisher "
                f"{publisher.describe()}.",
                "publisher",
            )
    return AttestationRejected(f"{where} does not verify: {error}", "signature")


def _claims(attestation: Attestation) -> dict[str, str]:
    """The signing certificate's Fulcio claims, unverified; empty if it cannot be read."""
    try:
        return attestation.certificate_claims
    except Exception:  # any flaw of a certificate that failed anyway: no claims to show
        return {}


def _build_config_prefix(publisher: ProvenancePublisher) -> str:
    """How a certificate's build config URI begins for this publisher's workflow."""
    if publisher.kind == "GitHub":
        return f"https://github.com/{publisher.repository}/.github/workflows/{publisher.workflow}@"
    return f"https://gitlab.com/{publisher.repository}//{publisher.workflow}@"
