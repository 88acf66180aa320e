"""Times as the company reads them: a mail at 10:00 JST is shown at 10:00, the zone named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.flows.cli.support import kizuna, workspace
from tests.support.push_seed import Seeder, seed_people


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
