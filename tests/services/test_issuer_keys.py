"""An issuer's signing keys: fetched through its discovery document, kept, fetched again
for a key id not yet seen (at most once a minute), and never from an internal address
the operator has not allowed. The issuer is a loopback server started here."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ministry.errors import InvalidRequest, UpstreamUnavailable
from ministry.services.issuer_keys import IssuerKeys, UnknownKey
from support.oidc import Issuer
from support.services import in_event_loop


class IssuerSite:
    """An issuer's discovery document and JWKS; counts the requests for each."""

    def __init__(self) -> None:
        self.keys: list[Issuer] = [Issuer()]
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {"issuer": site.url, "jwks_uri": f"{site.url}/jwks"}
                elif self.path == "/jwks":
                    body = {"keys": [k for issuer in site.keys for k in issuer.jwks()["keys"]]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def site() -> Iterator[IssuerSite]:
    served = IssuerSite()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@in_event_loop
async def test_keys_are_fetched_once_then_again_for_a_new_key_id(site: IssuerSite) -> None:
    clock = Clock()
    keys = IssuerKeys((), allow_internal=["127.0.0.1"], clock=clock)
    try:
        first = site.keys[0]
        assert (await keys.key(site.url, first.key_id)).key_id == first.key_id
        assert await keys.key(site.url, first.key_id) is not None
        assert site.requests == ["/.well-known/openid-configuration", "/jwks"]
        rotated = Issuer()
        site.keys.append(rotated)
        # A key id seen for the first time soon after a fetch: not fetched again yet.
        clock.now += 10
        with pytest.raises(UnknownKey):
            await keys.key(site.url, rotated.key_id)
        assert len(site.requests) == 2
        clock.now += 60
        assert (await keys.key(site.url, rotated.key_id)).key_id == rotated.key_id
        assert len(site.requests) == 4
        with pytest.raises(UnknownKey):
            await keys.key(site.url, "made-up")
        assert len(site.requests) == 4  # made-up ids cannot make it hammer the issuer
    finally:
        await keys.close()


@in_event_loop
async def test_an_issuer_on_an_internal_address_is_not_fetched_unless_allowed(
    site: IssuerSite,
) -> None:
    keys = IssuerKeys(())
    try:
        with pytest.raises(UpstreamUnavailable):
            await keys.key(site.url, site.keys[0].key_id)
        assert site.requests == []
    finally:
        await keys.close()


def test_pinned_keys_are_read_from_their_file_and_a_bad_file_is_named(tmp_path: Path) -> None:
    issuer = Issuer()
    good = tmp_path / "good.json"
    issuer.write_jwks(good)
    keys = IssuerKeys([(issuer.url, good)])
    assert issuer.url in keys.pinned
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidRequest, match=r"bad\.json"):
        IssuerKeys([(issuer.url, bad)])
    with pytest.raises(InvalidRequest, match="cannot read"):
        IssuerKeys([(issuer.url, tmp_path / "missing.json")])
