"""Trusted publishers: which CI workflow may publish which project, without a secret.

A project's owners name a repository and workflow of a CI provider (GitHub Actions,
GitLab CI). A run of that workflow asks its provider for an OpenID Connect identity
token whose audience is this server, and exchanges it here for a short-lived token
that can upload to the publisher's project and do nothing else. The claims that
decide whether a token comes from the configured workflow are read here
(``claims_match``); the signature, issuer, audience and times are checked by the
service that verifies the token, before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from packaging.utils import InvalidName, NormalizedName, canonicalize_name

from ministry.errors import InvalidRequest

__all__ = [
    "DEFAULT_ISSUERS",
    "PROVIDERS",
    "Provider",
    "PublishToken",
    "TrustedPublisher",
    "checked_workflow",
    "claims_match",
    "pinned_ids",
    "project_named",
    "run_details",
]

Provider = Literal["github", "gitlab"]
PROVIDERS: tuple[Provider, ...] = ("github", "gitlab")

#: The issuers of the public services; ``--issuer`` names another (GitHub Enterprise
#: Server, a self-hosted GitLab).
DEFAULT_ISSUERS: Mapping[Provider, str] = {
    "github": "https://token.actions.githubusercontent.com",
    "gitlab": "https://gitlab.com",
}


@dataclass(frozen=True)
class TrustedPublisher:
    """One workflow allowed to publish one project of one index.

    The project need not exist yet ("pending"): the first trusted publish creates it,
    owned by ``owner`` (None: the index's admins).
    """

    publisher_id: str
    index: str
    project: NormalizedName
    provider: Provider
    #: ``OWNER/REPO`` on GitHub, ``NAMESPACE/PROJECT`` on GitLab, as configured.
    repository: str
    #: GitHub: the workflow's file name (``release.yml``); GitLab: the CI file's path.
    workflow: str
    environment: str | None
    issuer: str
    owner: str | None
    added_by: str
    created: datetime
    #: The ids the issuer gave the repository and its owner, recorded at the first
    #: exchange: a repository deleted and made again under the same name has new ids,
    #: and its tokens are refused.
    pinned: tuple[tuple[str, str], ...] = ()

    @property
    def description(self) -> str:
        """The publisher as people read it, in audit lines and listings."""
        where = f"{self.provider}:{self.repository} {self.workflow}"
        return where + (f" environment {self.environment}" if self.environment else "")


@dataclass(frozen=True)
class PublishToken:
    """An upload token minted for a run of trusted publishers' workflow.

    Only a hash of its secret is stored; it names the publishers whose projects it
    may upload, and expires minutes after it was made.
    """

    token_id: str
    secret_hash: str
    publishers: tuple[str, ...]
    #: How the audit log names what it uploads: ``github:OWNER/REPO``, a name no
    #: account can have.
    name: str
    created: datetime
    expires: datetime
    revoked: bool = False
    #: What the identity token said about the run (ref, run id, commit), for the audit.
    claims: tuple[tuple[str, str], ...] = ()


def _same(claimed: Any, configured: str) -> bool:
    # Repository and owner names are case-insensitive on both providers.
    return isinstance(claimed, str) and claimed.lower() == configured.lower()


def _github_mismatch(claims: Mapping[str, Any], publisher: TrustedPublisher) -> str | None:
    if not _same(claims.get("repository"), publisher.repository):
        return "repository"
    owner = publisher.repository.split("/", 1)[0]
    if not _same(claims.get("repository_owner"), owner):
        return "repository owner"
    # job_workflow_ref reads OWNER/REPO/.github/workflows/FILE@REF.
    workflow_ref = claims.get("job_workflow_ref")
    expected = f"{publisher.repository}/.github/workflows/{publisher.workflow}@".lower()
    if not isinstance(workflow_ref, str) or not workflow_ref.lower().startswith(expected):
        return "workflow"
    return None


def _gitlab_mismatch(claims: Mapping[str, Any], publisher: TrustedPublisher) -> str | None:
    if not _same(claims.get("project_path"), publisher.repository):
        return "project"
    namespace = publisher.repository.rsplit("/", 1)[0]
    if not _same(claims.get("namespace_path"), namespace):
        return "namespace"
    # ci_config_ref_uri reads gitlab.example/NAMESPACE/PROJECT//PATH@REF.
    config = claims.get("ci_config_ref_uri")
    expected = f"/{publisher.repository}//{publisher.workflow.lstrip('/')}@".lower()
    if not isinstance(config, str) or expected not in config.lower():
        return "workflow"
    return None


def claims_match(claims: Mapping[str, Any], publisher: TrustedPublisher) -> str | None:
    """None if a verified token's claims come from this publisher's workflow, else
    the first claim that differs, for the error message."""
    if claims.get("iss") != publisher.issuer:
        return "issuer"
    check = _github_mismatch if publisher.provider == "github" else _gitlab_mismatch
    mismatch = check(claims, publisher)
    if mismatch is not None:
        return mismatch
    if publisher.environment is not None and not _same(
        claims.get("environment"), publisher.environment
    ):
        return "environment"
    pinned = dict(publisher.pinned)
    for name, value in pinned_ids(claims, publisher.provider):
        if name in pinned and pinned[name] != value:
            return name.replace("_", " ")
    return None


_IDS: Mapping[Provider, tuple[str, ...]] = {
    "github": ("repository_id", "repository_owner_id"),
    "gitlab": ("project_id", "namespace_id"),
}


def pinned_ids(claims: Mapping[str, Any], provider: Provider) -> tuple[tuple[str, str], ...]:
    """The repository's and its owner's ids in these claims, to record or compare."""
    return tuple(
        (name, str(claims[name])) for name in _IDS[provider] if isinstance(claims.get(name), str)
    )


_RUN_CLAIMS = ("ref", "sha", "run_id", "run_attempt", "pipeline_id", "job_id", "workflow_ref")


def run_details(claims: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """What identifies the run in the audit log: its ref, commit and run (or pipeline)."""
    return tuple(
        (name, str(claims[name])) for name in _RUN_CLAIMS if isinstance(claims.get(name), str)
    )


_GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}\Z")
_GITLAB_PROJECT = re.compile(r"[A-Za-z0-9_.-]{1,255}(?:/[A-Za-z0-9_.-]{1,255}){1,20}\Z")
_GITHUB_WORKFLOW = re.compile(r"[A-Za-z0-9._-]{1,200}\.ya?ml\Z")
_GITLAB_WORKFLOW = re.compile(r"[A-Za-z0-9._/-]{1,500}\.ya?ml\Z")
_ENVIRONMENT = re.compile(r"[^\x00-\x1f\x7f]{1,255}\Z")


def checked_workflow(
    provider: Provider, repository: str, workflow: str, environment: str | None, issuer: str
) -> tuple[str, str, str | None, str]:
    """The publisher's repository, workflow, environment and issuer, as stored; raises
    ``InvalidRequest`` saying what to write instead."""
    if provider == "github":
        if not _GITHUB_REPOSITORY.match(repository):
            raise InvalidRequest(f"{repository!r} is not a GitHub repository: write OWNER/REPO.")
        if not _GITHUB_WORKFLOW.match(workflow):
            raise InvalidRequest(
                f"{workflow!r} is not a workflow: write the file name in .github/workflows, "
                "such as release.yml."
            )
    else:
        if not _GITLAB_PROJECT.match(repository) or ".." in repository:
            raise InvalidRequest(
                f"{repository!r} is not a GitLab project: write NAMESPACE/PROJECT."
            )
        if not _GITLAB_WORKFLOW.match(workflow) or ".." in workflow:
            raise InvalidRequest(
                f"{workflow!r} is not a CI file: write its path in the repository, such as "
                ".gitlab-ci.yml."
            )
    if environment is not None and not _ENVIRONMENT.match(environment):
        raise InvalidRequest(f"{environment!r} is not an environment name.")
    parts = urlsplit(issuer)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise InvalidRequest(f"{issuer!r} is not an issuer: write its https:// URL.")
    return repository, workflow.lstrip("/"), environment or None, issuer.rstrip("/")


def project_named(text: str) -> NormalizedName:
    """A publisher's project name, normalized; ``InvalidRequest`` if it is none."""
    try:
        return canonicalize_name(text, validate=True)
    except InvalidName:
        raise InvalidRequest(f"{text[:100]!r} is not a valid project name.") from None
