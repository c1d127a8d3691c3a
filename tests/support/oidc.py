"""A stand-in for a CI provider's OpenID Connect token service, on 127.0.0.1.

``Issuer`` holds a signing key made here and signs identity tokens with the claims a
GitHub Actions or GitLab CI run carries; its JWKS is written to a file that the
server is given with ``--oidc-jwks ISSUER=FILE``, so nothing is fetched from the
public issuers. ``ActionsTokenService`` answers as GitHub Actions' token endpoint
does (``ACTIONS_ID_TOKEN_REQUEST_URL``, with ``&audience=…`` and the bearer
``ACTIONS_ID_TOKEN_REQUEST_TOKEN``), for uv's real trusted-publishing flow.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ministry.core.trusted_publishing import DEFAULT_ISSUERS

__all__ = ["ActionsTokenService", "Issuer", "actions_token_service"]


@dataclass
class Issuer:
    """A signing key and the issuer URL its tokens name."""

    url: str = DEFAULT_ISSUERS["github"]
    key_id: str = field(default_factory=lambda: secrets.token_hex(4))
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwks(self) -> dict[str, Any]:
        """The public key as a JSON Web Key Set."""
        public = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.key_id, "use": "sig", "alg": "RS256"}]}

    def write_jwks(self, path: Path) -> str:
        """Write the JWKS and return the ``--oidc-jwks`` value naming it."""
        path.write_text(json.dumps(self.jwks()))
        return f"{self.url}={path}"

    def server_arguments(self, directory: Path, audience: str) -> list[str]:
        """The ``ministry serve`` flags that make a server trust this issuer: its keys
        from a file written in ``directory``, and the audience its tokens name."""
        pinned = self.write_jwks(directory / f"jwks-{self.key_id}.json")
        return ["--oidc-jwks", pinned, "--oidc-audience", audience]

    def github_claims(
        self,
        repository: str,
        workflow: str,
        audience: str,
        *,
        environment: str | None = None,
        lifetime: int = 300,
        **changes: Any,
    ) -> dict[str, Any]:
        """What a GitHub Actions run's identity token says."""
        now = int(time.time())
        owner = repository.split("/")[0]
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": audience,
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime,
            "jti": secrets.token_hex(16),
            "sub": f"repo:{repository}:ref:refs/tags/v1.0",
            "repository": repository,
            "repository_owner": owner,
            "repository_id": "4242",
            "repository_owner_id": "1717",
            "job_workflow_ref": f"{repository}/.github/workflows/{workflow}@refs/tags/v1.0",
            "workflow_ref": f"{repository}/.github/workflows/{workflow}@refs/tags/v1.0",
            "ref": "refs/tags/v1.0",
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "run_id": "987654",
            "run_attempt": "1",
        }
        if environment is not None:
            claims["environment"] = environment
        claims.update(changes)
        return claims

    def gitlab_claims(
        self, project: str, ci_file: str, audience: str, **changes: Any
    ) -> dict[str, Any]:
        """What a GitLab CI job's identity token says."""
        now = int(time.time())
        host = urlsplit(self.url).netloc
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": audience,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
            "jti": secrets.token_hex(16),
            "project_path": project,
            "namespace_path": project.rsplit("/", 1)[0],
            "project_id": "31",
            "namespace_id": "7",
            "ci_config_ref_uri": f"{host}/{project}//{ci_file}@refs/heads/main",
            "ref": "main",
            "pipeline_id": "555",
            "job_id": "556",
        }
        claims.update(changes)
        return claims

    def sign(self, claims: Mapping[str, Any], **header: Any) -> str:
        """The claims as a JWT signed with this issuer's key."""
        return jwt.encode(
            dict(claims), self.key, algorithm="RS256", headers={"kid": self.key_id, **header}
        )


class ActionsTokenService:
    """GitHub Actions' ID-token endpoint: signs the claims it is given for the audience asked."""

    def __init__(self, issuer: Issuer, claims: Mapping[str, Any]) -> None:
        self.issuer = issuer
        self.claims = dict(claims)
        self.request_token = secrets.token_urlsafe(16)
        self.audiences: list[str] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if (
                    self.headers.get("Authorization", "").lower()
                    != f"bearer {service.request_token}".lower()
                ):
                    self.send_error(401)
                    return
                audience = parse_qs(urlsplit(self.path).query).get("audience", [""])[0]
                service.audiences.append(audience)
                now = int(time.time())
                claims = {**service.claims, "aud": audience, "iat": now, "nbf": now - 5,
                          "exp": now + 300, "jti": secrets.token_hex(16)}  # fmt: skip
                body = json.dumps({"value": service.issuer.sign(claims)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        """``ACTIONS_ID_TOKEN_REQUEST_URL``: clients append ``&audience=…``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/token?api-version=2.0"


@contextmanager
def actions_token_service(
    issuer: Issuer, claims: Mapping[str, Any]
) -> Iterator[ActionsTokenService]:
    """The token service, serving on a thread while the block runs."""
    service = ActionsTokenService(issuer, claims)
    thread = threading.Thread(target=service._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service._server.shutdown()
        service._server.server_close()
