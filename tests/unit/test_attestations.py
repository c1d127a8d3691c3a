"""PEP 740 attestations: parsing, subject checks and offline Sigstore verification
(ministry.core.attestations, ministry.services.attestations; docs/security.md,
"Attestations").

The fixtures are real: a distribution from the public index with the provenance the index
served for it, and a GitLab-signed distribution with its attestation
(tests/fixtures/attestations/README.md says where each came from). Every test runs with
the network forbidden: an audit hook fails any connection or name lookup made while a
test runs, so a verification that needed the network would fail here.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ministry.core.attestations import (
    MAX_ATTESTATIONS_BYTES,
    ProvenancePublisher,
    check_statement,
)
from ministry.errors import AttestationRejected, InvalidRequest
from ministry.services.attestations import (
    check_subjects,
    parse_attestations,
    provenance,
    verify,
    verify_provenance,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "attestations"
SDIST = "pypi_attestations-0.0.19.tar.gz"
SDIST_SHA256 = hashlib.sha256((FIXTURES / SDIST).read_bytes()).hexdigest()
PROVENANCE = (FIXTURES / f"{SDIST}.provenance.json").read_text()
PUBLISHER = ProvenancePublisher("GitHub", "trailofbits/pypi-attestations", "release.yml")
SIGNER = "https://github.com/trailofbits/pypi-attestations/.github/workflows/release.yml@refs/tags/v0.0.19"
GITLAB_SDIST = "gitlab_oidc_project-0.0.3.tar.gz"
GITLAB_SHA256 = hashlib.sha256((FIXTURES / GITLAB_SDIST).read_bytes()).hexdigest()
GITLAB_ATTESTATION = (FIXTURES / f"{GITLAB_SDIST}.publish.attestation").read_text()
GITLAB_PUBLISHER = ProvenancePublisher("GitLab", "facutuesca/gitlab-oidc-project", ".gitlab-ci.yml")

# Connections and name lookups seen while a test runs (the audit hook below records them).
_network: list[str] | None = None


def _refuse_network(event: str, arguments: tuple[object, ...]) -> None:
    if _network is not None and event in ("socket.connect", "socket.getaddrinfo"):
        _network.append(f"{event} {arguments!r}"[:200])
        raise OSError(f"this test may not reach the network ({event})")


sys.addaudithook(_refuse_network)


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """No network, and a sigstore cache of the test's own: the trust root verification
    uses is then the one the installed sigstore package ships, not one a developer's
    earlier run left in their home."""
    global _network
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    _network = attempts = []
    try:
        yield attempts
    finally:
        _network = None
    assert attempts == [], "verification tried to reach the network"


def _recorded_attestations() -> list[dict[str, Any]]:
    """The attestation objects of the recorded provenance, as JSON values to tamper with."""
    attestations: list[dict[str, Any]] = json.loads(PROVENANCE)["attestation_bundles"][0][
        "attestations"
    ]
    return attestations


def _flip(text: str, position: int) -> str:
    """Base64 ``text`` with one bit of its decoded byte at ``position`` flipped."""
    data = bytearray(base64.b64decode(text))
    data[position] ^= 0x01
    return base64.b64encode(bytes(data)).decode()


def _verify_raw(attestations: list[dict[str, Any]], sha256: str = SDIST_SHA256) -> None:
    verify(parse_attestations(json.dumps(attestations)), SDIST, sha256, PUBLISHER)


# The fixtures


def test_the_fixtures_are_the_files_their_readme_describes() -> None:
    """Each fixture's sha256 is written in the README, which says where it came from."""
    readme = (FIXTURES / "README.md").read_text()
    files = sorted(p for p in FIXTURES.iterdir() if p.name != "README.md")
    assert len(files) == 4
    for path in files:
        assert path.name in readme
        assert hashlib.sha256(path.read_bytes()).hexdigest() in readme, path.name


# What verifies


def test_the_recorded_provenance_verifies_offline_against_its_publisher() -> None:
    proven = verify_provenance(PROVENANCE, SDIST, SDIST_SHA256, PUBLISHER)
    assert proven == [PUBLISHER]
    assert proven[0].describe() == "github.com/trailofbits/pypi-attestations, workflow release.yml"


def test_without_a_configured_publisher_the_provenance_tells_who_published() -> None:
    """The bundle's own publisher is verified against the signature, then shown."""
    [publisher] = verify_provenance(PROVENANCE.encode(), SDIST, SDIST_SHA256)
    assert publisher.describe() == "github.com/trailofbits/pypi-attestations, workflow release.yml"


