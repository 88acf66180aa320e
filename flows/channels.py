"""Building the configured outbound channel (``outbound.channels.NAME``) for a run.

Tests and other connectors pass their own SMTP factory or Sent-folder check; a run from the
CLI builds them from the workspace settings.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable

from connectors.channel import Channel
from connectors.outbox import OutboxChannel
from connectors.smtp_send import SentCheck, SmtpChannel, imap_sent_check
from flows.push_config import PushConfig


def build_channel(
    cfg: PushConfig,
    name: str,
    *,
    smtp_connect: Callable[[], smtplib.SMTP] | None = None,
    sent_check: SentCheck | None = None,
) -> Channel:
    cc = cfg.channel_config(name, "channel")
    if cc.type == "outbox":
        folder = cfg.root / cc.path
        return OutboxChannel(folder, name=name)
    connect = smtp_connect or cc.smtp().connect
    if sent_check is None and cc.sent_folder is not None:
        sent_check = imap_sent_check(cc.sent_folder.connect, cc.sent_folder.mailbox)
    return SmtpChannel(connect, name=name, sent_check=sent_check)
