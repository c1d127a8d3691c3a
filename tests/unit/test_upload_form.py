"""Unit tests for ministry.core.upload_form: the legacy upload form
(docs/protocol.md, "Uploads")."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from packaging.version import Version

from ministry.core.hashing import Digests
from ministry.core.upload_form import (
    FilePart,
    UploadForm,
    already_exists,
    check_digests,
    check_metadata_matches,
    form_for_file,
    read_upload_form,
)
from ministry.errors import FileExists, Gone, InvalidUpload

WHEEL = "demo_pkg-1.0-py3-none-any.whl"
SDIST = "demo_pkg-1.0.tar.gz"
CONTENT = b"pretend this is a wheel"
SHA256 = hashlib.sha256(CONTENT).hexdigest()
MD5 = hashlib.md5(CONTENT, usedforsecurity=False).hexdigest()
BLAKE2 = hashlib.blake2b(CONTENT, digest_size=32).hexdigest()
COMPUTED = Digests(sha256=SHA256, md5=MD5, blake2b_256=BLAKE2, size=len(CONTENT))
OCTET = "application/octet-stream"
DIGEST_MISMATCH = "The digest supplied does not match a digest calculated from the uploaded file."
NAME_ERROR = (
    "is an invalid value for Name. Error: Start and end with a letter or numeral containing "
    "only ASCII numeric and '.', '_' and '-'."
)

Fields = dict[str, list[str]]
_DROP = object()


def twine_fields(**changes: object) -> Fields:
    """The fields twine 7 sends for WHEEL; a change of ``_DROP`` removes the field."""
    fields: Fields = {
        ":action": ["file_upload"],
        "protocol_version": ["1"],
        "name": ["demo-pkg"],
        "version": ["1.0"],
        "filetype": ["bdist_wheel"],
        "pyversion": ["py3"],
        "metadata_version": ["2.1"],
        "summary": ["A demo"],
        "classifiers": ["Programming Language :: Python :: 3", "License :: OSI Approved"],
        "requires_dist": ["requests>=2", "rich"],
        "sha256_digest": [SHA256],
        "blake2_256_digest": [BLAKE2],
    }
    for key, value in changes.items():
        if value is _DROP:
            fields.pop(key, None)
        elif isinstance(value, list):
            fields[key] = value
        else:
            fields[key] = [str(value)]
    return fields


def sdist_fields(**changes: object) -> Fields:
    """The fields for SDIST (flit-style: no pyversion)."""
    base: dict[str, object] = {"filetype": "sdist", "pyversion": _DROP}
    base.update(changes)
    return twine_fields(**base)


def content(filename: str = WHEEL, content_type: str | None = OCTET) -> list[FilePart]:
    return [FilePart("content", filename, content_type)]


def refused(fields: Fields, parts: Sequence[FilePart] | None = None) -> InvalidUpload:
    with pytest.raises(InvalidUpload) as caught:
        read_upload_form(fields, content() if parts is None else parts)
    return caught.value


# --- good forms from real clients (docs/protocol.md, "Upload form") ----------------------


def test_twine_form_is_accepted() -> None:
    """twine's wheel upload passes and yields name, version, type, pyversion, digests."""
    form = read_upload_form(twine_fields(), content())
    assert form.name == "demo-pkg"
    assert form.version == Version("1.0")
    assert form.filetype == "bdist_wheel"
    assert form.pyversion == "py3"
    assert form.distribution.filename == WHEEL
    assert form.distribution.project == "demo-pkg"
    assert dict(form.digests) == {"sha256_digest": SHA256, "blake2_256_digest": BLAKE2}


