"""The conformance suite for the ``salesforce`` source, on the local HTTPS fake org."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors.crm import salesforce as sf
from connectors.crm.salesforce_values import parse_sf_datetime, soql_datetime
from flows.engine import StreamSpec
from flows.sources.crm import salesforce as src
from flows.workspace import Company, Workspace
from tests.support.conformance import ConformanceSuite, SourceHarness
from tests.support.fakes.fake_salesforce import FakeSalesforce
from tests.support.fakes.fake_salesforce_org import stamp
from warehouse.state import load_cursor, save_cursor


class SalesforceHarness:
    supports_deletes = True

    def __init__(self, fake: FakeSalesforce, tmp_path: Path) -> None:
        self.name = "salesforce"
        self.fake = fake
        fake.org.page_size = 2
        self.clock = datetime.now(UTC) - timedelta(hours=1)
        self.n = 0
        self.ws = Workspace(company=Company(name="自社"), path=tmp_path / "k.yaml")
        cfg = src.Config.model_validate(
            {
                "type": "salesforce",
                "auth": {"client_id": "x", "refresh_token_env": "RT"},
                "objects": {"Account": {}},
            }
        )
        (self._spec,) = src.streams("sfdc", cfg, self.ws, client=fake.client())

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def spec(self) -> StreamSpec:
        return self._spec

    def add(self, n: int) -> None:
        for _ in range(n):
            self.n += 1
            self.fake.org.add(
                "Account",
                {"Name": f"株式会社コンフォーム{self.n}", "Website": f"c{self.n}.co.jp"},
                self._tick(),
            )

    def remove(self) -> None:
        rec = next(r for r in self.fake.org.records["Account"] if not r["IsDeleted"])
        rec["IsDeleted"] = True  # to the recycle bin: queryAll still sees it
        rec["SystemModstamp"] = stamp(self._tick())

    def expected_ids(self) -> set[str]:
        return {r["Id"] for r in self.fake.org.records.get("Account", []) if not r["IsDeleted"]}

    def force_reset(self, engine: Engine) -> None:
        # The delete log no longer reaches our last look (15 days): the connector must resync.
        with engine.begin() as conn:
            cur = load_cursor(conn, self._spec.key) or {}
            old = datetime.now(UTC) - timedelta(days=20)
            cur["deleted_checked"] = soql_datetime(old)
            save_cursor(conn, self._spec.key, cur, "reset")

    def order(self, cursor: Any) -> tuple[Any, ...]:
        assert isinstance(cursor, sf.SalesforceCursor)
        hw = parse_sf_datetime(cursor.hw) if cursor.hw else datetime.min.replace(tzinfo=UTC)
        checked = cursor.deleted_checked or ""
        return (hw, checked)


class TestSalesforceConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[SourceHarness]:
        with FakeSalesforce() as fake:
            yield SalesforceHarness(fake, tmp_path)
