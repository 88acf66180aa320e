"""Logging in to Salesforce: a small settings model that builds a ``simple_salesforce`` client.

Three ways, as orgs use them: an OAuth refresh token (the connected app flow an admin runs
once; simple-salesforce has no refresh grant, so it is done here), a JWT bearer assertion
(server-to-server, a certificate on the connected app) and username + password + security
token. Secrets are named by ``*_env`` fields and resolved by the caller; none is ever put in
an error message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import requests
from pydantic import BaseModel, ConfigDict, SecretStr
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors.crm.salesforce import API_VERSION
from connectors.crm.salesforce_errors import translate
from kizuna.errors import AuthError, TransientError, from_http_status


class SalesforceAuth(BaseModel):
    """How to log in; secrets are named by ``*_env`` and resolved by the caller to SecretStr.

    - ``oauth_refresh``: connected app ``client_id`` (+ secret) and a refresh token;
    - ``jwt``: connected app ``client_id``, ``username`` and the PEM private key;
    - ``password``: ``username``, password and security token.
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["oauth_refresh", "jwt", "password"] = "oauth_refresh"
    domain: str = "login"
    """``login``, ``test`` (sandboxes) or a My Domain host prefix."""
    instance_url: str | None = None
    version: str = API_VERSION
    client_id: str | None = None
    client_secret_env: str | None = None
    refresh_token_env: str | None = None
    username: str | None = None
    password_env: str | None = None
    security_token_env: str | None = None
    private_key_env: str | None = None


Resolve = Callable[[str, str], SecretStr]
"""(env var name, config field) → secret; the flow passes ``flows.secrets.resolve_secret``."""


def connect(
    auth: SalesforceAuth, resolve: Resolve, session: requests.Session | None = None
) -> Salesforce:
    """A logged-in client; the refresh-token grant is done here (simple-salesforce lacks it)."""
    s = session or requests.Session()

    def need(value: str | None, name: str) -> str:
        if not value:
            raise AuthError(f"salesforce auth method {auth.method!r} needs `{name}`")
        return value

    try:
        if auth.method == "password":
            return Salesforce(
                username=need(auth.username, "username"),
                password=resolve(
                    need(auth.password_env, "password_env"), "password_env"
                ).get_secret_value(),
                security_token=resolve(
                    need(auth.security_token_env, "security_token_env"), "security_token_env"
                ).get_secret_value(),
                domain=auth.domain,
                version=auth.version,
                session=s,
            )
        if auth.method == "jwt":
            return Salesforce(
                username=need(auth.username, "username"),
                consumer_key=need(auth.client_id, "client_id"),
                privatekey=resolve(
                    need(auth.private_key_env, "private_key_env"), "private_key_env"
                ).get_secret_value(),
                domain=auth.domain,
                version=auth.version,
                session=s,
            )
        data = {
            "grant_type": "refresh_token",
            "client_id": need(auth.client_id, "client_id"),
            "refresh_token": resolve(
                need(auth.refresh_token_env, "refresh_token_env"), "refresh_token_env"
            ).get_secret_value(),
        }
        if auth.client_secret_env:
            data["client_secret"] = resolve(
                auth.client_secret_env, "client_secret_env"
            ).get_secret_value()
        resp = s.post(f"https://{auth.domain}.salesforce.com/services/oauth2/token", data=data)
        if resp.status_code != 200:
            body = _json_or_empty(resp)
            err = str(body.get("error") or resp.status_code)
            if resp.status_code in (400, 401):
                # invalid_grant: revoked or expired refresh token; never echo the token.
                raise AuthError(f"salesforce refused the refresh token ({err}); re-authorise")
            raise from_http_status(resp.status_code, f"salesforce token endpoint: {err}")
        token = resp.json()
        return Salesforce(
            instance_url=auth.instance_url or token["instance_url"],
            session_id=token["access_token"],
            version=auth.version,
            session=s,
        )
    except SalesforceError as exc:
        raise translate(exc) from None
    except requests.RequestException as exc:
        raise TransientError(f"salesforce login: {type(exc).__name__}") from None
    except Exception as exc:  # SalesforceAuthenticationFailed and friends
        if exc.__class__.__name__.startswith("Salesforce"):
            raise AuthError(f"salesforce login failed ({exc.__class__.__name__})") from None
        raise


def _json_or_empty(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