@pytest.mark.parametrize(
    ("client", "fields", "parts"),
    [
        ("uv", twine_fields(requires_python=""), content(content_type=None)),
        (
            "poetry/pdm/hatch",
            twine_fields(md5_digest=MD5),
            content(),
        ),
        (
            "flit-sdist",
            sdist_fields(metadata_version="2.3", md5_digest=MD5, blake2_256_digest=_DROP),
            content(SDIST, content_type=None),
        ),
        (
            "flit-wheel",
            twine_fields(metadata_version="2.3", md5_digest=MD5, blake2_256_digest=_DROP),
            content(content_type=None),
        ),
        ("hatch-py2.py3", twine_fields(pyversion="py2.py3"), content(WHEEL)),
    ],
)
def test_real_client_forms_are_accepted(client: str, fields: Fields, parts: list[FilePart]) -> None:
    """Check 12: uv, poetry, pdm, hatch and flit forms all pass."""
    form = read_upload_form(fields, parts)
    assert form.distribution.filename == parts[0].filename, client
    assert form.digests, client


def test_gpg_signature_part_is_allowed() -> None:
    """``gpg_signature`` is one of the two fields that may be a file part."""
    parts = [*content(), FilePart("gpg_signature", WHEEL + ".asc", OCTET)]
    assert read_upload_form(twine_fields(), parts).distribution.filename == WHEEL


# --- :action and protocol_version (docs/protocol.md, "Upload form") -----------------------


def test_missing_action_is_refused() -> None:
    """The form is dispatched on ``:action``; without one it is a 400."""
    error = refused(twine_fields(**{":action": _DROP}))
    assert error.field == ":action"
    assert "file_upload" in error.message


@pytest.mark.parametrize("action", ["upload", "file-upload", "FILE_UPLOAD", "remove_pkg"])
def test_unknown_action_is_refused(action: str) -> None:
    """``file_upload`` is the only live action."""
    error = refused(twine_fields(**{":action": action}))
    assert error.field == ":action"


@pytest.mark.parametrize("action", ["submit", "submit_pkg_info"])
def test_preregistration_is_gone(action: str) -> None:
    """``submit``/``submit_pkg_info`` -> 410 with the public index's message."""
    with pytest.raises(Gone) as caught:
        read_upload_form(twine_fields(**{":action": action}), content())
    assert caught.value.message == (
        "Project pre-registration is no longer required or supported, upload your files instead."
    )


def test_doc_upload_is_gone() -> None:
    """``doc_upload`` -> 410 "Uploading documentation is no longer supported..."."""
    with pytest.raises(Gone) as caught:
        read_upload_form(twine_fields(**{":action": "doc_upload"}), [])
    assert caught.value.message.startswith("Uploading documentation is no longer supported")


@pytest.mark.parametrize("version", ["2", "0", "1.0", "v1"])
def test_other_protocol_versions_are_refused(version: str) -> None:
    """Any protocol_version other than "1" -> "Unknown protocol version."."""
    assert refused(twine_fields(protocol_version=version)).message == "Unknown protocol version."


def test_missing_protocol_version_means_1() -> None:
    """A missing protocol_version is treated as "1"."""
    form = read_upload_form(twine_fields(protocol_version=_DROP), content())
    assert form.name == "demo-pkg"


# --- name and version (docs/protocol.md, "Upload form") -----------------------------------


@pytest.mark.parametrize(
    "name", ["-foo", "foo-", ".foo", "foo_", "foo bar", "føø", "foo/bar", "demo-pkg\n", "fo\x00o"]
)
def test_invalid_name_is_refused(name: str) -> None:
    """An invalid name gets the public index's Name message (a trailing newline too)."""
    error = refused(twine_fields(name=name))
    assert NAME_ERROR in error.message
    assert error.field == "name"


def test_missing_name_is_refused() -> None:
    """``name`` is required."""
    assert refused(twine_fields(name=_DROP)).field == "name"


@pytest.mark.parametrize("version", ["one", "1.0-beta-x", "1..0", "1.0 2"])
def test_invalid_version_is_refused(version: str) -> None:
    """The version must be PEP 440."""
    error = refused(twine_fields(version=version))
    assert "is an invalid value for Version" in error.message
    assert error.field == "version"


