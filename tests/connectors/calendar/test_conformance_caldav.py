"""The conformance suite for the ``caldav`` source, on a real Radicale (sync-collection and
the ctag/etag fallback)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors.calendar.caldav_sync import CaldavCursor
from flows.engine import StreamSpec
from flows.sources import caldav as source_caldav
from flows.workspace import Company, Workspace
from tests.connectors.calendar.test_connectors_caldav import event
from tests.support.conformance import ConformanceSuite, SourceHarness
from tests.support.servers import Radicale
from warehouse.state import load_cursor, save_cursor


class CaldavHarness:
    def __init__(self, server: Radicale, use_sync: bool) -> None:
        self.name = "caldav"
        self.supports_deletes = True
        self.server = server
        self.use_sync = use_sync
        self.url, self.user = server.new_calendar()
        self.names: list[str] = []
        self.ws = Workspace(company=Company(name="絆", domains=["kizuna.example"]))

    def spec(self) -> StreamSpec:
        cfg = source_caldav.Config(
            url=self.server.url,
            username=self.user,
            calendars=[self.url],
            page_size=2,
            use_sync=self.use_sync,
        )
        return source_caldav.streams("calendar", cfg, self.ws)[0]

    def add(self, n: int) -> None:
        for i in range(n):
            name = f"{uuid.uuid4().hex}.ics"
            self.server.put(self.url, self.user, name, event(name, f"打合せ {i}"))
            self.names.append(name)

    def remove(self) -> None:
        self.server.delete(self.url, self.user, self.names.pop(0))

    def expected_ids(self) -> set[str]:
        base = "/" + self.url.split("/", 3)[3]
        return {base + n for n in self.names}

    def force_reset(self, engine: Engine) -> None:
        """The server forgets our token (as after a restore); without sync, the etags."""
        spec = self.spec()
        with engine.begin() as conn:
            stored = CaldavCursor.model_validate(load_cursor(conn, spec.key))
            forgotten = stored.model_copy(
                update={"sync_token": "http://radicale.org/ns/sync/" + "0" * 64}
                if self.use_sync
                else {"ctag": None, "etags": None}
            )
            save_cursor(conn, spec.key, forgotten.model_dump(mode="json"), None)

    def order(self, cursor: Any) -> tuple[Any, ...]:
        # A full pass restarts on a crash, so progress is "has the pass completed".
        assert isinstance(cursor, CaldavCursor)
        return (cursor.sync_token is not None or cursor.ctag is not None,)


class TestCaldavConformance(ConformanceSuite):
    @pytest.fixture(params=["sync-collection", "etag-diff"])
    def harness(
        self, request: pytest.FixtureRequest, radicale_server: Radicale
    ) -> Iterator[SourceHarness]:
        yield CaldavHarness(radicale_server, use_sync=request.param == "sync-collection")
