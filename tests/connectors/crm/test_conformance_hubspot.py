"""The conformance suite for the ``hubspot`` source (companies), on the respx fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors.crm import hubspot as hs
from flows.engine import StreamSpec
from flows.sources.crm import hubspot as src
from flows.workspace import Company, Workspace
from tests.support.conformance import ConformanceSuite, SourceHarness
from tests.support.fakes.fake_hubspot import FakeHubSpot
from warehouse.state import reset_cursor


class HubSpotHarness:
    supports_deletes = True

    def __init__(self, tmp_path: Path) -> None:
        self.name = "hubspot"
        self.fake = FakeHubSpot()
        self.n = 0
        ws = Workspace(company=Company(name="自社"), path=tmp_path / "k.yaml")
        cfg = src.Config.model_validate(
            {
                "type": "hubspot",
                "token_env": "HS",
                "objects": {"companies": {}},
                "page_size": 2,
                "searches_per_second": 1e6,
            }
        )
        (self._spec,) = src.streams("hubspot", cfg, ws, client=self.fake.client())

    def spec(self) -> StreamSpec:
        return self._spec

    def add(self, n: int) -> None:
        for _ in range(n):
            self.n += 1
            self.fake.add("companies", {"name": f"株式会社{self.n}", "domain": f"c{self.n}.co.jp"})

    def remove(self) -> None:
        live = sorted(
            (r for r in self.fake.objects["companies"].values() if not r["archived"]),
            key=lambda r: int(r["id"]),
        )
        live[0]["archived"] = True

    def expected_ids(self) -> set[str]:
        return {
            rid for rid, r in self.fake.objects.get("companies", {}).items() if not r["archived"]
        }

    def force_reset(self, engine: Engine) -> None:
        # HubSpot has no cursor to expire: a reset is the stored mark being dropped.
        with engine.begin() as conn:
            reset_cursor(conn, self._spec.key)

    def order(self, cursor: Any) -> tuple[Any, ...]:
        assert isinstance(cursor, hs.HubSpotCursor)
        return (cursor.hw if cursor.hw is not None else -1, int(cursor.after or 0))


class TestHubSpotConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[SourceHarness]:
        yield HubSpotHarness(tmp_path)