def test_missing_version_is_refused() -> None:
    """``version`` is required."""
    assert refused(twine_fields(version=_DROP)).field == "version"


# --- filetype and pyversion (docs/protocol.md, "Upload form") -----------------------------


@pytest.mark.parametrize(
    "filetype", ["bdist_egg", "bdist_wininst", "bdist_msi", "bdist_dumb", "wheel", "", _DROP]
)
def test_unknown_filetype_is_refused(filetype: object) -> None:
    """Only sdist and bdist_wheel -> otherwise "Use a known file type."."""
    assert refused(twine_fields(filetype=filetype)).message == "Use a known file type."


def test_wheel_filename_with_filetype_sdist_is_refused() -> None:
    """The extension must fit the filetype."""
    error = refused(sdist_fields(), content(WHEEL))
    assert error.message.startswith("Invalid file extension")


def test_sdist_filename_with_filetype_wheel_is_refused() -> None:
    """A .tar.gz sent as bdist_wheel is refused."""
    error = refused(twine_fields(), content(SDIST))
    assert error.message.startswith("Invalid file extension")


@pytest.mark.parametrize("pyversion", ["py3", "cp312", "any"])
def test_sdist_pyversion_other_than_source_is_refused(pyversion: str) -> None:
    """For an sdist any pyversion but ``source`` is refused."""
    error = refused(sdist_fields(pyversion=pyversion), content(SDIST))
    assert error.message == "Use 'source' as Python version for an sdist."


@pytest.mark.parametrize("pyversion", ["source", _DROP])
def test_sdist_pyversion_source_or_missing_is_source(pyversion: object) -> None:
    """flit sends no pyversion for an sdist; it defaults to ``source``."""
    form = read_upload_form(sdist_fields(pyversion=pyversion), content(SDIST))
    assert form.pyversion == "source"
    assert form.filetype == "sdist"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("demo_pkg-1.0-py3-none-any.whl", "py3"),
        ("demo_pkg-1.0-py2.py3-none-any.whl", "py2.py3"),
        ("demo_pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "cp312"),
    ],
)
def test_wheel_without_pyversion_takes_it_from_tags(filename: str, expected: str) -> None:
    """A wheel upload without pyversion gets the python tags of its filename."""
    form = read_upload_form(twine_fields(pyversion=_DROP), content(filename))
    assert form.pyversion == expected


def test_wheel_pyversion_from_client_is_kept() -> None:
    """The pyversion the client sent is what the JSON API reports."""
    form = read_upload_form(twine_fields(pyversion="cp312"), content(WHEEL))
    assert form.pyversion == "cp312"


# --- digests (docs/protocol.md, "Digests") ------------------------------------------------


def test_no_digest_is_refused() -> None:
    """Refused: "Include at least one message digest."."""
    fields = twine_fields(sha256_digest=_DROP, blake2_256_digest=_DROP)
    assert refused(fields).message == "Include at least one message digest."


def test_empty_digests_count_as_missing() -> None:
    """Empty digest fields are no digest at all."""
    fields = twine_fields(sha256_digest="", blake2_256_digest="")
    assert refused(fields).message == "Include at least one message digest."


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sha256_digest", SHA256[:-1]),
        ("sha256_digest", SHA256 + "0"),
        ("sha256_digest", "g" * 64),
        ("blake2_256_digest", BLAKE2[:32]),
        ("blake2_256_digest", "z" * 64),
        ("md5_digest", MD5 + "00"),
        ("md5_digest", "1B2M2Y8AsgTpgAmY7PhCfg"),  # the base64 form the old docs mention
        ("sha256_digest", "0x" + SHA256[2:]),
    ],
)
def test_malformed_digest_is_refused(key: str, value: str) -> None:
    """sha256 and blake2 are 64 hex characters, md5 32 hex characters."""
    assert refused(twine_fields(**{key: value})).field == key


