"""Upload throughput of an index, into an empty target.

Three measurements, in this order, against one freshly emptied server:

1. twine: ``twine upload`` of 100 tiny generated wheels, then of 100 real
   wheels, one twine process per set (so each time includes one twine start-up,
   about 0.4 s): what a user publishing sees.
2. concurrent: ``concurrency`` connections posting distinct small wheels with
   twine-shaped multipart bodies, for a bounded time: the server's own upload
   throughput, without twine's client-side cost (bodies are built beforehand).
3. large: one ~95 MB wheel, with the server's RSS sampled before, during and
   after, to show whether memory grows with the size of an upload.

With ``--latency N`` it measures only the latency of one tiny upload instead: N
distinct ~1 kB wheels posted one after another over one kept-alive connection,
then N more from ``LATENCY_CLIENTS`` connections at once, each with p50 and p99
(twine-shaped bodies built beforehand, so the figures are the server's).

    python bench/measure_upload.py UPLOAD_URL [-u USER -p PASSWORD] [--latency N] [--out F]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from corpus import Layout, make_wheel, work_dir
from packaging.utils import parse_wheel_filename

TWINE_TIMEOUT = 1200
CONCURRENCY = 16
LATENCY_CLIENTS = 8
SAMPLE_SECONDS = 0.05
CHUNK = 1 << 20
Pids = Callable[[], list[int]]


def twine_upload(
    layout: Layout, files: Sequence[str], url: str, auth: tuple[str, str]
) -> dict[str, Any]:
    """One twine process uploading ``files``; seconds, files/s, MB/s."""
    size = sum(Path(f).stat().st_size for f in files)
    twine = layout.tool("client", "twine")
    command = [str(twine), "upload", "--non-interactive", "--disable-progress-bar"]
    command += ["--repository-url", url, "-u", auth[0], "-p", auth[1]]
    began = time.perf_counter()
    try:
        done = subprocess.run(
            [*command, *files], capture_output=True, text=True, timeout=TWINE_TIMEOUT, check=False
        )
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired:
        code, output = -1, f"timed out after {TWINE_TIMEOUT} s"
    seconds = time.perf_counter() - began
    result: dict[str, Any] = {
        "files": len(files),
        "mb": round(size / 1e6, 1),
        "seconds": round(seconds, 2),
        "files_per_s": round(len(files) / seconds, 1),
        "mb_per_s": round(size / 1e6 / seconds, 1),
        "rc": code,
    }
    if code != 0:
        result["error"] = output[-1500:]
    return result


def form_fields(path: Path, data: bytes) -> list[tuple[str, str]]:
    """The fields twine sends with a wheel (name and version from its filename)."""
    name, version, _, tags = parse_wheel_filename(path.name)
    return [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.1"),
        ("name", str(name)),
        ("version", str(version)),
        ("filetype", "bdist_wheel"),
        ("pyversion", sorted(t.interpreter for t in tags)[0]),
        ("md5_digest", hashlib.md5(data, usedforsecurity=False).hexdigest()),
        ("sha256_digest", hashlib.sha256(data).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(data, digest_size=32).hexdigest()),
    ]


def multipart_parts(path: Path, data: bytes, boundary: str) -> tuple[bytes, bytes]:
    """The body before and after the file's bytes (so a large file can be streamed)."""
    dash = f"--{boundary}\r\n"
    head = "".join(
        f'{dash}Content-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        for key, value in form_fields(path, data)
    )
    head += f'{dash}Content-Disposition: form-data; name="content"; filename="{path.name}"\r\n'
    head += "Content-Type: application/octet-stream\r\n\r\n"
    return head.encode(), f"\r\n--{boundary}--\r\n".encode()


def multipart_body(path: Path) -> tuple[bytes, str]:
    """A whole twine-shaped upload body and its Content-Type."""
    data = path.read_bytes()
    boundary = secrets.token_hex(16)
    head, end = multipart_parts(path, data, boundary)
    return head + data + end, f"multipart/form-data; boundary={boundary}"


