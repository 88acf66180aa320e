"""Building the configured outbound channel (``outbound.channels.NAME``) for a run.

Tests and other connectors pass their own SMTP factory or Sent-folder check; a run from the
CLI builds them from the workspace settings.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from typing import Any

import httpx

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
    if cc.type == "outbox":
        folder = cfg.root / cc.path
        return OutboxChannel(folder, name=name)
    if cc.type == "slack":
        webhook = cc.secret(cc.webhook_env, "webhook_env")
        client = http or httpx.Client(timeout=30.0)
        return SlackChannel(client, webhook, name=name, owns_client=http is None)
    if cc.type == "gmail":
        return _gmail(cfg, cc, name, google_http)
    if cc.type == "m365":
        return _m365(cfg, cc, name, http)
    connect = smtp_connect or cc.smtp().connect
    if sent_check is None and cc.sent_folder is not None:
        sent_check = imap_sent_check(cc.sent_folder.connect, cc.sent_folder.mailbox)
    return SmtpChannel(connect, name=name, sent_check=sent_check)


def _gmail(cfg: PushConfig, cc: ChannelConfig, name: str, http: Any) -> GmailChannel:
    """Acts as ``account`` with its OAuth token, else through the service account."""
    assert cc.account is not None
    where = f"outbound.channels.{name}"
    if cc.oauth_token_env:
        token = resolve_secret(cc.oauth_token_env, file=str(cfg.file), field=where)
        auth = GoogleAuth(user_tokens={cc.account: token})
        env = cc.oauth_token_env
    else:
        assert cc.service_account_key_env is not None
        key = resolve_secret(cc.service_account_key_env, file=str(cfg.file), field=where)
        auth = GoogleAuth(service_account_key=key)
        env = cc.service_account_key_env
    auth = auth.model_copy(update={"reauth_hint": f"The credentials are read from {env}."})
    creds = auth.credentials_for(cc.account, SEND_SCOPES)
    service = build_service("gmail", "v1", credentials=creds, http=http)
    return GmailChannel(service, cc.account, name=name, fix=auth.fix_for(cc.account))


def _m365(cfg: PushConfig, cc: ChannelConfig, name: str, http: httpx.Client | None) -> Channel:
    from flows.sources.m365 import token_source

    assert cc.account and cc.tenant_id and cc.client_id and cc.client_secret_env
    secret = resolve_secret(
        cc.client_secret_env, file=str(cfg.file), field=f"outbound.channels.{name}"
    )
    auth = GraphAuth(
        tenant_id=cc.tenant_id,
        client_id=cc.client_id,
        client_secret=secret,
        reauth_hint=f"The client secret is read from {cc.client_secret_env}.",
    )
    client = http or httpx.Client(timeout=60.0)
    opts = GraphOptions(mailbox=cc.account)
    return GraphSendChannel(client, token_source(auth), opts, name=name, owns_client=http is None)