def test_uppercase_hex_digests_are_accepted_and_compared_case_insensitively() -> None:
    """Digests are compared case-insensitively (uppercase hex is accepted)."""
    fields = twine_fields(
        sha256_digest=SHA256.upper(), blake2_256_digest=BLAKE2.upper(), md5_digest=MD5.upper()
    )
    form = read_upload_form(fields, content())
    check_digests(form, COMPUTED)  # must not raise
    assert form.digests["sha256_digest"] == SHA256


@pytest.mark.parametrize("key", ["sha256_digest", "blake2_256_digest", "md5_digest"])
def test_any_mismatching_digest_is_refused(key: str) -> None:
    """Every digest supplied must match; one wrong digest is enough to refuse."""
    fields = twine_fields(md5_digest=MD5)
    fields[key] = ["0" * len(fields[key][0])]
    form = read_upload_form(fields, content())
    with pytest.raises(InvalidUpload) as caught:
        check_digests(form, COMPUTED)
    assert caught.value.message == DIGEST_MISMATCH


def test_matching_digests_pass() -> None:
    """The right digests for the bytes pass check_digests."""
    form = read_upload_form(twine_fields(md5_digest=MD5), content())
    check_digests(form, COMPUTED)
    assert set(form.digests) == {"sha256_digest", "blake2_256_digest", "md5_digest"}


# --- duplicate fields, file parts (docs/protocol.md, "Upload form") -----------------------


@pytest.mark.parametrize(
    "key", ["name", "version", "filetype", "pyversion", "sha256_digest", ":action"]
)
def test_single_field_sent_twice_is_refused(key: str) -> None:
    """A single-use field sent twice is refused rather than one value guessed."""
    fields = twine_fields()
    fields[key] = [*fields[key], fields[key][0]]
    assert refused(fields).field == key


def test_repeated_multi_use_fields_are_fine() -> None:
    """Multi-use fields (classifiers, requires_dist) arrive as repeated keys."""
    fields = twine_fields(classifiers=["A :: B", "C :: D", "E :: F"])
    assert read_upload_form(fields, content()).name == "demo-pkg"


@pytest.mark.parametrize("field", ["summary", "name", "description", "sha256_digest"])
def test_non_content_field_as_file_part_is_refused(field: str) -> None:
    """A field sent as a file part -> "<field>: Should not be a tuple."."""
    parts = [*content(), FilePart(field, "x.txt", "text/plain")]
    assert refused(twine_fields(), parts).message == f"{field}: Should not be a tuple."


def test_two_content_parts_are_refused() -> None:
    """One file per upload request."""
    parts = [*content(), *content("demo_pkg-1.0-py2-none-any.whl")]
    error = refused(twine_fields(), parts)
    assert error.message
    assert error.message != "Upload payload does not have a file."


def test_no_content_part_is_refused() -> None:
    """Refused: "Upload payload does not have a file."."""
    assert refused(twine_fields(), []).message == "Upload payload does not have a file."


@pytest.mark.parametrize("content_type", ["", "  ", "image/png", "image/jpeg", "Image/PNG"])
def test_empty_or_image_content_type_is_refused(content_type: str) -> None:
    """An empty or ``image/*`` part type (case-insensitive, RFC 9110 8.3.1) is refused."""
    error = refused(twine_fields(), content(content_type=content_type))
    assert error.message == "Invalid distribution file."


@pytest.mark.parametrize(
    "content_type", [None, OCTET, "application/zip", "application/x-tar", "binary/octet-stream"]
)
def test_missing_or_ordinary_content_type_is_accepted(content_type: str | None) -> None:
    """No part type (uv, flit) or any non-image type is fine."""
    assert read_upload_form(twine_fields(), content(content_type=content_type)).name == "demo-pkg"


# --- hostile filenames (docs/protocol.md, "Distribution filenames") -----------------------

