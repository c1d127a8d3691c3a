"""The legacy upload form (``POST /legacy/``) as twine, uv, poetry, pdm, hatch and flit send it.

The API is not standardised: its de-facto specification is the public index's
own upload code, whose messages are reused here so that the hints clients print
for the public index also fit this one (docs/protocol.md, "Upload form").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ministry.core.distributions import DistributionName, parse_distribution_filename
from ministry.core.hashing import Digests
from ministry.errors import FileExists, Gone, InvalidUpload

__all__ = [
    "FilePart",
    "UploadForm",
    "already_exists",
    "check_digests",
    "check_metadata_matches",
    "form_for_file",
    "read_upload_form",
]

_GONE_ACTIONS = {
    "submit": "Project pre-registration is no longer required or supported, "
    "upload your files instead.",
    "submit_pkg_info": "Project pre-registration is no longer required or supported, "
    "upload your files instead.",
    "doc_upload": "Uploading documentation is no longer supported; "
    "publish documentation elsewhere.",
}
# Fields that must appear at most once; a second value would otherwise be silently
# dropped, and which one "wins" must never be a guess (docs/security.md, "Hostile uploads").
_SINGLE_FIELDS = (
    ":action",
    "protocol_version",
    "name",
    "version",
    "filetype",
    "pyversion",
    "metadata_version",
    "md5_digest",
    "sha256_digest",
    "blake2_256_digest",
    "attestations",
)
# Parts that clients send as files; anything else sent as a file is refused.
_FILE_FIELDS = {"content", "gpg_signature"}
_DIGEST_LENGTHS = {"md5_digest": 32, "sha256_digest": 64, "blake2_256_digest": 64}
_HEX = re.compile(r"[0-9a-fA-F]+\Z")
_FILETYPES = {"sdist", "bdist_wheel"}
_METADATA_VERSIONS = {"1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6"}
_NAME_HELP = (
    "Start and end with a letter or numeral containing only ASCII numeric and "
    "'.', '_' and '-'. See the core metadata specification for more information."
)


@dataclass(frozen=True)
class FilePart:
    """A multipart part that came with a filename."""

    field: str
    filename: str
    content_type: str | None


@dataclass(frozen=True)
class UploadForm:
    """A validated upload form; the file's own bytes are checked later."""

    name: str
    version: Version
    filetype: str
    pyversion: str
    distribution: DistributionName
    digests: Mapping[str, str]
    #: The ``attestations`` field as sent (a JSON array of PEP 740 attestation objects;
    #: ``twine upload --attestations``), or None without one. Checked by the upload service.
    attestations: str | None = None


def _single(fields: Mapping[str, Sequence[str]], key: str, *, strip: bool = True) -> str | None:
    values = fields.get(key, ())
    if len(values) > 1:
        raise InvalidUpload(f"Field {key!r} appears more than once; send it once.", field=key)
    value = values[0] if values else None
    if value is not None and strip:
        value = value.strip()
    return value or None


def _check_action(fields: Mapping[str, Sequence[str]]) -> None:
    action = _single(fields, ":action")
    if action in _GONE_ACTIONS:
        raise Gone(_GONE_ACTIONS[action])
    if action is None:
        raise InvalidUpload("Missing ':action' field; send ':action=file_upload'.", ":action")
    if action != "file_upload":
        raise InvalidUpload(f"Unknown ':action' {action[:40]!r}; use 'file_upload'.", ":action")
    if (_single(fields, "protocol_version") or "1") != "1":
        raise InvalidUpload("Unknown protocol version.", field="protocol_version")


def _check_name(value: str | None) -> str:
    if value is None:
        raise InvalidUpload("Missing 'name' field: the project name is required.", field="name")
    try:
        canonicalize_name(value, validate=True)
    except InvalidName as exc:
        raise InvalidUpload(
            f"{value[:100]!r} is an invalid value for Name. Error: {_NAME_HELP}", field="name"
        ) from exc
    return value


def _check_version(value: str | None) -> Version:
    if value is None:
        raise InvalidUpload("Missing 'version' field: the release version is required.", "version")
    try:
        return Version(value)
    except InvalidVersion as exc:
        raise InvalidUpload(
            f"{value[:100]!r} is an invalid value for Version. Error: use a version "
            "that follows PEP 440 (the version specifiers specification).",
            field="version",
        ) from exc


def _check_digests(fields: Mapping[str, Sequence[str]]) -> dict[str, str]:
    digests = {}
    for key, length in _DIGEST_LENGTHS.items():
        value = _single(fields, key)
        if value is None:
            continue
        if len(value) != length or not _HEX.match(value):
            raise InvalidUpload(f"Invalid {key}: expected {length} hex characters.", field=key)
        digests[key] = value.lower()
    if not digests:
        raise InvalidUpload("Include at least one message digest.", field="sha256_digest")
    return digests


def _content_part(file_parts: Sequence[FilePart]) -> FilePart:
    content = [p for p in file_parts if p.field == "content"]
    for part in file_parts:
        if part.field not in _FILE_FIELDS:
            raise InvalidUpload(f"{part.field}: Should not be a tuple.", field=part.field)
    if not content:
        raise InvalidUpload("Upload payload does not have a file.", field="content")
    if len(content) > 1:
        raise InvalidUpload("Upload payload has more than one file; send one per request.")
    part = content[0]
    # Clients may omit the part's type (uv, flit); an empty or image type means a mix-up.
    if part.content_type is not None and (
        not part.content_type.strip() or part.content_type.strip().lower().startswith("image/")
    ):
        raise InvalidUpload("Invalid distribution file.", field="content")
    return part