def test_uploaded_attestations_verify_and_make_the_provenance_the_index_serves() -> None:
    """The attestations twine would send, verified, give back the public index's document."""
    attestations = parse_attestations(json.dumps(_recorded_attestations()))
    check_subjects(attestations, SDIST, SDIST_SHA256)
    verify(attestations, SDIST, SDIST_SHA256.upper(), PUBLISHER)
    assert provenance(attestations, PUBLISHER) == json.loads(PROVENANCE)


def test_a_gitlab_attestation_verifies_against_its_gitlab_publisher() -> None:
    attestations = parse_attestations(f"[{GITLAB_ATTESTATION}]")
    verify(attestations, GITLAB_SDIST, GITLAB_SHA256, GITLAB_PUBLISHER)
    document = provenance(attestations, GITLAB_PUBLISHER)
    assert document["attestation_bundles"][0]["publisher"] == {
        "kind": "GitLab",
        "repository": "facutuesca/gitlab-oidc-project",
        "workflow_filepath": ".gitlab-ci.yml",
        "environment": None,
    }
    # What was built reads back as a provenance document of the same publisher.
    assert verify_provenance(json.dumps(document), GITLAB_SDIST, GITLAB_SHA256) == [
        GITLAB_PUBLISHER
    ]


# Another publisher


@pytest.mark.parametrize(
    "publisher",
    [
        ProvenancePublisher("GitHub", "trailofbits/other-project", "release.yml"),
        ProvenancePublisher("GitHub", "someone/pypi-attestations", "release.yml"),
        ProvenancePublisher("GitHub", "trailofbits/pypi-attestations", "publish.yml"),
        ProvenancePublisher("GitLab", "trailofbits/pypi-attestations", "release.yml"),
    ],
    ids=["repository", "owner", "workflow", "forge"],
)
def test_attestations_signed_by_another_workflow_are_refused(
    publisher: ProvenancePublisher,
) -> None:
    attestations = parse_attestations(json.dumps(_recorded_attestations()))
    with pytest.raises(AttestationRejected) as refused:
        verify(attestations, SDIST, SDIST_SHA256, publisher)
    assert refused.value.reason == "publisher"
    assert refused.value.message == (
        f"Attestation 1 for {SDIST} was signed by {SIGNER}, not by the trusted publisher "
        f"{publisher.describe()}."
    )


def test_a_gitlab_attestation_from_another_ci_file_is_refused() -> None:
    other = ProvenancePublisher("GitLab", "facutuesca/gitlab-oidc-project", "ci/release.yml")
    with pytest.raises(AttestationRejected) as refused:
        verify(parse_attestations(f"[{GITLAB_ATTESTATION}]"), GITLAB_SDIST, GITLAB_SHA256, other)
    assert refused.value.reason == "publisher"
    assert "gitlab.com/facutuesca/gitlab-oidc-project, workflow ci/release.yml" in str(
        refused.value
    )


def test_a_provenance_naming_another_publisher_is_refused() -> None:
    other = ProvenancePublisher("GitHub", "trailofbits/pypi-attestations", "publish.yml")
    with pytest.raises(AttestationRejected) as refused:
        verify_provenance(PROVENANCE, SDIST, SDIST_SHA256, other)
    assert refused.value.reason == "publisher"
    assert refused.value.message == (
        f"The provenance of {SDIST} names the publisher github.com/trailofbits/"
        "pypi-attestations, workflow release.yml; the trusted publisher is github.com/"
        "trailofbits/pypi-attestations, workflow publish.yml."
    )


def test_a_provenance_whose_publisher_claim_lies_is_refused() -> None:
    """The bundle's publisher object is not signed: the certificate decides."""
    document = json.loads(PROVENANCE)
    document["attestation_bundles"][0]["publisher"]["repository"] = "someone/else"
    with pytest.raises(AttestationRejected) as refused:
        verify_provenance(json.dumps(document), SDIST, SDIST_SHA256)
    assert refused.value.reason == "publisher"
    assert f"signed by {SIGNER}, not by the trusted publisher github.com/someone/else" in str(
        refused.value
    )