CONTROL_MESSAGE = (
    "Cannot upload a file with non-printable characters (ordinals 0-31) or the DEL character "
    "(ordinal 127) in the name."
)
SLASH_MESSAGE = "Cannot upload a file with '/' or '\\' in the name."


@pytest.mark.parametrize(
    "filename",
    [
        "../demo_pkg-1.0-py3-none-any.whl",
        "/tmp/demo_pkg-1.0-py3-none-any.whl",
        "x/demo_pkg-1.0-py3-none-any.whl",
        "..\\demo_pkg-1.0-py3-none-any.whl",
        "C:\\demo_pkg-1.0-py3-none-any.whl",
    ],
)
def test_filename_with_slash_is_refused(filename: str) -> None:
    """No ``/`` or ``\\`` in the filename (no path tricks)."""
    assert refused(twine_fields(), content(filename)).message == SLASH_MESSAGE


@pytest.mark.parametrize(
    "filename",
    [
        "demo_pkg-1.0-py3-none-any.whl\x00.txt",
        "demo_pkg-1.0-py3-none-\x00any.whl",
        "demo_pkg-1.0-py3-none-any\n.whl",
        "demo_pkg-1.0-py3-none-any.whl\r",
        "\x1bdemo_pkg-1.0-py3-none-any.whl",
        "demo_pkg-1.0-py3-none-any.wh\x7fl",
    ],
)
def test_filename_with_control_characters_is_refused(filename: str) -> None:
    """NUL, other control characters and DEL are refused with the public index's message."""
    assert refused(twine_fields(), content(filename)).message == CONTROL_MESSAGE


@pytest.mark.parametrize(
    "filename",
    [
        "..",
        "..demo_pkg-1.0-py3-none-any.whl",
        "demo_pkg-1.0-py3-none-\u0430ny.whl",  # Cyrillic a
        "dem\u043e_pkg-1.0-py3-none-any.whl",  # Cyrillic o
        "demo_pkg-1.0-py3-none-any.whl\u200b",  # zero-width space
        "demo_pkg-1.0-py3-none-any\uff0ewhl",  # fullwidth full stop
        "demo pkg-1.0-py3-none-any.whl",
    ],
)
def test_tricky_filenames_are_refused(filename: str) -> None:
    """Dot-dot names and non-ASCII look-alikes are refused."""
    assert refused(twine_fields(), content(filename)).field == "content"


@pytest.mark.parametrize(
    ("filetype", "filename"),
    [
        ("sdist", "demo_pkg-1.0.zip"),
        ("sdist", "demo_pkg-1.0.tar.bz2"),
        ("sdist", "demo_pkg-1.0.tgz"),
        ("bdist_wheel", "demo_pkg-1.0-py3.6.egg"),
        ("bdist_wheel", "demo_pkg-1.0.win32.exe"),
        ("bdist_wheel", "demo_pkg-1.0.msi"),
        ("bdist_wheel", "demo_pkg-1.0-py3-none-any.WHL"),
    ],
)
def test_unsupported_extensions_are_refused(filetype: str, filename: str) -> None:
    """.zip sdists, eggs, .exe and .msi are refused."""
    fields = twine_fields(filetype=filetype, pyversion="source" if filetype == "sdist" else "py3")
    error = refused(fields, content(filename))
    assert error.message.startswith("Invalid file extension")


def test_filename_over_255_bytes_is_refused() -> None:
    """A filename longer than one path component can be (255 bytes) is refused."""
    long_name = "demo_pkg-1.0-py3-none-" + "x" * 240 + ".whl"
    assert len(long_name.encode()) > 255
    assert refused(twine_fields(), content(long_name)).field == "content"


# --- name and version consistency (docs/protocol.md, "Names in uploads") -----------------


