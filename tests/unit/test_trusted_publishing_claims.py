"""Which identity-token claims make a run one of a trusted publisher's workflow."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from packaging.utils import NormalizedName

from ministry.core.trusted_publishing import (
    DEFAULT_ISSUERS,
    TrustedPublisher,
    checked_workflow,
    claims_match,
    pinned_ids,
)
from ministry.errors import InvalidRequest
from support.oidc import Issuer

GITHUB = TrustedPublisher(
    publisher_id="a1b2c3d4e5f6",
    index="main",
    project=NormalizedName("widgets"),
    provider="github",
    repository="Acme/Widgets",
    workflow="release.yml",
    environment=None,
    issuer=DEFAULT_ISSUERS["github"],
    owner=None,
    added_by="alice",
    created=datetime(2026, 12, 7, tzinfo=UTC),
)
GITLAB = replace(
    GITHUB,
    provider="gitlab",
    repository="group/sub/widgets",
    workflow=".gitlab-ci.yml",
    issuer="https://gitlab.example",
)


def test_a_github_run_of_the_workflow_matches_whatever_the_case() -> None:
    claims = Issuer().github_claims("acme/widgets", "release.yml", "aud")
    assert claims_match(claims, GITHUB) is None


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"repository": "acme/gadgets"}, "repository"),
        ({"repository_owner": "evil"}, "repository owner"),
        ({"job_workflow_ref": "acme/widgets/.github/workflows/other.yml@refs/heads/main"},
         "workflow"),
        ({"job_workflow_ref": "evil/fork/.github/workflows/release.yml@x"}, "workflow"),
        ({"iss": "https://issuer.example"}, "issuer"),
    ],
)  # fmt: skip
def test_each_github_claim_that_differs_is_named(change: dict[str, str], what: str) -> None:
    claims = Issuer().github_claims("acme/widgets", "release.yml", "aud") | change
    assert claims_match(claims, GITHUB) == what


def test_an_environment_is_required_when_configured() -> None:
    publisher = replace(GITHUB, environment="pypi")
    issuer = Issuer()
    assert claims_match(issuer.github_claims("acme/widgets", "release.yml", "a"), publisher) == (
        "environment"
    )
    matching = issuer.github_claims("acme/widgets", "release.yml", "a", environment="PyPI")
    assert claims_match(matching, publisher) is None


def test_a_repository_made_again_under_the_same_name_is_refused() -> None:
    claims = Issuer().github_claims("acme/widgets", "release.yml", "aud")
    ids = pinned_ids(claims, "github")
    assert ids == (("repository_id", "4242"), ("repository_owner_id", "1717"))
    pinned = replace(GITHUB, pinned=ids)
    assert claims_match(claims, pinned) is None
    assert claims_match(claims | {"repository_id": "9999"}, pinned) == "repository id"
    assert claims_match(claims | {"repository_owner_id": "1"}, pinned) == "repository owner id"


def test_a_gitlab_job_of_the_ci_file_matches() -> None:
    issuer = Issuer(url="https://gitlab.example")
    claims = issuer.gitlab_claims("group/sub/widgets", ".gitlab-ci.yml", "aud")
    assert claims_match(claims, GITLAB) is None
    assert claims_match(claims | {"project_path": "group/sub/other"}, GITLAB) == "project"
    assert claims_match(claims | {"namespace_path": "group"}, GITLAB) == "namespace"
    other_file = issuer.gitlab_claims("group/sub/widgets", "ci/other.yml", "aud")
    assert claims_match(other_file, GITLAB) == "workflow"
    assert pinned_ids(claims, "gitlab") == (("project_id", "31"), ("namespace_id", "7"))


@pytest.mark.parametrize(
    ("provider", "repository", "workflow", "environment", "issuer", "words"),
    [
        ("github", "acme", "release.yml", None, DEFAULT_ISSUERS["github"], "OWNER/REPO"),
        ("github", "acme/x", "ci/release.yml", None, DEFAULT_ISSUERS["github"], "file name"),
        ("github", "acme/x", "release.sh", None, DEFAULT_ISSUERS["github"], "file name"),
        ("gitlab", "widgets", ".gitlab-ci.yml", None, "https://gitlab.example", "NAMESPACE"),
        ("gitlab", "a/b", "../x.yml", None, "https://gitlab.example", "CI file"),
        ("github", "acme/x", "release.yml", "bad\nname", DEFAULT_ISSUERS["github"], "environment"),
        ("github", "acme/x", "release.yml", None, "http://issuer.example", "https://"),
    ],
)  # fmt: skip
def test_bad_publishers_are_refused_with_what_to_write(
    provider: str, repository: str, workflow: str, environment: str | None, issuer: str,
    words: str,
) -> None:  # fmt: skip
    with pytest.raises(InvalidRequest, match=words):
        checked_workflow(provider, repository, workflow, environment, issuer)  # type: ignore[arg-type]
