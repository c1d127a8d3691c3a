"""The benchmark corpus, the static tree nginx serves, and the upload sets.

Every server is measured on the same files, so the comparison is about the
servers and not about the data:

- ``corpus/real``: about 300 real wheels, one per project, taken from the
  machine's local tree of real wheels (the ``file://`` index pip is configured
  with). It always holds the dependency closure of ``INSTALL_SET`` (what the
  install benchmark resolves) and the ~1.25 MB pygments wheel of the download
  benchmark; the rest is spread evenly over the alphabet.
- ``corpus/wide``: ``bigproj``, one project with 500 files (a long project page).
- ``corpus/many``: 5,000 one-file projects (a long root listing).
- ``static/simple``: the same corpus as static PEP 503 HTML and PEP 691 JSON
  pages, the physical upper bound for reads when nginx serves it.
- ``uploads/``: wheels for the upload benchmark, none of which is in the corpus.

Everything is deterministic, so a rebuild gives the same bytes and the same
fingerprint; the fingerprint tells the devpi loader whether its cached server
directory still matches the corpus.

    python bench/corpus.py [--real 300] [--wide 500] [--many 5000]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

# The ten packages of the install benchmark; their closure is always in the corpus.
INSTALL_SET = (
    "requests",
    "flask",
    "rich",
    "attrs",
    "python-dateutil",
    "pyyaml",
    "httpx",
    "jsonschema",
    "pytest",
    "pydantic",
)
DOWNLOAD_PROJECT = "pygments"  # its wheel (~1.25 MB) is the download benchmark's file
WIDE_PROJECT = "bigproj"
ONE_FILE_PROJECT = "requests"
MAX_REAL_SIZE = 20 * 1024 * 1024  # a few huge wheels would dominate every load step
ZIP_DATE = (2024, 1, 1, 0, 0, 0)  # fixed timestamps: the same wheel bytes on every build
TINY_UPLOADS = 100
REAL_UPLOADS = 100
CONCURRENT_UPLOADS = 2000
LARGE_UPLOAD_BYTES = 95_000_000  # under a 100 MB upload limit, however a server counts it
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def work_dir() -> Path:
    """``$MINISTRY_BENCH``, or ``ministry-bench`` in the temporary directory: never the repo."""
    default = Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / "ministry-bench"
    return Path(os.environ.get("MINISTRY_BENCH") or default)


@dataclass(frozen=True)
class Layout:
    """Where each part of the benchmark lives below the work directory."""

    root: Path

    @property
    def venvs(self) -> Path:
        return self.root / "venvs"

    @property
    def corpus(self) -> Path:
        return self.root / "corpus"

    @property
    def static(self) -> Path:
        return self.root / "static"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def servers(self) -> Path:
        return self.root / "servers"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def tool(self, venv: str, name: str) -> Path:
        """An executable of one of the benchmark's virtual environments."""
        return self.venvs / venv / "bin" / name


def normalize(name: str) -> str:
    """The PEP 503 normalized form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def normalized_filename(filename: str) -> bool:
    """Whether a wheel's name part is the normalized project name, as the public index requires.

    Older wheels (``Flask_RESTful-…``) are refused on upload by servers that
    follow the public index's rule, so the upload sets contain none.
    """
    dist = filename.split("-", 1)[0]
    return dist == normalize(dist).replace("-", "_")


def wheel_project(filename: str) -> str:
    """The normalized project of a wheel or sdist filename."""
    return normalize(filename.split("-")[0])


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _zip_entry(name: str, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, ZIP_DATE)
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    return info


def wheel_files(dist: str, version: str, summary: str) -> dict[str, bytes]:
    """The members of a small valid py3-none-any wheel, RECORD excluded."""
    module = dist.replace("-", "_").lower()
    info = f"{dist.replace('-', '_')}-{version}.dist-info"
    metadata = (
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
        f"Summary: {summary}\nRequires-Python: >=3.8\n\n"
    )
    wheel = "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"
    return {
        f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": wheel.encode(),
    }


def _write_if_changed(path: Path, data: bytes) -> None:
    """Keep an identical file untouched, so hard links and mtimes survive a rebuild."""
    if path.exists() and path.read_bytes() == data:
        return
    path.write_bytes(data)


def make_wheel(path: Path, dist: str, version: str, summary: str) -> Path:
    """Write a tiny but valid wheel (what twine and every server accept)."""
    files = wheel_files(dist, version, summary)
    info = next(name.rsplit("/", 1)[0] for name in files if name.endswith("/METADATA"))
    record = "".join(f"{n},{_record_hash(b)},{len(b)}\n" for n, b in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(_zip_entry(name, zipfile.ZIP_DEFLATED), data)
    _write_if_changed(path, buffer.getvalue())
    return path


def make_large_wheel(path: Path, size: int) -> Path:
    """A valid wheel of about ``size`` bytes of incompressible data, stored uncompressed.

    It shows whether a server holds an upload in memory: its RSS before and
    after such an upload should not differ by anything like the file's size.
    """
    if path.exists() and abs(path.stat().st_size - size) < 64 * 1024:
        return path
    dist, version = "bench-large", "1.0.0"
    files = wheel_files(dist, version, "a large upload")
    info = f"bench_large-{version}.dist-info"
    blob = random.Random(size).randbytes(size)  # deterministic, incompressible
    files["bench_large/blob.bin"] = blob
    record = "".join(f"{n},{_record_hash(b)},{len(b)}\n" for n, b in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    partial = path.with_suffix(".part")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, data in files.items():
            archive.writestr(_zip_entry(name, zipfile.ZIP_STORED), data)
    partial.replace(path)
    return path


def local_wheel_tree() -> Path:
    """The root of the local PEP 503 tree of real wheels pip is configured with.

    That tree (``<root>/simple`` pages, ``<root>/files`` wheels) is how this
    machine finds packages without the internet, so it is also the source of
    real-looking wheels and of a realistic dependency closure.
    """
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.extra-index-url"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout.split()
    for url in listed:
        if not url.startswith("file://"):
            continue
        root = Path(url.removeprefix("file://").rstrip("/"))
        root = root.parent if root.name == "simple" else root
        if (root / "files").is_dir():
            return root
    raise SystemExit("no local tree of real wheels found: pass --src DIR")


def resolve_closure(simple_url: str) -> list[str]:
    """The filenames pip would install for ``INSTALL_SET`` from that index."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        command = [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run"]
        command += ["--ignore-installed", "--quiet", "--report", str(report)]
        command += ["--index-url", simple_url, *INSTALL_SET]
        subprocess.run(command, check=True, env=environment, timeout=600)
        installs = json.loads(report.read_text())["install"]
    return sorted(item["download_info"]["url"].rsplit("/", 1)[-1] for item in installs)


