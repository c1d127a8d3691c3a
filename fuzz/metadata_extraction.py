"""Coverage-guided fuzzing of metadata extraction: wheels, sdists and core metadata files.

The first byte of each input picks the target (wheel, sdist or METADATA), the rest
is the file. The only exception a target may raise is InvalidUpload, the 400 of an
upload; anything else is a crash that would be a 500 on the server.

    python fuzz/metadata_extraction.py --seed fuzz/corpus   # write the seed inputs
    python fuzz/metadata_extraction.py fuzz/corpus -max_total_time=3600
    python fuzz/metadata_extraction.py crash-1234abcd       # replay one input

Fuzzing needs atheris (``pip install -e '.[fuzz]'``); replaying inputs does not.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

try:
    import atheris
except ImportError:  # replaying inputs works without it
    atheris = None

_ROOT = Path(__file__).resolve().parents[1]
_TARGETS = ("wheel", "sdist", "metadata")
_FILENAMES = {"wheel": "demo_pkg-1.0-py3-none-any.whl", "sdist": "demo_pkg-1.0.tar.gz"}


def _import_targets() -> tuple[ModuleType, ModuleType, ModuleType]:
    """Import the code under test, instrumented for coverage when atheris is there."""
    if atheris is not None:
        with atheris.instrument_imports(include=["ministry", "packaging"]):
            import ministry.core.archives as archives
            import ministry.core.metadata as metadata
            import ministry.errors as errors
    else:
        import ministry.core.archives as archives
        import ministry.core.metadata as metadata
        import ministry.errors as errors
    return archives, metadata, errors


archives, metadata, errors = _import_targets()
# Small caps, so that the size and ratio checks are reached by small inputs too.
_LIMITS = archives.ArchiveLimits(
    max_metadata_bytes=4096, max_members=20, max_uncompressed_bytes=1 << 20
)
_WORK = Path(tempfile.mkdtemp(prefix="ministry-fuzz-"))
atexit.register(shutil.rmtree, _WORK, ignore_errors=True)


def test_one_input(data: bytes) -> None:
    """Run one input through its target; only InvalidUpload may come out."""
    if not data:
        return
    target, payload = _TARGETS[data[0] % len(_TARGETS)], data[1:]
    try:
        if target == "metadata":
            metadata.parse_core_metadata(payload)
            return
        path = _WORK / _FILENAMES[target]
        path.write_bytes(payload)
        inspect = archives.inspect_wheel if target == "wheel" else archives.inspect_sdist
        info = inspect(path, path.name, _LIMITS)
        metadata.parse_core_metadata(info.metadata)
    except errors.InvalidUpload:
        pass


def write_seeds(corpus: Path) -> None:
    """Write a real wheel, sdist and METADATA, made by the test suite's builders, as inputs."""
    sys.path.insert(0, str(_ROOT / "tests"))
    from support.distributions import make_sdist, make_wheel, metadata_text

    options = {
        "requires_dist": ["requests>=2; extra == 'http'"],
        "requires_python": ">=3.9",
        "metadata_version": "2.4",
        "description": "Some *text*.\n",
    }
    text = metadata_text("demo-pkg", "1.0", extra_headers=[("License-File", "LICENSE")], **options)
    files = {"demo_pkg/__init__.py": b"", "demo_pkg-1.0.dist-info/licenses/LICENSE": b"MIT"}
    corpus.mkdir(parents=True, exist_ok=True)
    wheel = make_wheel(_WORK, "demo-pkg", "1.0", metadata=text, files=files)
    # make_sdist writes no LICENSE, so its PKG-INFO promises none.
    sdist = make_sdist(
        _WORK, "demo-pkg", "1.0", metadata=metadata_text("demo-pkg", "1.0", **options)
    )
    (corpus / "seed-wheel").write_bytes(b"\x00" + wheel.read_bytes())
    (corpus / "seed-sdist").write_bytes(b"\x01" + sdist.read_bytes())
    (corpus / "seed-metadata").write_bytes(b"\x02" + text.encode())


def main(argv: list[str]) -> int:
    """Seed a corpus, fuzz with atheris, or replay the given inputs without it."""
    if len(argv) == 3 and argv[1] == "--seed":
        write_seeds(Path(argv[2]))
        return 0
    if atheris is not None:
        atheris.Setup(argv, test_one_input)
        atheris.Fuzz()
        return 0
    inputs = [Path(arg) for arg in argv[1:] if not arg.startswith("-")]
    if not inputs or not all(path.is_file() for path in inputs):
        print("atheris is not installed: pip install -e '.[fuzz]' to fuzz.", file=sys.stderr)
        print("Without it, give input files to replay them.", file=sys.stderr)
        return 2
    for path in inputs:
        test_one_input(path.read_bytes())
        print(f"{path}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
