"""The conformance suite for the ``gcal`` source, on a stateful fake Google Calendar."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors.calendar.gcal import GcalCursor
from connectors.throttle import RetryPolicy, TokenBucket
from flows.engine import StreamSpec
from flows.sources import gcal as source_gcal
from flows.workspace import Company, Workspace
from tests.support.conformance import ConformanceSuite, SourceHarness
from tests.support.fakes.fake_gcal import FakeCalendar
from tests.support.fakes.google_fakes import service


class GcalHarness:
    def __init__(self, tmp_path: Path) -> None:
        self.name = "gcal"
        self.supports_deletes = True
        self.cal = FakeCalendar()
        self.ws = Workspace(
            company=Company(name="アワコ", domains=["ourco.co.jp"]), path=tmp_path / "k.yaml"
        )

    def spec(self) -> StreamSpec:
        cfg = source_gcal.Config(
            accounts=[self.cal.account], service_account_key_env="UNUSED", page_size=2
        )
        (spec,) = source_gcal.streams(
            "gcal",
            cfg,
            self.ws,
            service_for=lambda _a: service("calendar", "v3", self.cal),  # type: ignore[arg-type]
            options={
                "policy": RetryPolicy(max_retries=0, sleep=lambda s: None),
                "budget": TokenBucket(1e6, 1e6),
            },
            now=lambda: datetime(2026, 3, 1, tzinfo=UTC),
        )
        return spec

    def add(self, n: int) -> None:
        for _ in range(n):
            self.cal.add()

    def remove(self) -> None:
        self.cal.delete(sorted(self.cal.items)[0])

    def expected_ids(self) -> set[str]:
        return set(self.cal.items)

    def force_reset(self, engine: Engine) -> None:
        self.cal.expire()

    def order(self, cursor: Any) -> tuple[Any, ...]:
        assert isinstance(cursor, GcalCursor)
        if cursor.page_token:
            _, upto, offset = (int(x) for x in cursor.page_token.split("."))
            return (upto, 0, offset)
        assert cursor.sync_token is not None
        return (int(cursor.sync_token), 1, 0)


class TestGcalConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[SourceHarness]:
        yield GcalHarness(tmp_path)


def test_expired_token_full_pass_keeps_the_first_window(engine: Engine, tmp_path: Path) -> None:
    from flows.engine import run_stream

    h = GcalHarness(tmp_path)
    h.add(3)
    spec = h.spec()
    run_stream(engine, spec, "r1")
    first_window = h.cal.requests[0]["timeMin"]
    h.cal.expire()
    h.cal.requests.clear()
    result = run_stream(engine, spec, "r2")
    assert not result.resynced  # handled in the connector, from the stored window
    assert [q.get("timeMin") for q in h.cal.requests] == [None, first_window, first_window]
