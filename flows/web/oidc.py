"""Sign-in through an OpenID Connect provider (Google Workspace, Microsoft 365): the protocol.

The ``web:`` section of the workspace names each provider (issuer, client id, the secret's
environment variable, the mail domains allowed). A sign-in is the authorization-code flow
with ``state`` (this browser started it), ``nonce`` (this ID token was minted for this
attempt) and PKCE (the code is useless to whoever intercepts it). The ID token is checked
with PyJWT against the issuer's published keys (JWKS, fetched again once when a ``kid`` is
unknown, as after a key rotation): signature by an asymmetric algorithm only, ``iss``,
``aud`` (and ``azp`` when there are several audiences), ``exp``/``iat``, then the nonce. The
verified mail address then has to belong to an existing staff account; nothing is created.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows.workspace import Workspace, config_error
from kizuna.errors import ConfigError, KizunaError

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
"""Signatures by a published public key only: ``none`` and HMAC (a key both sides hold)
are refused before any key is looked at."""
LEEWAY_SECONDS = 60
PENDING_SECONDS = 600
"""How long a started sign-in may take at the provider before its state expires."""
CACHE_SECONDS = 3600
REFETCH_SECONDS = 30
MAX_DOCUMENT = 512 * 1024
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class OidcError(KizunaError):
    """A sign-in that did not prove who is signing in; the message is for the audit log."""


class Provider(BaseModel):
    """One OpenID provider under ``web.oidc.<name>``."""

    model_config = ConfigDict(extra="forbid")

    issuer: str
    client_id: str = Field(min_length=1)
    client_secret_env: str = Field(min_length=1)
    allowed_domains: list[str] = Field(min_length=1)
    label: str = ""
    email_claim: str = "email"
    require_email_verified: bool = True
    """Google sends ``email_verified``; for Microsoft Entra use your tenant's own issuer with
    ``email_claim: preferred_username`` and ``require_email_verified: false`` (a tenant's
    user names are in its verified domains)."""

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        u = urlsplit(v)
        local = u.hostname in LOCAL_HOSTS
        if u.scheme != "https" and not (u.scheme == "http" and local):
            raise ValueError("the issuer must be an https:// URL")
        if "{" in v or u.path.rstrip("/").split("/")[-2:-1] in (["common"], ["organizations"]):
            raise ValueError(
                "use your own tenant's issuer (https://login.microsoftonline.com/<tenant id>/v2.0),"
                " not a multi-tenant one"
            )
        return v.rstrip("/")

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        return [d.strip().lower().lstrip("@") for d in v if d.strip()]


class WebConfig(BaseModel):
    """The ``web:`` section: where the app is reached and who signs staff in."""

    model_config = ConfigDict(extra="forbid")

    public_url: str | None = None
    """``https://kizuna.example.co.jp``: the redirect URIs registered at each provider are
    ``<public_url>/sign-in/oidc/<name>/callback`` (default: the address the request came to)."""
    oidc: dict[str, Provider] = Field(default_factory=dict)


def web_config(ws: Workspace) -> WebConfig:
    try:
        cfg = WebConfig.model_validate(ws.web)
    except ValidationError as exc:
        raise config_error(exc, ws.path, "web") from None
    for name in cfg.oidc:
        if not NAME.match(name):
            raise ConfigError(
                f"provider name {name!r} is not allowed",
                file=str(ws.path),
                field="web.oidc",
                fix="use lower-case letters, digits and '-' (it is part of the redirect URI)",
            )
    return cfg


@dataclass(frozen=True)
class Metadata:
    """What the provider's discovery document says, the parts this flow uses."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    secret_in_body: bool


_META: dict[str, tuple[float, Metadata]] = {}
_KEYS: dict[str, tuple[float, dict[str, Any]]] = {}


async def _json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    r = await client.get(url, headers={"accept": "application/json"})
    if r.status_code != 200 or len(r.content) > MAX_DOCUMENT:
        raise OidcError(f"{url} answered {r.status_code}")
    data = r.json()
    if not isinstance(data, dict):
        raise OidcError(f"{url} is not a JSON object")
    return data


async def metadata(client: httpx.AsyncClient, p: Provider) -> Metadata:
    """The provider's endpoints from its discovery document (cached for an hour)."""
    got = _META.get(p.issuer)
    if got is not None and got[0] > time.monotonic():
        return got[1]
    doc = await _json(client, f"{p.issuer}/.well-known/openid-configuration")
    if doc.get("issuer") != p.issuer:
        raise OidcError(f"the discovery document names issuer {doc.get('issuer')!r}")
    try:
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        md = Metadata(
            str(doc["authorization_endpoint"]),
            str(doc["token_endpoint"]),
            str(doc["jwks_uri"]),
            "client_secret_basic" not in methods and "client_secret_post" in methods,
        )
    except KeyError as exc:
        raise OidcError(f"the discovery document lacks {exc}") from None
    _META[p.issuer] = (time.monotonic() + CACHE_SECONDS, md)
    return md


