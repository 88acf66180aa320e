"""Building the configured outbound channel (``outbound.channels.NAME``) for a run.

Tests and other connectors pass their own SMTP factory or Sent-folder check; a run from the
CLI builds them from the workspace settings.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable

import httpx

from connectors.channel import Channel
from connectors.outbox import OutboxChannel
from connectors.slack_send import SlackChannel
from connectors.smtp_send import SentCheck, SmtpChannel, imap_sent_check
from flows.push_config import PushConfig


def build_channel(
    cfg: PushConfig,
    name: str,
    *,
    smtp_connect: Callable[[], smtplib.SMTP] | None = None,
    sent_check: SentCheck | None = None,
    http: httpx.Client | None = None,
) -> Channel:
    cc = cfg.channel_config(name, "channel")
    if cc.type == "outbox":
        folder = cfg.root / cc.path
        return OutboxChannel(folder, name=name)
    if cc.type == "slack":
        webhook = cc.secret(cc.webhook_env, "webhook_env")
        return SlackChannel(http or httpx.Client(timeout=30.0), webhook, name=name)
    connect = smtp_connect or cc.smtp().connect
    if sent_check is None and cc.sent_folder is not None:
        sent_check = imap_sent_check(cc.sent_folder.connect, cc.sent_folder.mailbox)
    return SmtpChannel(connect, name=name, sent_check=sent_check)