def test_the_environment_is_checked_against_the_provenance() -> None:
    """The certificate has no environment: a configured one must be the one the provenance
    names (in any case, as GitHub compares them); none configured admits any."""
    document = json.loads(PROVENANCE)
    document["attestation_bundles"][0]["publisher"]["environment"] = "pypi"
    named = json.dumps(document)
    in_pypi = ProvenancePublisher(PUBLISHER.kind, PUBLISHER.repository, PUBLISHER.workflow, "PyPI")
    assert verify_provenance(named, SDIST, SDIST_SHA256, in_pypi)[0].environment == "pypi"
    assert verify_provenance(named, SDIST, SDIST_SHA256, PUBLISHER)[0].environment == "pypi"
    for provenance_document, environment in ((named, "release"), (PROVENANCE, "pypi")):
        required = ProvenancePublisher(
            PUBLISHER.kind, PUBLISHER.repository, PUBLISHER.workflow, environment
        )
        with pytest.raises(AttestationRejected) as refused:
            verify_provenance(provenance_document, SDIST, SDIST_SHA256, required)
        assert refused.value.reason == "publisher"
        assert f"the trusted publisher is {required.describe()}" in refused.value.message
        assert f"environment {environment}" in refused.value.message


# Tampering


def test_a_flipped_signature_byte_is_refused() -> None:
    attestations = _recorded_attestations()
    envelope = attestations[0]["envelope"]
    envelope["signature"] = _flip(envelope["signature"], 40)
    with pytest.raises(AttestationRejected) as refused:
        _verify_raw(attestations)
    assert refused.value.reason == "signature"
    assert refused.value.message.startswith(f"Attestation 1 for {SDIST} does not verify:")


def test_a_changed_statement_is_refused() -> None:
    """Same file, same digest, other words: the signature no longer covers them."""
    attestations = _recorded_attestations()
    envelope = attestations[0]["envelope"]
    statement = json.loads(base64.b64decode(envelope["statement"]))
    statement["predicate"] = {"note": "added after signing"}
    envelope["statement"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(AttestationRejected) as refused:
        _verify_raw(attestations)
    assert refused.value.reason == "signature"


@pytest.mark.parametrize("position", [300, 900, 1200])
def test_a_flipped_certificate_byte_is_refused(position: int) -> None:
    attestations = _recorded_attestations()
    material = attestations[0]["verification_material"]
    material["certificate"] = _flip(material["certificate"], position)
    with pytest.raises(AttestationRejected) as refused:
        _verify_raw(attestations)
    assert refused.value.reason == "signature"


@pytest.mark.parametrize(
    ("field", "change"),
    [("integratedTime", lambda v: str(int(v) + 1)), ("logIndex", lambda v: str(int(v) + 1))],
)
def test_a_changed_transparency_log_entry_is_refused(field: str, change: Any) -> None:
    attestations = _recorded_attestations()
    entry = attestations[0]["verification_material"]["transparency_entries"][0]
    entry[field] = change(entry[field])
    with pytest.raises(AttestationRejected) as refused:
        _verify_raw(attestations)
    assert refused.value.reason == "signature"


def test_a_statement_swapped_in_from_another_attestation_is_refused() -> None:
    """The GitLab statement with the GitHub signature and certificate."""
    attestations = _recorded_attestations()
    gitlab = json.loads(GITLAB_ATTESTATION)
    attestations[0]["envelope"]["statement"] = gitlab["envelope"]["statement"]
    with pytest.raises(AttestationRejected) as refused:
        verify(parse_attestations(json.dumps(attestations)), GITLAB_SDIST, GITLAB_SHA256, PUBLISHER)
    assert refused.value.reason == "signature"


# The subject


def test_other_bytes_under_the_same_name_are_refused() -> None:
    other = hashlib.sha256(b"not the published file").hexdigest()
    with pytest.raises(AttestationRejected) as refused:
        _verify_raw(_recorded_attestations(), sha256=other)
    assert refused.value.reason == "subject"
    assert refused.value.message == (
        f"Attestation 1 for {SDIST} is about other bytes: its sha256 is {SDIST_SHA256}, "
        f"the file's is {other}."
    )


@pytest.mark.parametrize(
    "filename",
    ["pypi_attestations-0.0.20.tar.gz", "pypi-attestations-0.0.19.tar.gz", "other-0.0.19.zip"],
)
def test_a_statement_about_another_filename_is_refused(filename: str) -> None:
    attestations = parse_attestations(json.dumps(_recorded_attestations()))
    with pytest.raises(AttestationRejected) as refused:
        verify(attestations, filename, SDIST_SHA256, PUBLISHER)
    assert refused.value.reason == "subject"
    assert refused.value.message == (
        f"Attestation 1 for {filename} is about another file: {SDIST!r}."
    )


def _statement(**changes: object) -> dict[str, object]:
    statement: dict[str, object] = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": SDIST, "digest": {"sha256": SDIST_SHA256}}],
        "predicateType": "https://docs.pypi.org/attestations/publish/v1",
        "predicate": None,
    }
    statement.update(changes)
    return statement


