"""A local OpenID provider over real HTTP: discovery, JWKS with a real RSA key, authorize and
token endpoints, so the web app's OIDC sign-in runs end to end without the internet.

``authorize`` signs in ``email`` at once and redirects back with a code; ``token`` checks the
client's secret, the redirect URI and the PKCE verifier before it mints the ID token.
``tamper`` changes the claims (wrong audience, expired), ``forge_with`` signs with a key the
provider never published (same ``kid``), ``replay`` sends an earlier token again; a new
``key`` and ``kid`` is a key rotation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "kizuna-test-client"
CLIENT_SECRET = "oidc-client-secret-9f2c"
"""Distinctive, so leak tests can grep pages and logs for it."""
KID = "key-1"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class FakeOidc:
    issuer: str = ""
    email: str = ""
    email_verified: bool = True
    key: rsa.RSAPrivateKey = field(default_factory=new_key)
    kid: str = KID
    tamper: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    forge_with: rsa.RSAPrivateKey | None = None
    replay: str | None = None
    issued: list[str] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_calls: int = 0

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    def authorize(self, q: dict[str, str]) -> str:
        """Where the browser goes after signing in: back to the app with a code."""
        code = secrets.token_urlsafe(16)
        self.codes[code] = q
        back = {"code": code, "state": q.get("state", "")}
        return f"{q['redirect_uri']}?{urlencode(back)}"

    def token(self, form: dict[str, str], auth: str | None) -> tuple[int, dict[str, Any]]:
        self.token_calls += 1
        want = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if auth != f"Basic {want}":
            return 401, {"error": "invalid_client"}
        q = self.codes.pop(form.get("code", ""), None)
        if q is None or q.get("redirect_uri") != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "").encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if q.get("code_challenge_method") != "S256" or digest.decode() != q.get("code_challenge"):
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": hashlib.sha256(self.email.encode()).hexdigest()[:20],
            "email": self.email,
            "preferred_username": self.email,  # what Microsoft Entra sends (no email_verified)
            "email_verified": self.email_verified,
            "iat": now,
            "exp": now + 300,
            "nonce": q.get("nonce"),
        }
        if self.tamper is not None:
            claims = self.tamper(claims)
        signer = self.forge_with or self.key
        tok = self.replay or jwt.encode(
            claims, signer, algorithm="RS256", headers={"kid": self.kid}
        )
        self.issued.append(tok)
        return 200, {"id_token": tok, "access_token": "at", "token_type": "Bearer"}


def _handler(idp: FakeOidc) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def _send(self, status: int, body: dict[str, Any] | None, location: str = "") -> None:
            self.send_response(status)
            if location:
                self.send_header("location", location)
            data = json.dumps(body).encode() if body is not None else b""
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            u = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(u.query).items()}
            if u.path == "/.well-known/openid-configuration":
                self._send(200, idp.discovery())
            elif u.path == "/jwks":
                self._send(200, idp.jwks())
            elif u.path == "/authorize":
                self._send(302, None, idp.authorize(q))
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            n = int(self.headers.get("content-length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}
            if urlsplit(self.path).path != "/token":
                self._send(404, {"error": "not found"})
                return
            status, body = idp.token(form, self.headers.get("authorization"))
            self._send(status, body)

    return Handler


@contextmanager
def running(email: str = "") -> Iterator[FakeOidc]:
    """A provider on a free 127.0.0.1 port for the duration of the block."""
    idp = FakeOidc(email=email)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(idp))
    idp.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()