def test_filename_for_another_project_is_refused() -> None:
    """Refused: "Start filename for '<Project>' with '<norm_underscored>'."."""
    error = refused(twine_fields(name="Other.Pkg"), content(WHEEL))
    assert error.message == "Start filename for 'Other.Pkg' with 'other_pkg'."


def test_filename_version_mismatch_is_refused() -> None:
    """Refused: "Version in filename should be '<form version>' not '<file version>'."."""
    error = refused(twine_fields(version="2.0"), content(WHEEL))
    assert error.message == "Version in filename should be '2.0' not '1.0'."


@pytest.mark.parametrize(
    ("form_name", "filename"),
    [
        ("foo-bar", "foo_bar-1.0-py3-none-any.whl"),  # twine's safe_name of foo_bar
        ("foo_bar", "foo_bar-1.0-py3-none-any.whl"),
        ("Foo.Bar", "foo_bar-1.0-py3-none-any.whl"),  # uv sends the name as the metadata has it
        ("FOO-BAR", "foo_bar-1.0.tar.gz"),
    ],
)
def test_non_normalized_form_name_is_accepted(form_name: str, filename: str) -> None:
    """The form name is compared by its normalized form."""
    filetype = "sdist" if filename.endswith(".tar.gz") else "bdist_wheel"
    pyversion: object = _DROP if filetype == "sdist" else "py3"
    fields = twine_fields(name=form_name, filetype=filetype, pyversion=pyversion)
    assert read_upload_form(fields, content(filename)).distribution.project == "foo-bar"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("Demo.Pkg-1.0.tar.gz", "demo_pkg-1.0.tar.gz"),
        ("demo-pkg-1.0.tar.gz", "demo_pkg-1.0.tar.gz"),
        ("Demo_Pkg-1.0.tar.gz", "demo_pkg-1.0.tar.gz"),
        ("demo_pkg-01.0.tar.gz", "demo_pkg-1.0.tar.gz"),
    ],
)
def test_sdist_filename_must_be_normalized(filename: str, expected: str) -> None:
    """An sdist is named ``{norm_underscored}-{version}.tar.gz`` exactly."""
    error = refused(sdist_fields(), content(filename))
    assert error.message == f"Filename {filename!r} is invalid, should be {expected!r}."


def test_sdist_version_must_be_spelled_as_the_release() -> None:
    """``demo_pkg-1.0.tar.gz`` is not the sdist of release ``1.0.0`` (str(version) differs)."""
    error = refused(sdist_fields(version="1.0.0"), content(SDIST))
    assert error.message == f"Filename {SDIST!r} is invalid, should be 'demo_pkg-1.0.0.tar.gz'."


@pytest.mark.parametrize(
    ("filename", "written"),
    [
        ("Demo.Pkg-1.0-py3-none-any.whl", "Demo.Pkg"),
        ("Demo_Pkg-1.0-py3-none-any.whl", "Demo_Pkg"),
    ],
)
def test_uploaded_wheel_filename_must_use_normalized_name(filename: str, written: str) -> None:
    """Refused: "Filename '<f>' should contain the normalized project name '<n>', not '<x>'."."""
    error = refused(twine_fields(), content(filename))
    assert error.message == (
        f"Filename {filename!r} should contain the normalized project name 'demo_pkg', "
        f"not {written!r}."
    )


@pytest.mark.parametrize(
    ("filename", "filetype"),
    [
        ("demo_pkg-1.0+cpu-py3-none-any.whl", "bdist_wheel"),
        ("demo_pkg-1.0+cpu.tar.gz", "sdist"),
    ],
)
def test_local_version_is_accepted(filename: str, filetype: str) -> None:
    """docs/protocol.md, "Versions": a private index allows local versions such as ``1.0+cpu``."""
    pyversion: object = _DROP if filetype == "sdist" else "py3"
    fields = twine_fields(version="1.0+cpu", filetype=filetype, pyversion=pyversion)
    form = read_upload_form(fields, content(filename))
    assert form.version == Version("1.0+cpu")
    assert form.version.local == "cpu"