def metadata_is_uploadable(path: Path) -> bool:
    """Whether twine (and so every server's upload path) accepts the wheel's METADATA.

    Some real wheels declare Metadata-Version 2.0, or License-Expression below
    2.4; twine refuses those, and the corpus must load into every server.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            name = next(
                n
                for n in archive.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            )
            head = archive.read(name).decode("utf-8", "replace").split("\n\n", 1)[0]
    except (OSError, zipfile.BadZipFile, StopIteration):
        return False
    fields: dict[str, str] = {}
    for line in head.splitlines():
        if ":" in line and not line.startswith((" ", "\t")):
            key, value = line.split(":", 1)
            fields.setdefault(key.strip().lower(), value.strip())
    version = fields.get("metadata-version", "")
    if version not in {"1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4"}:
        return False
    return "license-expression" not in fields or version == "2.4"


def _link(source: Path, target: Path) -> None:
    if target.exists():
        return
    try:
        target.hardlink_to(source)
    except OSError:
        shutil.copy2(source, target)


def _candidates(source: Path) -> dict[str, str]:
    """One uploadable wheel per project of the source tree (the first by name)."""
    chosen: dict[str, str] = {}
    for path in sorted(source.iterdir()):
        if not path.name.endswith(".whl") or wheel_project(path.name) in chosen:
            continue
        if path.stat().st_size > MAX_REAL_SIZE or not metadata_is_uploadable(path):
            continue
        chosen[wheel_project(path.name)] = path.name
    return chosen


def build_real(source: Path, target: Path, count: int, closure: list[str]) -> list[str]:
    """Link the closure plus evenly spread other projects, ``count`` wheels in all."""
    target.mkdir(parents=True, exist_ok=True)
    chosen = {wheel_project(name): name for name in closure}
    if DOWNLOAD_PROJECT not in chosen:
        raise SystemExit(f"the install set's closure has no {DOWNLOAD_PROJECT} wheel")
    pool = _candidates(source)
    rest = [project for project in sorted(pool) if project not in chosen]
    wanted = min(max(0, count - len(chosen)), len(rest))
    for i in range(wanted):
        project = rest[int(i * len(rest) / wanted)]
        chosen[project] = pool[project]
    names = set(chosen.values())
    for stale in target.iterdir():
        if stale.name not in names:
            stale.unlink()
    for name in names:
        _link(source / name, target / name)
    return sorted(names)


def build_wide(target: Path, count: int) -> list[str]:
    """``bigproj`` with ``count`` releases of one wheel each."""
    target.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        path = target / f"{WIDE_PROJECT}-1.0.{i}-py3-none-any.whl"
        make_wheel(path, WIDE_PROJECT, f"1.0.{i}", "a project with many releases")
        names.append(path.name)
    return names


def build_many(target: Path, count: int) -> list[str]:
    """``count`` one-file projects, for a long root listing."""
    target.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        dist = f"many-proj-{i:04d}"
        path = target / f"{dist.replace('-', '_')}-1.0.0-py3-none-any.whl"
        make_wheel(path, dist, "1.0.0", "a project with one release")
        names.append(path.name)
    return names


def build_uploads(layout: Layout) -> dict[str, list[str]]:
    """The upload sets: tiny generated wheels, the concurrent-load set, one large wheel."""
    sets: dict[str, list[str]] = {}
    for name, prefix, count in (
        ("tiny", "upl-tiny", TINY_UPLOADS),
        ("concurrent", "upl-load", CONCURRENT_UPLOADS),
    ):
        directory = layout.uploads / name
        directory.mkdir(parents=True, exist_ok=True)
        sets[name] = []
        for i in range(count):
            dist = f"{prefix}-{i:04d}"
            path = directory / f"{dist.replace('-', '_')}-1.0.0-py3-none-any.whl"
            sets[name].append(str(make_wheel(path, dist, "1.0.0", "an upload benchmark wheel")))
    large = layout.uploads / "large" / "bench_large-1.0.0-py3-none-any.whl"
    large.parent.mkdir(parents=True, exist_ok=True)
    sets["large"] = [str(make_large_wheel(large, LARGE_UPLOAD_BYTES))]
    real = [p for p in sorted((layout.corpus / "real").iterdir()) if normalized_filename(p.name)]
    sets["real"] = [str(path) for path in real[:REAL_UPLOADS]]
    return sets


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def corpus_files(corpus: Path) -> list[Path]:
    """Every distribution file of the corpus, in a stable order."""
    return sorted(p for p in corpus.glob("*/*") if p.name.endswith((".whl", ".tar.gz")))


def fingerprint(files: list[Path], corpus: Path) -> str:
    """A digest of the corpus's names and sizes: same files, same fingerprint."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(corpus)}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def _page(title: str, links: list[str]) -> str:
    head = '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0">'
    return f"{head}<title>{title}</title></head><body>\n{''.join(links)}</body></html>\n"


