"""Which blobs ``ministry migrate``, ``backup`` and ``restore`` move: every one a record names."""

from __future__ import annotations

from ministry.services.migration import Record, blobs_named


def test_a_files_metadata_and_provenance_blobs_move_with_it() -> None:
    records: list[Record] = [
        ("file", {"sha256": "a" * 64, "metadata_sha256": "b" * 64, "provenance_sha256": "c" * 64}),
        ("file", {"sha256": "d" * 64, "metadata_sha256": None, "provenance_sha256": None}),
        ("file", {"sha256": "e" * 64}),  # a record of a release before provenance
        ("cached", {"sha256": "f" * 64}),
        ("user", {"name": "alice"}),
    ]
    assert blobs_named(records) == {c * 64 for c in "abcdef"}