@pytest.mark.parametrize(
    "metadata_version", ["1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6"]
)
def test_supported_metadata_versions_are_accepted(metadata_version: str) -> None:
    """docs/protocol.md, "Core metadata": metadata_version 1.0-2.6 are accepted (flit always sends
    2.3)."""
    form = read_upload_form(twine_fields(metadata_version=metadata_version), content())
    assert form.name == "demo-pkg"


@pytest.mark.parametrize("metadata_version", ["9.9", "3.0", "1.3", "two"])
def test_unknown_metadata_version_is_refused(metadata_version: str) -> None:
    """docs/protocol.md, "Core metadata": "'X' is not a valid metadata version."."""
    error = refused(twine_fields(metadata_version=metadata_version))
    assert error.message == f"{metadata_version!r} is not a valid metadata version."


# --- the file's own metadata (docs/protocol.md, "Names in uploads") -----------------------


def wheel_form() -> UploadForm:
    return read_upload_form(twine_fields(name="demo-pkg"), content())


@pytest.mark.parametrize(
    ("raw_name", "raw_version"),
    [("demo-pkg", "1.0"), ("Demo_Pkg", "1.0"), ("demo.pkg", "1.0.0"), ("DEMO-PKG", "1.0")],
)
def test_metadata_matching_form_passes(raw_name: str, raw_version: str) -> None:
    """The file's Name/Version agree with the form by normalized name and PEP 440."""
    form = wheel_form()
    check_metadata_matches(form, raw_name, Version(raw_version))
    assert form.distribution.project == "demo-pkg"


def test_metadata_with_other_name_is_refused() -> None:
    """METADATA naming another project is refused."""
    with pytest.raises(InvalidUpload) as caught:
        check_metadata_matches(wheel_form(), "evil-pkg", Version("1.0"))
    assert "evil-pkg" in caught.value.message


def test_metadata_with_other_version_is_refused() -> None:
    """METADATA with another version is refused."""
    with pytest.raises(InvalidUpload) as caught:
        check_metadata_matches(wheel_form(), "demo-pkg", Version("1.1"))
    assert "1.1" in caught.value.message


# --- imports and duplicates (docs/protocol.md, "Duplicates") -----------------------------


@pytest.mark.parametrize(
    ("filename", "name", "filetype", "pyversion"),
    [
        ("demo_pkg-1.0-py3-none-any.whl", "demo-pkg", "bdist_wheel", "py3"),
        ("demo_pkg-1.0-py2.py3-none-any.whl", "demo-pkg", "bdist_wheel", "py2.py3"),
        ("Demo.Pkg-2.0-1-cp312-abi3-linux_x86_64.whl", "demo-pkg", "bdist_wheel", "cp312"),
        ("demo_pkg-1.0.tar.gz", "demo-pkg", "sdist", "source"),
    ],
)
def test_form_for_file(filename: str, name: str, filetype: str, pyversion: str) -> None:
    """Imports: the form a client would send, derived from the filename alone."""
    form = form_for_file(filename)
    assert form.distribution.project == name
    assert form.filetype == filetype
    assert form.pyversion == pyversion
    assert form.version == form.distribution.version
    assert form.digests == {}


@pytest.mark.parametrize("filename", ["../x-1.0.tar.gz", "x-1.0.zip", "x-1.0-py3-none.whl"])
def test_form_for_file_refuses_bad_names(filename: str) -> None:
    """Imports get the same filename checks as uploads."""
    with pytest.raises(InvalidUpload):
        form_for_file(filename)


def test_already_exists_message() -> None:
    """The error starts with "File already exists" so --skip-existing recognises it."""
    error = already_exists(WHEEL, BLAKE2)
    assert isinstance(error, FileExists)
    assert error.message.startswith("File already exists")
    assert "already exist" in str(error)
    assert WHEEL in error.message
    assert "was ever registered" not in error.message