def write_static(corpus: Path, static: Path) -> int:
    """A static PEP 503 HTML + PEP 691 JSON tree of the corpus; files under /packages/."""
    projects: dict[str, list[tuple[str, str, str]]] = {}
    for path in corpus_files(corpus):
        url = f"/packages/{path.parent.name}/{path.name}"
        projects.setdefault(wheel_project(path.name), []).append(
            (path.name, url, sha256_file(path))
        )
    simple = static / "simple"
    if simple.exists():
        shutil.rmtree(simple)
    simple.mkdir(parents=True)
    meta = {"api-version": "1.0"}
    names = sorted(projects)
    root_links = [f'<a href="/simple/{p}/">{p}</a>\n' for p in names]
    (simple / "index.html").write_text(_page("Simple index", root_links))
    root_json = {"meta": meta, "projects": [{"name": p} for p in names]}
    (simple / "index.json").write_text(json.dumps(root_json))
    for project in names:
        page = simple / project
        page.mkdir()
        files = projects[project]
        links = [
            f'<a href="{html.escape(u)}#sha256={h}">{html.escape(f)}</a><br/>\n'
            for f, u, h in files
        ]
        (page / "index.html").write_text(_page(f"Links for {project}", links))
        entries = [{"filename": f, "url": u, "hashes": {"sha256": h}} for f, u, h in files]
        document = {"meta": meta, "name": project, "files": entries}
        (page / "index.json").write_text(json.dumps(document))
    return len(names)


def build(layout: Layout, tree: Path, counts: tuple[int, int, int]) -> dict[str, object]:
    """Build (or refresh) everything from a tree of real wheels; returns the manifest."""
    real_count, wide_count, many_count = counts
    closure = resolve_closure(f"file://{tree / 'simple'}")
    real = build_real(tree / "files", layout.corpus / "real", real_count, closure)
    wide = build_wide(layout.corpus / "wide", wide_count)
    many = build_many(layout.corpus / "many", many_count)
    files = corpus_files(layout.corpus)
    stamp = fingerprint(files, layout.corpus)
    previous = json.loads(layout.manifest.read_text()) if layout.manifest.exists() else {}
    static_index = layout.static / "simple" / "index.html"
    if previous.get("fingerprint") != stamp or not static_index.exists():
        write_static(layout.corpus, layout.static)
    download = next(name for name in real if wheel_project(name) == DOWNLOAD_PROJECT)
    manifest: dict[str, object] = {
        "install_set": list(INSTALL_SET),
        "closure": closure,
        "download_file": download,
        "download_bytes": (layout.corpus / "real" / download).stat().st_size,
        "counts": {"real": len(real), "wide": len(wide), "many": len(many)},
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "projects": len({wheel_project(p.name) for p in files}),
        "fingerprint": stamp,
        "uploads": build_uploads(layout),
    }
    layout.manifest.write_text(json.dumps(manifest, indent=1))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--src", type=Path, help="a tree of real wheels: DIR/simple and DIR/files (default: found)"
    )
    parser.add_argument("--real", type=int, default=300)
    parser.add_argument("--wide", type=int, default=500)
    parser.add_argument("--many", type=int, default=5000)
    arguments = parser.parse_args()
    layout = Layout(work_dir())
    tree = arguments.src or local_wheel_tree()
    manifest = build(layout, tree, (arguments.real, arguments.wide, arguments.many))
    print(
        f"corpus: {manifest['files']} files, {manifest['projects']} projects, "
        f"fingerprint {manifest['fingerprint']}"
    )


if __name__ == "__main__":
    main()
