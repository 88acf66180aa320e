"""The conformance suite for the ``m365`` source's mail streams, on a stateful fake folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import Engine

from connectors.mail.graph import DeltaCursor
from connectors.throttle import RetryPolicy, TokenBucket
from flows.engine import StreamSpec
from flows.sources import m365 as source_m365
from flows.workspace import Company, Workspace
from tests.support.conformance import ConformanceSuite, SourceHarness
from tests.support.fakes.fake_graph import FakeFolder, serve
from tests.support.fakes.graph_fakes import CLIENT, SECRET, TENANT


class GraphHarness:
    def __init__(self, tmp_path: Path, calendar: bool = False) -> None:
        self.name = "m365"
        self.supports_deletes = True
        self.folder = FakeFolder(calendar=calendar)
        self.ws = Workspace(
            company=Company(name="アワコ", domains=["ourco.co.jp"]), path=tmp_path / "k.yaml"
        )

    def spec(self) -> StreamSpec:
        cfg = source_m365.Config(
            tenant_id=TENANT,
            client_id=CLIENT,
            client_secret_env="KZ_CONFORMANCE_M365_SECRET",
            mailboxes=[self.folder.mailbox],
            folders=[self.folder.folder],
            mail=not self.folder.calendar,
            calendar=self.folder.calendar,
            page_size=2,
        )
        options = {
            "policy": RetryPolicy(max_retries=0, sleep=lambda s: None),
            "budget": TokenBucket(1e6, 1e6),
        }
        (spec,) = source_m365.streams("m365", cfg, self.ws, options=options)
        return spec

    def add(self, n: int) -> None:
        for _ in range(n):
            self.folder.add()

    def remove(self) -> None:
        self.folder.delete(sorted(self.folder.items)[0])

    def expected_ids(self) -> set[str]:
        return set(self.folder.items)

    def force_reset(self, engine: Engine) -> None:
        self.folder.expire()

    def order(self, cursor: Any) -> tuple[Any, ...]:
        assert isinstance(cursor, DeltaCursor)
        q = {k: v[0] for k, v in parse_qs(urlparse(cursor.link).query).items()}
        if "$deltatoken" in q:
            return (int(q["$deltatoken"]), 1, 0)
        _, upto, offset = (int(x) for x in q["$skiptoken"].split("."))
        return (upto, 0, offset)


class TestGraphMailConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SourceHarness]:
        monkeypatch.setenv("KZ_CONFORMANCE_M365_SECRET", SECRET)
        source_m365._tokens.clear()
        h = GraphHarness(tmp_path)
        with serve(h.folder):
            yield h


class TestGraphCalendarConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SourceHarness]:
        monkeypatch.setenv("KZ_CONFORMANCE_M365_SECRET", SECRET)
        source_m365._tokens.clear()
        h = GraphHarness(tmp_path, calendar=True)
        with serve(h.folder):
            yield h