def _check_filetype(fields: Mapping[str, Sequence[str]], dist: DistributionName) -> tuple[str, str]:
    filetype = _single(fields, "filetype")
    if filetype not in _FILETYPES:
        raise InvalidUpload("Use a known file type.", field="filetype")
    if filetype != dist.packagetype:
        extension = ".whl" if dist.packagetype == "bdist_wheel" else ".tar.gz"
        raise InvalidUpload(
            f"Invalid file extension: Extension {extension} is invalid for filetype {filetype}.",
            field="filetype",
        )
    pyversion = _single(fields, "pyversion")
    if filetype == "sdist":
        if pyversion not in (None, "source"):
            raise InvalidUpload("Use 'source' as Python version for an sdist.", "pyversion")
        return filetype, "source"
    # The public index requires it for wheels; the wheel's own tags say the same thing.
    return filetype, pyversion or dist.python_tag


def read_upload_form(
    fields: Mapping[str, Sequence[str]], file_parts: Sequence[FilePart]
) -> UploadForm:
    """Validate the form fields and the file part's name before the file is inspected."""
    _check_action(fields)
    # Not stripped: the specification calls "foo\n" an invalid name
    # (docs/protocol.md, "Project names").
    name = _check_name(_single(fields, "name", strip=False))
    version = _check_version(_single(fields, "version"))
    metadata_version = _single(fields, "metadata_version")
    if metadata_version is not None and metadata_version not in _METADATA_VERSIONS:
        raise InvalidUpload(
            f"{metadata_version[:20]!r} is not a valid metadata version.", "metadata_version"
        )
    digests = _check_digests(fields)
    part = _content_part(file_parts)
    distribution = parse_distribution_filename(part.filename)
    filetype, pyversion = _check_filetype(fields, distribution)
    _check_filename_matches(name, version, distribution)
    attestations = _single(fields, "attestations", strip=False)
    return UploadForm(name, version, filetype, pyversion, distribution, digests, attestations)


def form_for_file(filename: str) -> UploadForm:
    """The form a client would send for this file (for imports, which have no form)."""
    distribution = parse_distribution_filename(filename)
    return UploadForm(
        name=distribution.project,
        version=distribution.version,
        filetype=distribution.packagetype,
        pyversion=distribution.python_tag,
        distribution=distribution,
        digests={},
    )


def _underscored(name: str) -> str:
    return canonicalize_name(name).replace("-", "_")


def _check_filename_matches(name: str, version: Version, dist: DistributionName) -> None:
    # Uploads must use the names today's build tools write (PEP 625 sdists, PEP 491
    # wheels), as on the public index; ``ministry import`` stays lenient for old files.
    expected_name = _underscored(name)
    if dist.project != canonicalize_name(name):
        raise InvalidUpload(f"Start filename for {name!r} with {expected_name!r}.", "content")
    if dist.version != version:
        raise InvalidUpload(
            f"Version in filename should be {str(version)!r} not {str(dist.version)!r}.",
            field="content",
        )
    if dist.packagetype == "sdist":
        expected = f"{expected_name}-{version}.tar.gz"
        if dist.filename != expected:
            raise InvalidUpload(
                f"Filename {dist.filename!r} is invalid, should be {expected!r}.", "content"
            )
        return
    given_name = dist.filename.partition("-")[0]
    if given_name != expected_name:
        raise InvalidUpload(
            f"Filename {dist.filename!r} should contain the normalized project name "
            f"{expected_name!r}, not {given_name!r}.",
            field="content",
        )


def check_digests(form: UploadForm, computed: Digests) -> None:
    """Every digest the client sent must match the bytes received."""
    actual = {
        "md5_digest": computed.md5,
        "sha256_digest": computed.sha256,
        "blake2_256_digest": computed.blake2b_256,
    }
    for key, expected in form.digests.items():
        if actual[key] != expected:
            raise InvalidUpload(
                "The digest supplied does not match a digest calculated from the uploaded file.",
                field=key,
            )


def check_metadata_matches(form: UploadForm, raw_name: str, raw_version: Version) -> None:
    """The file's own metadata must name the project and version of the form and filename."""
    if canonicalize_name(raw_name) != form.distribution.project:
        raise InvalidUpload(
            f"The metadata inside {form.distribution.filename!r} names project "
            f"{raw_name!r}, but the filename and form name {form.name!r}.",
            field="content",
        )
    if raw_version != form.version:
        raise InvalidUpload(
            f"The metadata inside {form.distribution.filename!r} has version "
            f"{str(raw_version)!r}, but the filename and form say {str(form.version)!r}.",
            field="content",
        )


def already_exists(filename: str, blake2b_256: str) -> FileExists:
    """The error upload clients recognise as "skip this file" (docs/protocol.md, "Duplicates")."""
    return FileExists(
        f"File already exists ({filename!r}, with blake2_256 hash {blake2b_256!r}). "
        "Published files cannot be replaced; upload a new version instead."
    )