@pytest.mark.parametrize(
    ("statement", "reason", "message"),
    [
        ([], "shape", "does not hold an in-toto v1 statement"),
        (_statement(_type="https://in-toto.io/Statement/v0.1"), "shape", "in-toto v1"),
        (_statement(subject=[]), "subject", "must name exactly one subject"),
        (
            _statement(subject=[{"name": SDIST, "digest": {"sha256": SDIST_SHA256}}] * 2),
            "subject",
            "must name exactly one subject",
        ),
        (_statement(subject=["x"]), "subject", "is about another file: None"),
        (_statement(subject=[{"name": SDIST, "digest": {}}]), "subject", "carries no sha256"),
        (
            _statement(subject=[{"name": SDIST, "digest": {"sha256": "ab" * 31}}]),
            "subject",
            "carries no sha256",
        ),
        (_statement(predicateType="https://example.test/p"), "subject", "has predicate type"),
    ],
)
def test_statements_that_are_not_about_exactly_this_file_are_refused(
    statement: object, reason: str, message: str
) -> None:
    with pytest.raises(AttestationRejected) as refused:
        check_statement(statement, SDIST, SDIST_SHA256, 2)
    assert refused.value.reason == reason
    assert refused.value.message.startswith(f"Attestation 2 for {SDIST}")
    assert message in refused.value.message


def test_the_slsa_predicate_type_is_known() -> None:
    check_statement(
        _statement(predicateType="https://slsa.dev/provenance/v1"), SDIST, SDIST_SHA256, 1
    )


def test_a_statement_that_is_not_json_is_refused() -> None:
    attestations = _recorded_attestations()
    attestations[0]["envelope"]["statement"] = base64.b64encode(b"\xffnot json").decode()
    with pytest.raises(AttestationRejected) as refused:
        check_subjects(parse_attestations(json.dumps(attestations)), SDIST, SDIST_SHA256)
    assert refused.value.message == (
        f"Attestation 1 for {SDIST} holds a statement that is not JSON."
    )


# The attestations field


def _without(path: tuple[str, ...]) -> str:
    attestation = copy.deepcopy(_recorded_attestations()[0])
    target = attestation
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return json.dumps([attestation])


def _replaced(path: tuple[str, ...], value: object) -> str:
    attestation = copy.deepcopy(_recorded_attestations()[0])
    target = attestation
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps([attestation])


_ONE = json.dumps(_recorded_attestations()[0])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "The attestations field is not JSON: Expecting value at line 1, column 1."),
        ("[{", "The attestations field is not JSON: Expecting property name enclosed"),
        (b"[\xff]", "The attestations field is not UTF-8 text."),
        ("[" * 100_000, "The attestations field is nested too deeply."),
        (_ONE, "The attestations field must be a JSON array of attestation objects."),
        ("[]", "The attestations field is an empty list: send at least one."),
        (
            "[" + ",".join([_ONE] * 17) + "]",
            "The attestations field holds 17 attestations; at most 16 are accepted.",
        ),
        (
            "[" + " " * MAX_ATTESTATIONS_BYTES + "]",
            f"The attestations field is {MAX_ATTESTATIONS_BYTES + 2} bytes; at most 256 KiB",
        ),
        ("[1]", "Attestation 1 of the attestations field is not a JSON object."),
        (
            _without(("envelope",)),
            "Attestation 1 of the attestations field is not a PEP 740 attestation object: "
            "envelope: Field required.",
        ),
        (
            _without(("verification_material", "certificate")),
            "not a PEP 740 attestation object: verification_material.certificate: Field required",
        ),
        (
            _replaced(("envelope", "signature"), "not base64!"),
            "not a PEP 740 attestation object: envelope.signature: Base64 decoding error",
        ),
        (
            _replaced(("verification_material", "transparency_entries"), []),
            "verification_material.transparency_entries: List should have at least 1 item",
        ),
        (
            _replaced(("version",), 2),
            "Attestation 1 of the attestations field must have version 1.",
        ),
        (_replaced(("version",), True), "must have version 1."),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, str) and len(value) < 60 else None,
)
def test_a_malformed_attestations_field_is_refused_with_a_message(
    raw: str | bytes, message: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_attestations(raw)
    assert isinstance(refused.value, AttestationRejected)
    assert refused.value.reason == "shape"
    assert refused.value.field == "attestations"
    assert message in refused.value.message


def test_sixteen_attestations_are_accepted() -> None:
    assert len(parse_attestations("[" + ",".join([_ONE] * 16) + "]")) == 16


def test_verify_needs_an_attestation_and_a_distribution_filename() -> None:
    with pytest.raises(AttestationRejected, match="No attestation for"):
        verify([], SDIST, SDIST_SHA256, PUBLISHER)
    statement = _statement(subject=[{"name": "notes.txt", "digest": {"sha256": SDIST_SHA256}}])
    attestations = _recorded_attestations()
    attestations[0]["envelope"]["statement"] = base64.b64encode(
        json.dumps(statement).encode()
    ).decode()
    with pytest.raises(AttestationRejected) as refused:
        verify(parse_attestations(json.dumps(attestations)), "notes.txt", SDIST_SHA256, PUBLISHER)
    assert refused.value.message == (
        "notes.txt is not a distribution filename that attestations can name."
    )


# Provenance documents from an upstream


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("<html>", f"The provenance of {SDIST} is not JSON"),
        ("[]", f"The provenance of {SDIST} is not a PEP 740 provenance object:"),
        ('{"version": 1}', "attestation_bundles: Field required."),
        (
            '{"version": 1, "attestation_bundles": []}',
            f"The provenance of {SDIST} holds no attestation.",
        ),
        (" " * (1024 * 1024 + 1), "at most 1024 KiB is read."),
    ],
)
def test_a_malformed_provenance_document_is_refused(document: str, message: str) -> None:
    with pytest.raises(AttestationRejected) as refused:
        verify_provenance(document, SDIST, SDIST_SHA256)
    assert refused.value.reason == "shape"
    assert message in refused.value.message