async def _post_all(
    url: str,
    auth: tuple[str, str],
    bodies: list[tuple[bytes, str]],
    concurrency: int,
    seconds: float,
) -> tuple[list[float], Counter[str], float]:
    """Workers post the next body until none is left or the time is up."""
    queue = iter(bodies)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    began = time.perf_counter()
    deadline = began + seconds
    async with httpx.AsyncClient(trust_env=False, timeout=120, limits=limits, auth=auth) as client:

        async def worker() -> None:
            for body, content_type in queue:
                if time.perf_counter() > deadline:
                    return
                sent = time.perf_counter()
                try:
                    response = await client.post(
                        url, content=body, headers={"Content-Type": content_type}
                    )
                    statuses[str(response.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - began


def concurrent_uploads(
    url: str, auth: tuple[str, str], files: Sequence[str], concurrency: int, seconds: float
) -> dict[str, Any]:
    """Server-side upload throughput: distinct wheels from ``concurrency`` connections."""
    bodies = [multipart_body(Path(f)) for f in files]
    latencies, statuses, elapsed = asyncio.run(_post_all(url, auth, bodies, concurrency, seconds))
    ok = sum(n for status, n in statuses.items() if status.startswith("2"))
    ordered = sorted(latencies)
    return {
        "concurrency": concurrency,
        "attempted": len(latencies),
        "ok": ok,
        "seconds": round(elapsed, 2),
        "uploads_per_s": round(ok / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1e3, 1) if ordered else None,
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1e3, 1) if ordered else None,
        "statuses": dict(statuses),
    }


class RssSampler(threading.Thread):
    """Samples the summed RSS of the server's processes until stopped; keeps the peak."""

    def __init__(self, pids: Pids, rss: Callable[[list[int]], float]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.rss = rss
        self.peak = 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.peak = max(self.peak, self.rss(self.pids()))
            self.halt.wait(SAMPLE_SECONDS)


def _stream(path: Path, head: bytes, end: bytes) -> Iterator[bytes]:
    yield head
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
    yield end


def large_upload(
    url: str, auth: tuple[str, str], path: Path, pids: Pids, rss: Callable[[list[int]], float]
) -> dict[str, Any]:
    """Upload one large wheel (streamed), sampling the server's RSS throughout."""
    data_size = path.stat().st_size
    boundary = secrets.token_hex(16)
    digest_source = path.read_bytes()  # the digests are fields before the file
    head, end = multipart_parts(path, digest_source, boundary)
    del digest_source
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + data_size + len(end)),
    }
    before = rss(pids())
    sampler = RssSampler(pids, rss)
    sampler.start()
    began = time.perf_counter()
    with httpx.Client(trust_env=False, timeout=600, auth=auth) as client:
        response = client.post(url, content=_stream(path, head, end), headers=headers)
    seconds = time.perf_counter() - began
    time.sleep(1.0)  # let the server finish its bookkeeping before the last reading
    sampler.halt.set()
    sampler.join()
    after = rss(pids())
    return {
        "mb": round(data_size / 1e6, 1),
        "status": response.status_code,
        "seconds": round(seconds, 2),
        "mb_per_s": round(data_size / 1e6 / seconds, 1),
        "rss_mib_before": before,
        "rss_mib_peak": round(max(sampler.peak, after), 1),
        "rss_mib_after": after,
    }


def tiny_wheels(layout: Layout, count: int, tag: str) -> list[str]:
    """``count`` distinct tiny wheels (one project each) for a latency run, reused
    between runs (every run goes into an empty server)."""
    directory = layout.uploads / "latency"
    directory.mkdir(parents=True, exist_ok=True)
    return [
        str(make_wheel(directory / f"lat{tag}{i}-1.0-py3-none-any.whl", f"lat{tag}{i}", "1.0", "x"))
        for i in range(count)
    ]


def latency(layout: Layout, url: str, auth: tuple[str, str], count: int) -> dict[str, Any]:
    """p50/p99 of tiny uploads, sequential then from ``LATENCY_CLIENTS`` clients."""
    return {
        "sequential": concurrent_uploads(url, auth, tiny_wheels(layout, count, "s"), 1, 600),
        "concurrent": concurrent_uploads(
            url, auth, tiny_wheels(layout, count, "c"), LATENCY_CLIENTS, 600
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the upload URL (an empty index)")
    parser.add_argument("-u", "--user", default="bench")
    parser.add_argument("-p", "--password", default="bench")
    parser.add_argument("--seconds", type=float, default=10.0, help="concurrent phase bound")
    parser.add_argument("--latency", type=int, metavar="N", help="only tiny-upload latency")
    parser.add_argument("--out")
    arguments = parser.parse_args()
    layout = Layout(work_dir())
    if arguments.latency:
        auth = (arguments.user, arguments.password)
        found = latency(layout, arguments.url, auth, arguments.latency)
        print(json.dumps(found, indent=1))
        if arguments.out:
            Path(arguments.out).write_text(json.dumps(found, indent=1))
        return
    sets = json.loads(layout.manifest.read_text())["uploads"]
    auth = (arguments.user, arguments.password)
    result = {
        "twine": {
            name: twine_upload(layout, sets[name], arguments.url, auth) for name in ("tiny", "real")
        },
        "concurrent": concurrent_uploads(
            arguments.url, auth, sets["concurrent"], CONCURRENCY, arguments.seconds
        ),
    }
    print(json.dumps(result, indent=1))
    if arguments.out:
        Path(arguments.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