async def _keys(client: httpx.AsyncClient, md: Metadata, fresh: bool) -> dict[str, Any]:
    """The provider's JWKS, cached; ``fresh`` fetches again unless that was done within
    ``REFETCH_SECONDS`` (tokens with made-up ``kid``s must not turn into a flood of fetches)."""
    got = _KEYS.get(md.jwks_uri)
    at = time.monotonic()
    if got is not None and got[0] > at:
        age = CACHE_SECONDS - (got[0] - at)
        if not fresh or age < REFETCH_SECONDS:
            return got[1]
    doc = await _json(client, md.jwks_uri)
    _KEYS[md.jwks_uri] = (time.monotonic() + CACHE_SECONDS, doc)
    return doc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def challenge(verifier: str) -> str:
    """PKCE's S256 challenge of a verifier (RFC 7636)."""
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


def authorize_url(
    md: Metadata, p: Provider, redirect_uri: str, state: str, nonce: str, verifier: str
) -> str:
    query = {
        "response_type": "code",
        "client_id": p.client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid email profile",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    if len(p.allowed_domains) == 1:
        query["hd"] = p.allowed_domains[0]  # Google: offer only accounts of that domain
    sep = "&" if "?" in md.authorization_endpoint else "?"
    return f"{md.authorization_endpoint}{sep}{urlencode(query)}"


async def exchange(
    client: httpx.AsyncClient,
    md: Metadata,
    p: Provider,
    secret: str,
    code: str,
    redirect_uri: str,
    verifier: str,
) -> str:
    """The ID token for an authorization code (the client authenticates with its secret)."""
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": p.client_id,
    }
    headers = {"accept": "application/json"}
    if md.secret_in_body:
        body["client_secret"] = secret
    else:  # RFC 6749 2.3.1: each part form-encoded before Basic's base64
        pair = f"{quote(p.client_id, safe='')}:{quote(secret, safe='')}"
        headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    r = await client.post(md.token_endpoint, data=body, headers=headers)
    if r.status_code != 200 or len(r.content) > MAX_DOCUMENT:
        raise OidcError(f"the token endpoint answered {r.status_code}")
    token = r.json().get("id_token") if isinstance(r.json(), dict) else None
    if not isinstance(token, str):
        raise OidcError("the token endpoint sent no id_token")
    return token


async def verify(
    client: httpx.AsyncClient, md: Metadata, p: Provider, token: str, nonce: str
) -> dict[str, Any]:
    """The ID token's claims once signature, issuer, audience, times and nonce hold."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise OidcError(f"not a signed token ({exc})") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise OidcError(f"signature algorithm {alg!r} refused")
    key = None
    for fresh in (False, True):  # an unknown kid: the provider may have rotated its keys
        try:
            keys = jwt.PyJWKSet.from_dict(await _keys(client, md, fresh)).keys
        except jwt.PyJWTError as exc:
            raise OidcError(f"the provider's keys are unusable ({exc})") from None
        match = [k for k in keys if k.key_id == kid] if kid is not None else keys
        if len(match) == 1:
            key = match[0]
            break
    if key is None:
        raise OidcError(f"no single published key for kid {kid!r}")
    if key.key_type != ("EC" if alg.startswith("ES") else "RSA"):
        raise OidcError(f"key {kid!r} ({key.key_type}) cannot sign {alg}")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key.key,
            algorithms=[alg],
            audience=p.client_id,
            issuer=p.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise OidcError(f"ID token refused: {exc}") from None
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != p.client_id:
        raise OidcError("the token is for several audiences and not authorized for this app")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise OidcError("the nonce does not match this sign-in (a replayed token?)")
    return claims


def email_of(claims: dict[str, Any], p: Provider) -> str:
    """The verified mail address the token asserts, in one of the allowed domains."""
    email = claims.get(p.email_claim)
    if not isinstance(email, str) or "@" not in email:
        raise OidcError(f"the token has no {p.email_claim}")
    if p.require_email_verified and claims.get("email_verified") not in (True, "true"):
        raise OidcError(f"{email} is not verified by the provider")
    if email.rsplit("@", 1)[1].lower() not in p.allowed_domains:
        raise OidcError(f"{email} is outside the allowed domains")
    return email.strip().lower()
