"""Times as the company reads them: a mail at 10:00 JST is shown at 10:00, the zone named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.flows.cli.support import kizuna, workspace
from tests.support.push.push_seed import Seeder, seed_people


def test_customer_show_lists_activity_in_the_company_zone(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed_people(engine)
    with engine.begin() as conn:
        Seeder(conn).activity(
            "email",
            datetime(2026, 10, 20, 1, 0, tzinfo=UTC),  # 10:00 in Tokyo
            direction="inbound",
            people=[(ids["hanako"], "from")],
        )
    ws = workspace(tmp_path, engine, monkeypatch)
    out = kizuna("customer", "show", "hanako@acme.example", "-w", str(ws))
    assert out.exit_code == 0, out.output
    assert "when (JST)" in out.output
    assert "2026-10-20 10:00" in out.output and "2026-10-20 01:00" not in out.output


def test_status_and_quarantine_show_times_in_the_company_zone(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import insert

    from warehouse import schema as t

    at = datetime(2026, 10, 20, 1, 2, tzinfo=UTC)  # 10:02 in Tokyo
    with engine.begin() as conn:
        conn.execute(
            insert(t.table(t.SyncRun)).values(
                run_id="r1",
                connector="customers",
                stream="rows",
                started_at=at,
                finished_at=at,
                status="completed",
                inserted=3,
            )
        )
        conn.execute(
            insert(t.table(t.Quarantine)).values(
                connector="customers",
                stream="rows",
                source_id="row 7",
                reason="no key",
                created_at=at,
                path="customers.csv:7",
            )
        )
    (tmp_path / "customers.csv").write_text("顧客ID,氏名\nC1,田中 太郎\n", encoding="utf-8")
    ws = workspace(
        tmp_path,
        engine,
        monkeypatch,
        sources={"customers": {"type": "spreadsheet", "path": "customers.csv"}},
    )
    status = kizuna("status", "-w", str(ws))
    assert status.exit_code == 0, status.output
    assert "last run (JST)" in status.output
    assert "2026-10-20 10:02 (" in status.output and "01:02" not in status.output
    listed = kizuna("quarantine", "-w", str(ws))
    assert listed.exit_code == 0, listed.output
    assert "when (JST)" in listed.output and "2026-10-20 10:02 (" in listed.output
