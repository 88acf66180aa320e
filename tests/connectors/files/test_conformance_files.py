"""The conformance suite for the local-file sources: ``mail`` (a folder of .eml files) and
``ics`` (a folder of calendar files). Their "reset" is a lost cursor: the engine re-reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors.files.icsfiles import IcsCursor
from connectors.files.mailfiles import MailFilesCursor
from flows.engine import StreamSpec
from flows.sources import ics as source_ics
from flows.sources import mail as source_mail
from flows.workspace import Company, Workspace
from mappings.mail.message import message_id_of
from tests.connectors.calendar.test_connectors_caldav import event
from tests.support.conformance import ConformanceSuite, SourceHarness
from tests.support.servers import message
from warehouse.state import reset_cursor

WS = Workspace(company=Company(name="絆", domains=["kizuna.example"]))


def _reset(engine: Engine, spec: StreamSpec) -> None:
    with engine.begin() as conn:
        reset_cursor(conn, spec.key)


class MailFolderHarness:
    name = "mail"
    supports_deletes = False  # an archive: removing a file does not undo the mail

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()

    def spec(self) -> StreamSpec:
        cfg = source_mail.Config(path=str(self.root), format="eml", page_size=2)
        return source_mail.streams("archive", cfg, WS)[0]

    def add(self, n: int) -> None:
        for i in range(n):
            mid = f"<{uuid.uuid4().hex}@customer.co.jp>"
            (self.root / f"{uuid.uuid4().hex}.eml").write_bytes(message(f"件名 {i}", msgid=mid))

    def remove(self) -> None:  # pragma: no cover - supports_deletes is False
        raise NotImplementedError

    def expected_ids(self) -> set[str]:
        """One source record per file (two copies of a message are two records)."""
        assert all(message_id_of(p.read_bytes()) for p in self.root.glob("*.eml"))
        return {p.name for p in self.root.glob("*.eml")}

    def force_reset(self, engine: Engine) -> None:
        _reset(engine, self.spec())

    def order(self, cursor: Any) -> tuple[Any, ...]:
        assert isinstance(cursor, MailFilesCursor)
        marks = [cursor.dirs[k] for k in sorted(cursor.dirs)]
        # Completed watermark, then "a pass is under way", then how far that pass got.
        return tuple(
            (m.stamp, 1, m.pending.after) if m.pending is not None else (m.stamp, 0, "")
            for m in marks
        )


class IcsFolderHarness:
    name = "ics"
    supports_deletes = True

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()

    def spec(self) -> StreamSpec:
        cfg = source_ics.Config(path=str(self.root), page_size=2)
        return source_ics.streams("calendar-files", cfg, WS)[0]

    def add(self, n: int) -> None:
        for i in range(n):
            uid = f"{uuid.uuid4().hex}@kizuna"
            (self.root / f"{uid}.ics").write_text(event(uid, f"定例 {i}"), encoding="utf-8")

    def remove(self) -> None:
        sorted(self.root.glob("*.ics"))[0].unlink()

    def expected_ids(self) -> set[str]:
        return {p.name.removesuffix(".ics") for p in self.root.glob("*.ics")}

    def force_reset(self, engine: Engine) -> None:
        _reset(engine, self.spec())

    def order(self, cursor: Any) -> tuple[Any, ...]:
        assert isinstance(cursor, IcsCursor)
        return (len(cursor.files),)


class TestLocalFileConformance(ConformanceSuite):
    @pytest.fixture(params=["mail", "ics"])
    def harness(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SourceHarness]:
        if request.param == "mail":
            yield MailFolderHarness(tmp_path / "mail")
        else:
            yield IcsFolderHarness(tmp_path / "calendars")
