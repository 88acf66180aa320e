"""The conformance suite for the ``kintone`` source, on the respx fake (Japanese field codes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors.crm import kintone as kt
from flows.engine import StreamSpec
from flows.sources.crm import kintone as src
from flows.workspace import Company, Workspace
from tests.support.conformance import ConformanceSuite, SourceHarness
from tests.support.fakes.fake_kintone import BASE, FakeKintone
from warehouse.db import make_engine, upgrade
from warehouse.state import reset_cursor

APP = 5


class KintoneHarness:
    supports_deletes = True

    def __init__(self, tmp_path: Path, mode: str) -> None:
        self.name = "kintone"
        self.fake = FakeKintone()
        self.fake.app(APP, {"会社名": "SINGLE_LINE_TEXT", "ウェブサイト": "LINK"})
        self.n = 0
        ws = Workspace(company=Company(name="自社"), path=tmp_path / "k.yaml")
        cfg = src.Config.model_validate(
            {
                "type": "kintone",
                "base_url": BASE,
                "apps": {
                    "customers": {
                        "app": APP,
                        "token_env": "KT",
                        "entity": "organization",
                        "field_map": {"name": "会社名", "domain": "ウェブサイト"},
                        "page_size": 2,
                        "mode": mode,
                    }
                },
            }
        )
        (self._spec,) = src.streams("kintone", cfg, ws, client=self.fake.client())

    def spec(self) -> StreamSpec:
        return self._spec

    def add(self, n: int) -> None:
        for _ in range(n):
            self.n += 1
            self.fake.add(
                APP, {"会社名": f"株式会社{self.n}", "ウェブサイト": f"https://c{self.n}.co.jp"}
            )

    def remove(self) -> None:
        del self.fake.apps[APP].records[min(self.fake.apps[APP].records)]

    def expected_ids(self) -> set[str]:
        return {str(i) for i in self.fake.apps[APP].records}

    def force_reset(self, engine: Engine) -> None:
        # kintone has no cursor to expire between runs: a reset is the stored mark dropped.
        with engine.begin() as conn:
            reset_cursor(conn, self._spec.key)

    def order(self, cursor: Any) -> tuple[Any, ...]:
        assert isinstance(cursor, kt.KintoneCursor)
        return (cursor.passes, 0 if cursor.pass_started else 1, cursor.last_id or 0)


class TestKintoneSeekConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[SourceHarness]:
        yield KintoneHarness(tmp_path, "seek")


class TestKintoneCursorApiConformance(ConformanceSuite):
    """The cursor-API read path; the warehouse side is the seek suite's, so SQLite suffices."""

    @pytest.fixture
    def engine(self, tmp_path: Path) -> Iterator[Engine]:
        eng = make_engine(f"sqlite:///{tmp_path / 'wh.db'}")
        upgrade(eng)
        yield eng
        eng.dispose()

    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[SourceHarness]:
        yield KintoneHarness(tmp_path, "cursor")
