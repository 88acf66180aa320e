"""The conformance suite for the ``imap`` source, on a real Dovecot, with and without QRESYNC."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors.mail.imap import ImapCursor, source_id
from flows.engine import StreamSpec
from flows.sources import imap as source_imap
from flows.workspace import Company, Workspace
from tests.support.conformance import ConformanceSuite, SourceHarness
from tests.support.servers import PASSWORD, Dovecot, message


class ImapHarness:
    def __init__(self, server: Dovecot, user: str, use_extensions: bool) -> None:
        self.name = "imap"
        self.supports_deletes = True
        self.server = server
        self.user = user
        self.use_extensions = use_extensions
        self.ws = Workspace(company=Company(name="絆", domains=["kizuna.example"]))

    def spec(self) -> StreamSpec:
        cfg = source_imap.Config(
            host=self.server.host,
            port=self.server.port,
            security="none",
            username=self.user,
            password_env="KIZUNA_TEST_IMAP_PASSWORD",
            folders=["INBOX"],
            page_size=2,
            use_extensions=self.use_extensions,
            privacy={"capture": "all", "exclude_internal": False},
        )
        return source_imap.streams("mailbox", cfg, self.ws)[0]

    def add(self, n: int) -> None:
        for i in range(n):
            mid = f"<{uuid.uuid4().hex}@customer.co.jp>"
            self.server.append(self.user, "INBOX", message(f"商談メモ {i}", msgid=mid))

    def _uids(self) -> tuple[int, list[int]]:
        conn = self.server.login(self.user)
        try:
            conn.select("INBOX", readonly=True)
            validity = int(conn.untagged_responses["UIDVALIDITY"][0])
            _, data = conn.uid("SEARCH", "ALL")
            return validity, [int(x) for x in data[0].split()]
        finally:
            conn.logout()

    def remove(self) -> None:
        _, uids = self._uids()
        conn = self.server.login(self.user)
        try:
            conn.select("INBOX")
            conn.uid("STORE", str(uids[0]), "+FLAGS.SILENT", r"(\Deleted)")
            conn.expunge()
        finally:
            conn.logout()

    def expected_ids(self) -> set[str]:
        validity, uids = self._uids()
        return {source_id("INBOX", validity, u) for u in uids}

    def force_reset(self, engine: Engine) -> None:
        validity, _ = self._uids()
        self.server.doveadm(
            "mailbox", "update", "-u", self.user, "--uid-validity", str(validity + 1), "INBOX"
        )

    def order(self, cursor: Any) -> tuple[Any, ...]:
        assert isinstance(cursor, ImapCursor)
        return (cursor.uidvalidity, cursor.uidnext, cursor.highestmodseq)


class TestImapConformance(ConformanceSuite):
    @pytest.fixture(params=["qresync", "uid-diff"])
    def harness(
        self,
        request: pytest.FixtureRequest,
        dovecot_server: Dovecot,
        dovecot_plain: Dovecot,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Iterator[SourceHarness]:
        monkeypatch.setenv("KIZUNA_TEST_IMAP_PASSWORD", PASSWORD)
        server = dovecot_server if request.param == "qresync" else dovecot_plain
        yield ImapHarness(server, server.new_user(), use_extensions=True)
