"""Push channel types and building the configured channel (``outbound.channels.NAME``) for a run.

A channel type is any object with ``Config`` (a pydantic model with a ``type`` field),
``build(name, config, context) -> Channel`` and ``carries_mail`` (False for reminder-only
channels such as Slack). Types are found through the ``kizuna.channels`` entry-point group;
Kizuna's own (below) are declared in its ``pyproject.toml`` the same way a plugin declares
its own. Tests pass their own SMTP factory, Sent-folder check or HTTP client through the
:class:`ChannelContext`; a run from the CLI builds them from the workspace settings.
"""

from __future__ import annotations

import functools
import importlib
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, SecretStr

from connectors.channel import Channel
from connectors.google_api import GoogleAuth, build_service
from connectors.mail.gmail_send import SEND_SCOPES, GmailChannel
from connectors.mail.graph import GraphAuth, GraphOptions
from connectors.mail.graph_send import GraphSendChannel
from connectors.mail.outbox import OutboxChannel
from connectors.mail.slack_send import SlackChannel
from connectors.mail.smtp_send import SentCheck, SmtpChannel, imap_sent_check
from flows.push.config import ChannelConfig, PushConfig
from flows.secrets import resolve_secret
from flows.sources.registry import installed_entry_points
from kizuna.errors import ConfigError

GROUP = "kizuna.channels"


@dataclass(frozen=True)
class ChannelContext:
    """What a channel type may use to build itself: the workspace folder, the secret resolver,
    and the clients a test injects (``None`` in a real run)."""

    root: Path
    file: Path
    smtp_connect: Callable[[], smtplib.SMTP] | None = None
    sent_check: SentCheck | None = None
    http: httpx.Client | None = None
    google_http: Any = None

    def secret(self, env_name: str, field: str) -> SecretStr:
        """The secret a ``*_env`` field names (environment or Prefect Secret block)."""
        return resolve_secret(env_name, file=str(self.file), field=field)


class ChannelType(Protocol):
    Config: type[BaseModel]
    carries_mail: bool

    def build(self, name: str, config: Any, ctx: ChannelContext) -> Channel: ...


@dataclass(frozen=True)
class Builtin:
    """A built-in channel type; all share ``ChannelConfig`` (one flat model, one table)."""

    build_fn: Callable[[str, ChannelConfig, ChannelContext], Channel]
    carries_mail: bool = True
    Config: type[BaseModel] = ChannelConfig

    def build(self, name: str, config: Any, ctx: ChannelContext) -> Channel:
        return self.build_fn(name, config, ctx)


@functools.cache
def channel_types() -> dict[str, tuple[str, str]]:
    """Installed channel types: name → (entry point value, distribution); built-ins win."""
    out: dict[str, tuple[str, str]] = {}
    for name, value, dist in sorted(
        installed_entry_points(GROUP), key=lambda e: e[2].lower() != "kizuna"
    ):
        out.setdefault(name, (value, dist))
    return out


@functools.cache
def _load(value: str) -> ChannelType:
    mod, _, attr = value.partition(":")
    obj: Any = importlib.import_module(mod)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def channel_type(type_name: str, *, file: str = "", field: str = "") -> ChannelType:
    types = channel_types()
    if type_name not in types:
        raise ConfigError(
            f"unknown channel type {type_name!r}",
            file=file,
            field=field,
            fix=f"use one of: {', '.join(sorted(types))} (a plugin package adds more)",
        )
    return _load(types[type_name][0])


def build_channel(
    cfg: PushConfig,
    name: str,
    *,
    smtp_connect: Callable[[], smtplib.SMTP] | None = None,
    sent_check: SentCheck | None = None,
    http: httpx.Client | None = None,
    google_http: Any = None,
) -> Channel:
    cc = cfg.channel_config(name, "channel")
    ctx = ChannelContext(cfg.root, cfg.file, smtp_connect, sent_check, http, google_http)
    return channel_type(cc.type).build(name, cc, ctx)


def _outbox(name: str, cc: ChannelConfig, ctx: ChannelContext) -> Channel:
    """The folder under ``KIZUNA_STORAGE_URL`` when set (every worker sees what another
    wrote, so a resend after a crash is recognised anywhere), else beside the workspace."""
    from flows.settings import settings

    url = settings().storage_url
    if url and not Path(cc.path).is_absolute():
        from flows.storage import Storage

        st = Storage(url).sub(*Path(cc.path).parts)
        if not st.local:
            return OutboxChannel(st.join(), name=name, fs=st.fs)
        return OutboxChannel(Path(st.join()), name=name)
    return OutboxChannel(ctx.root / cc.path, name=name)


def _slack(name: str, cc: ChannelConfig, ctx: ChannelContext) -> Channel:
    webhook = cc.secret(cc.webhook_env, "webhook_env")
    client = ctx.http or httpx.Client(timeout=30.0)
    return SlackChannel(client, webhook, name=name, owns_client=ctx.http is None)


def _smtp(name: str, cc: ChannelConfig, ctx: ChannelContext) -> Channel:
    connect = ctx.smtp_connect or cc.smtp().connect
    sent_check = ctx.sent_check
    if sent_check is None and cc.sent_folder is not None:
        sent_check = imap_sent_check(cc.sent_folder.connect, cc.sent_folder.mailbox)
    return SmtpChannel(connect, name=name, sent_check=sent_check)


def _gmail(name: str, cc: ChannelConfig, ctx: ChannelContext) -> Channel:
    """Acts as ``account`` with its OAuth token, else through the service account."""
    assert cc.account is not None
    where = f"outbound.channels.{name}"
    if cc.oauth_token_env:
        token = ctx.secret(cc.oauth_token_env, where)
        auth = GoogleAuth(user_tokens={cc.account: token})
        env = cc.oauth_token_env
    else:
        assert cc.service_account_key_env is not None
        key = ctx.secret(cc.service_account_key_env, where)
        auth = GoogleAuth(service_account_key=key)
        env = cc.service_account_key_env
    auth = auth.model_copy(update={"reauth_hint": f"The credentials are read from {env}."})
    creds = auth.credentials_for(cc.account, SEND_SCOPES)
    service = build_service("gmail", "v1", credentials=creds, http=ctx.google_http)
    return GmailChannel(service, cc.account, name=name, fix=auth.fix_for(cc.account))


def _m365(name: str, cc: ChannelConfig, ctx: ChannelContext) -> Channel:
    from flows.sources.m365 import token_source

    assert cc.account and cc.tenant_id and cc.client_id and cc.client_secret_env
    secret = ctx.secret(cc.client_secret_env, f"outbound.channels.{name}")
    auth = GraphAuth(
        tenant_id=cc.tenant_id,
        client_id=cc.client_id,
        client_secret=secret,
        reauth_hint=f"The client secret is read from {cc.client_secret_env}.",
    )
    client = ctx.http or httpx.Client(timeout=60.0)
    opts = GraphOptions(mailbox=cc.account)
    owns = ctx.http is None
    return GraphSendChannel(client, token_source(auth), opts, name=name, owns_client=owns)


OUTBOX = Builtin(_outbox)
SMTP = Builtin(_smtp)
SLACK = Builtin(_slack, carries_mail=False)
GMAIL = Builtin(_gmail)
M365 = Builtin(_m365)