def test_a_provenance_of_too_many_attestations_is_refused_before_any_is_verified() -> None:
    document = json.loads(PROVENANCE)
    bundle = document["attestation_bundles"][0]
    bundle["attestations"] = bundle["attestations"] * 17
    with pytest.raises(AttestationRejected, match="holds 17 attestations; at most 16"):
        verify_provenance(json.dumps(document), SDIST, SDIST_SHA256)


def test_a_provenance_of_an_unsupported_publisher_is_refused() -> None:
    document = json.loads(PROVENANCE)
    document["attestation_bundles"][0]["publisher"] = {
        "kind": "Google",
        "email": "publisher@example.test",
    }
    with pytest.raises(AttestationRejected) as refused:
        verify_provenance(json.dumps(document), SDIST, SDIST_SHA256)
    assert refused.value.reason == "publisher"
    assert refused.value.message == (
        "The provenance names a publisher of kind 'Google'; only GitHub and GitLab "
        "publishers are supported."
    )


# Trusted publishers


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("GitHub", "trailofbits", "release.yml"), "is not OWNER/REPO"),
        (("GitHub", "a/b/c", "release.yml"), "is not OWNER/REPO"),
        (("GitHub", "owner/repo", ".github/workflows/release.yml"), "without the directory"),
        (("GitHub", "owner/repo", "release.sh"), "ending in .yml or .yaml"),
        (("GitLab", "project", ".gitlab-ci.yml"), "is not NAMESPACE/PROJECT"),
        (("GitLab", "group/sub/project", "../ci.yml"), "is not a relative path"),
        (("GitLab", "group/project", "/ci.yml"), "is not a relative path"),
        (("Google", "owner/repo", "release.yml"), "is not GitHub or GitLab"),
        (("GitHub", "owner/repo", "release.yml", " "), "Environment ' ' must be a name"),
        (("GitHub", "owner/repo", "release.yml", "a\nb"), "without control characters"),
    ],
)
def test_a_malformed_trusted_publisher_is_refused(arguments: tuple[Any, ...], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace(".", r"\.").replace("(", r"\(")):
        ProvenancePublisher(*arguments)


def test_publishers_are_described_and_shaped_as_the_public_index_does() -> None:
    publisher = ProvenancePublisher("GitLab", "group/sub/project", "ci/release.yml", "production")
    assert publisher.describe() == (
        "gitlab.com/group/sub/project, workflow ci/release.yml, environment production"
    )
    assert publisher.issuer == "https://gitlab.com"
    assert PUBLISHER.issuer == "https://token.actions.githubusercontent.com"
    assert (
        PUBLISHER.provenance_object()
        == json.loads(PROVENANCE)["attestation_bundles"][0]["publisher"]
    )


# Offline and lazy


def test_the_network_guard_catches_a_connection(offline: list[str]) -> None:
    """The guard the other tests rely on does catch a connection attempt."""
    with pytest.raises(OSError, match="may not reach the network"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert offline != []
    offline.clear()


@pytest.mark.slow
def test_the_services_module_imports_no_sigstore_until_used() -> None:
    """An upload handler can import the module without paying most of a second for
    sigstore, pydantic and the cryptography they load."""
    code = (
        "import sys, ministry.services.attestations, ministry.core.attestations\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sigstore', 'pypi_attestations', 'pydantic', 'tuf', 'cryptography')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
