"""Trusted publishers and the statements they sign (PEP 740): the rules that need no cryptography.

A trusted publisher is a CI workflow (GitHub Actions, GitLab CI/CD) that may publish a
project. An attestation is that workflow's Sigstore signature over an in-toto statement
that names one distribution file by its filename and sha256. What is here is pure: the
publisher's identity and how the public index spells it in a provenance object, the caps
on what a client or an upstream may send, and the checks of a statement's subject.
The signatures are checked by ``ministry.services.attestations``, the only module that
imports the Sigstore libraries (docs/security.md, "Attestations").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ministry.core.trusted_publishing import DEFAULT_ISSUERS, TrustedPublisher
from ministry.errors import AttestationRejected, InvalidRequest

__all__ = [
    "GITHUB_ISSUER",
    "GITLAB_ISSUER",
    "MAX_ATTESTATIONS",
    "MAX_ATTESTATIONS_BYTES",
    "MAX_PROVENANCE_BYTES",
    "PREDICATE_TYPES",
    "ProvenancePublisher",
    "check_statement",
    "describe_provenance",
    "provenance_publisher",
    "publisher_from_provenance",
]

#: At most this many attestations for one file: the public index knows two kinds
#: (publish, SLSA provenance), so more is a mistake or an attack on verification time.
MAX_ATTESTATIONS = 16
#: The ``attestations`` upload field: one attestation is about 10 KiB.
MAX_ATTESTATIONS_BYTES = 256 * 1024
#: A provenance document fetched from an upstream: its bundles of attestations.
MAX_PROVENANCE_BYTES = 1024 * 1024
#: The predicate types the public index accepts; a statement of another type proves
#: nothing anyone here knows how to read.
PREDICATE_TYPES = frozenset(
    {"https://docs.pypi.org/attestations/publish/v1", "https://slsa.dev/provenance/v1"}
)
#: The OIDC issuers of the supported publishers: pypi-attestations' policies accept
#: these only (github.com and gitlab.com, not self-hosted instances).
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"

_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
# GitHub: OWNER/REPO. GitLab: NAMESPACE[/SUBGROUP…]/PROJECT.
_GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}\Z")
_GITLAB_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}\Z")
# A workflow file under .github/workflows/ (a name, no directory), or a GitLab CI file
# (a path inside the repository).
_WORKFLOW_FILE = re.compile(r"[A-Za-z0-9._-]+\.ya?ml\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Kind = Literal["GitHub", "GitLab"]


@dataclass(frozen=True, slots=True)
class ProvenancePublisher:
    """A CI workflow allowed to publish: on GitHub, ``repository`` is ``OWNER/REPO`` and
    ``workflow`` the file name under ``.github/workflows/``; on GitLab, ``repository`` is
    ``NAMESPACE/PROJECT`` (with subgroups) and ``workflow`` the CI file's path in it.

    Names are compared exactly as the forge spells them, case included: the Sigstore
    certificate carries the canonical spelling and the signature check compares strings.
    ``environment`` (a GitHub environment, a GitLab deployment environment) is optional;
    when set, only publications from that environment count. The Sigstore certificate
    does not carry the environment, so it is checked where it is stated: the OIDC token
    of an upload, or the publisher object of a provenance document.
    """

    kind: Kind
    repository: str
    workflow: str
    environment: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "GitHub":
            if not _GITHUB_REPOSITORY.match(self.repository):
                raise InvalidRequest(
                    f"GitHub repository {self.repository!r} is not OWNER/REPO "
                    "(letters, digits, '-', and '.', '_' in the repository name)."
                )
            if not _WORKFLOW_FILE.match(self.workflow):
                raise InvalidRequest(
                    f"GitHub workflow {self.workflow!r} is not a file name ending in .yml "
                    "or .yaml (the file under .github/workflows/, without the directory)."
                )
        elif self.kind == "GitLab":
            segments = self.repository.split("/")
            if len(segments) < 2 or not all(_GITLAB_SEGMENT.match(s) for s in segments):
                raise InvalidRequest(
                    f"GitLab project {self.repository!r} is not NAMESPACE/PROJECT "
                    "(subgroups between them are allowed)."
                )
            parts = self.workflow.split("/")
            if not _WORKFLOW_FILE.match(parts[-1]) or any(
                part in ("", ".", "..") for part in parts
            ):
                raise InvalidRequest(
                    f"GitLab CI file {self.workflow!r} is not a relative path ending in "
                    ".yml or .yaml (such as .gitlab-ci.yml)."
                )
        else:
            raise InvalidRequest(f"Publisher kind {self.kind!r} is not GitHub or GitLab.")
        if self.environment is not None and (
            not self.environment.strip()
            or len(self.environment) > 255
            or _CONTROL.search(self.environment)
        ):
            raise InvalidRequest(
                f"Environment {self.environment!r} must be a name of 1 to 255 characters "
                "without control characters."
            )

    @property
    def issuer(self) -> str:
        """The OIDC issuer whose tokens this publisher's certificates come from."""
        return GITHUB_ISSUER if self.kind == "GitHub" else GITLAB_ISSUER

    def describe(self) -> str:
        """The publisher for people: ``github.com/OWNER/REPO, workflow release.yml``."""
        host = "github.com" if self.kind == "GitHub" else "gitlab.com"
        text = f"{host}/{self.repository}, workflow {self.workflow}"
        if self.environment:
            text += f", environment {self.environment}"
        return text

    def provenance_object(self) -> dict[str, str | None]:
        """The publisher object of a PEP 740 provenance, keyed as the public index serves
        it (GitLab's workflow is ``workflow_filepath`` there)."""
        workflow_key = "workflow" if self.kind == "GitHub" else "workflow_filepath"
        return {
            "kind": self.kind,
            "repository": self.repository,
            workflow_key: self.workflow,
            "environment": self.environment,
        }

    def admits(self, claimed: ProvenancePublisher) -> bool:
        """Whether a publisher that a provenance document names is this one: the same
        forge, repository and workflow, and this environment if one is set (GitHub
        environment names do not depend on case)."""
        if (claimed.kind, claimed.repository, claimed.workflow) != (
            self.kind,
            self.repository,
            self.workflow,
        ):
            return False
        if self.environment is None:
            return True
        return (claimed.environment or "").casefold() == self.environment.casefold()


