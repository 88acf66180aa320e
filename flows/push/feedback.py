"""Closing the unsubscribe loop: bounces, complaints and unsubscribe mails update consent.

A bounce or complaint suppresses an address only as proof: it must quote the Message-ID of
a message Kizuna sent to that address (the delivery ledger); any other report, forged or
about someone else's mail, is counted as ``unproven`` and changes nothing.

Two ways in, one rule set (:mod:`mappings.mail.bounce`, :mod:`mappings.mail.unsubscribe`):

- :func:`apply_feedback` takes raw messages from any mail connector (IMAP, Gmail, Graph, a
  file export) — the hook a sync path calls with the messages it just read;
- :func:`scan_folders` reads the mail folders listed under ``outbound.feedback`` with the
  mail-files reader and its own cursor, so each message is looked at once. The campaign flow
  runs it before sending, so an unsubscribe that arrived is honoured before the next mail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from connectors.files.mailfiles import MailFilesCursor, read_messages
from flows.push.config import PushConfig
from mappings.mail.bounce import suppressions
from mappings.mail.unsubscribe import unsubscribes
from warehouse.activation.consent import record_consent, suppress
from warehouse.activation.ledger import sent_addresses
from warehouse.db import write_transaction
from warehouse.state import StreamKey, load_cursor, now, save_cursor

CONNECTOR = "kizuna-feedback"


@dataclass
class FeedbackResult:
    messages: int = 0
    bounces: int = 0
    complaints: int = 0
    unsubscribes: int = 0
    unproven: int = 0
    """Bounced or complaining recipients of reports that do not quote mail we sent to them
    (forged, or about someone else's mail): counted, never acted on."""

    def add(self, other: FeedbackResult) -> None:
        self.messages += other.messages
        self.bounces += other.bounces
        self.complaints += other.complaints
        self.unsubscribes += other.unsubscribes
        self.unproven += other.unproven


def _apply(
    conn: Connection, cfg: PushConfig, secret: bytes, raws: Iterable[bytes], source: str
) -> FeedbackResult:
    res = FeedbackResult()
    at = now()
    base = cfg.outbound.unsubscribe_address
    for raw in raws:
        res.messages += 1
        verdict = suppressions(
            raw, received=at, source=source, ours=lambda mid: sent_addresses(conn, mid)
        )
        res.unproven += verdict.unproven
        for s in verdict.events:
            suppress(conn, s)
            if s.reason == "bounce":
                res.bounces += 1
            else:
                res.complaints += 1
        for c in unsubscribes(raw, base_address=base, secret=secret, received=at, source=source):
            if record_consent(conn, c):
                res.unsubscribes += 1
    return res


def apply_feedback(
    engine: Engine, cfg: PushConfig, raws: Iterable[bytes], *, source: str
) -> FeedbackResult:
    """Recognise and apply bounces, complaints and unsubscribes among ``raws`` (idempotent)."""
    with write_transaction(engine) as conn:
        return _apply(conn, cfg, cfg.unsubscribe_secret(), raws, source)


def scan_folders(engine: Engine, cfg: PushConfig, *, at: datetime | None = None) -> FeedbackResult:
    total = FeedbackResult()
    secret = cfg.unsubscribe_secret()
    for path in cfg.outbound.feedback:
        root = cfg.root / path
        if not root.exists():
            continue
        key = StreamKey(CONNECTOR, path)
        with engine.connect() as conn:
            raw_cursor = load_cursor(conn, key)
        cursor = MailFilesCursor.model_validate(raw_cursor) if raw_cursor else None
        for page in read_messages(root, cursor):
            with write_transaction(engine) as conn:
                raws = [r["raw"] for r in page.records]
                total.add(_apply(conn, cfg, secret, raws, f"mail folder {path}"))
                save_cursor(conn, key, page.cursor.model_dump(mode="json"), None)
    return total
