"""What the Google source types (``gmail``, ``gcal``, ``gpeople``) share: accounts and auth.

A Google source lists the accounts to sync (one stream each) and how to act as them: a
service account key with domain-wide delegation for a whole Workspace domain, and/or an OAuth
authorized-user token per account. Both are *names* of secrets (env vars or Prefect Secret
blocks), resolved only when that account's stream runs, so one missing or revoked secret fails
one stream and the other accounts still sync.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field, field_validator, model_validator

from connectors.google_api import GoogleAuth, build_service
from flows.secrets import block_name, resolve_secret
from flows.sources.common import unique_addresses
from flows.workspace import SourceConfig, Workspace
from warehouse.identity.keys.normalize import normalize_email

STREAM_CHARS = 100


def fit_stream_name(name: str) -> str:
    """Stream names are stored in 100 characters; a longer one keeps its head and a digest."""
    if len(name) <= STREAM_CHARS:
        return name
    digest = hashlib.blake2b(name.encode(), digest_size=6).hexdigest()
    return f"{name[: STREAM_CHARS - 13]}~{digest}"


class GoogleAccountsConfig(SourceConfig):
    accounts: list[str] = Field(min_length=1)
    """Mailbox / calendar addresses to sync, one stream each."""
    service_account_key_env: str | None = None
    """Names the secret holding a service account JSON key (domain-wide delegation)."""
    oauth_token_env: dict[str, str] = Field(default_factory=dict)
    """Account → name of the secret holding its OAuth authorized-user JSON."""

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, v: list[str]) -> list[str]:
        return unique_addresses(v)

    @model_validator(mode="after")
    def _auth_for_every_account(self) -> GoogleAccountsConfig:
        tokens = {normalize_email(k) or k for k in self.oauth_token_env}
        missing = [a for a in self.accounts if a not in tokens]
        if missing and not self.service_account_key_env:
            raise ValueError(
                f"no credentials for {', '.join(missing)}: set service_account_key_env "
                "(domain-wide delegation) or give each account an oauth_token_env entry"
            )
        return self

    def token_env(self, account: str) -> str | None:
        for k, v in self.oauth_token_env.items():
            if (normalize_email(k) or k) == account:
                return v
        return None


def reauth_hint(cfg: GoogleAccountsConfig, account: str) -> str:
    env = cfg.token_env(account)
    if env:
        return (
            f"Run Google's OAuth consent again for {account} and store the new authorized-user "
            f"JSON in {env} (env var or Prefect Secret block {block_name(env)!r})."
        )
    env = cfg.service_account_key_env or ""
    return f"The service account key is read from {env} (Prefect block {block_name(env)!r})."


def auth_for(cfg: GoogleAccountsConfig, ws: Workspace, name: str, account: str) -> GoogleAuth:
    """Resolve the secrets ``account`` needs (only those) into a GoogleAuth."""
    env = cfg.token_env(account)
    where = str(ws.path)
    if env:
        token = resolve_secret(env, file=where, field=f"sources.{name}.oauth_token_env")
        return GoogleAuth(user_tokens={account: token}, reauth_hint=reauth_hint(cfg, account))
    assert cfg.service_account_key_env is not None
    key = resolve_secret(
        cfg.service_account_key_env, file=where, field=f"sources.{name}.service_account_key_env"
    )
    return GoogleAuth(service_account_key=key, reauth_hint=reauth_hint(cfg, account))


def default_service(
    cfg: GoogleAccountsConfig,
    ws: Workspace,
    name: str,
    api: str,
    version: str,
    scopes: list[str],
) -> Any:
    """A factory ``account -> service`` acting as that account, for ``streams()``."""

    def make(account: str) -> Any:
        auth = auth_for(cfg, ws, name, account)
        return build_service(api, version, credentials=auth.credentials_for(account, scopes))

    return make