def provenance_publisher(
    trusted: TrustedPublisher, *, environment_checked: bool
) -> ProvenancePublisher:
    """The signer that attestations must come from for a trusted publisher of a project.

    ``environment_checked``: the upload's minted token came from this publisher, whose
    environment (if it names one) the token's claims proved. Otherwise (an upload with
    an API token, checked against a publisher the project has configured) the environment
    is left out: the signing certificate does not carry it, so nothing proved it.
    Raises ``AttestationRejected`` for a publisher on another issuer than github.com's or
    gitlab.com's (GitHub Enterprise Server, a self-hosted GitLab): pypi-attestations
    verifies those two only.
    """
    if trusted.issuer != DEFAULT_ISSUERS[trusted.provider]:
        raise AttestationRejected(
            f"Attestations are verified for publishers on github.com and gitlab.com only; "
            f"the trusted publisher {trusted.description} is on {trusted.issuer}.",
            "publisher",
        )
    try:
        return ProvenancePublisher(
            "GitHub" if trusted.provider == "github" else "GitLab",
            trusted.repository,
            trusted.workflow,
            trusted.environment if environment_checked else None,
        )
    except InvalidRequest as error:
        raise AttestationRejected(
            f"The trusted publisher {trusted.description} cannot sign attestations: "
            f"{error.message}",
            "publisher",
        ) from None


def publisher_from_provenance(value: object) -> ProvenancePublisher:
    """The publisher a provenance document's bundle names, as the public index spells it.

    Raises ``AttestationRejected`` for another kind of publisher (Google, CircleCI: not
    supported here) or a malformed object.
    """
    if not isinstance(value, Mapping):
        raise AttestationRejected("The provenance's publisher is not an object.", "shape")
    kind = value.get("kind")
    workflow_key = {"GitHub": "workflow", "GitLab": "workflow_filepath"}.get(str(kind))
    if workflow_key is None:
        raise AttestationRejected(
            f"The provenance names a publisher of kind {kind!r}; only GitHub and GitLab "
            "publishers are supported.",
            "publisher",
        )
    repository, workflow = value.get("repository"), value.get(workflow_key)
    environment = value.get("environment")
    if not isinstance(repository, str) or not isinstance(workflow, str):
        raise AttestationRejected(
            f"The provenance's {kind} publisher lacks repository or {workflow_key}.", "shape"
        )
    if environment is not None and not isinstance(environment, str):
        raise AttestationRejected("The provenance's publisher environment is not text.", "shape")
    try:
        return ProvenancePublisher(
            "GitHub" if kind == "GitHub" else "GitLab",
            repository,
            workflow,
            environment or None,
        )
    except InvalidRequest as error:
        raise AttestationRejected(f"The provenance's publisher: {error.message}", "shape") from None


def check_statement(statement: object, filename: str, sha256: str, position: int) -> None:
    """Refuse an in-toto statement unless it is about exactly this file: one subject
    named ``filename`` whose sha256 is ``sha256``, of a predicate type the public index
    knows. ``position`` (from 1) says which attestation of the upload it is.

    The statement need not be verified yet: this is the cheap check that runs first, and
    the signature check then proves these are the bytes that were signed.
    """
    where = f"Attestation {position} for {filename}"
    if not isinstance(statement, Mapping) or statement.get("_type") != _STATEMENT_TYPE:
        raise AttestationRejected(f"{where} does not hold an in-toto v1 statement.", "shape")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise AttestationRejected(
            f"{where} must name exactly one subject, the file itself.", "subject"
        )
    subject = subjects[0]
    name = subject.get("name") if isinstance(subject, Mapping) else None
    digest = subject.get("digest") if isinstance(subject, Mapping) else None
    if name != filename:
        raise AttestationRejected(f"{where} is about another file: {name!r}.", "subject")
    signed = digest.get("sha256") if isinstance(digest, Mapping) else None
    if not isinstance(signed, str) or not _SHA256.match(signed):
        raise AttestationRejected(f"{where} carries no sha256 of the file.", "subject")
    if signed != sha256.lower():
        raise AttestationRejected(
            f"{where} is about other bytes: its sha256 is {signed}, the file's is "
            f"{sha256.lower()}.",
            "subject",
        )
    predicate_type = statement.get("predicateType")
    if predicate_type not in PREDICATE_TYPES:
        raise AttestationRejected(
            f"{where} has predicate type {predicate_type!r}; known are "
            f"{', '.join(sorted(PREDICATE_TYPES))}.",
            "subject",
        )


def describe_provenance(document: bytes) -> str | None:
    """Who a stored provenance document says published the file, for people
    (``github.com/OWNER/REPO, workflow release.yml``); None if it names nobody readable.

    Only documents verified before they were stored are read here, so the publisher
    objects are not checked again.
    """
    try:
        value = json.loads(document)
        bundles = value["attestation_bundles"]
        described = [publisher_from_provenance(b["publisher"]).describe() for b in bundles]
    except (ValueError, TypeError, KeyError, AttestationRejected):
        return None
    return "; ".join(dict.fromkeys(described)) or None
