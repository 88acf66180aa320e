"""A PostgreSQL role with SELECT-only grants (an analyst's, a reporting replica's): the read
commands answer, a command that must write says so in one line with the fix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL
from tests.flows.cli.support import kizuna
from tests.support.push.push_seed import Seeder, seed_people


@pytest.fixture
def reader(engine: Engine) -> Iterator[str]:
    """A login role that may only SELECT in the test schema; its warehouse URL."""
    with engine.connect() as conn:
        schema = str(conn.execute(text("select current_schema()")).scalar_one())
    role = f"kizuna_ro_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'))
    url = make_url(PG_URL).set(username=role, password=None)
    yield (url.render_as_string(hide_password=False) + f"?options=-csearch_path%3D{schema}")
    with engine.begin() as conn:
        conn.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM "{role}"'))
        conn.execute(text(f'REVOKE ALL ON SCHEMA "{schema}" FROM "{role}"'))
        conn.execute(text(f'DROP ROLE "{role}"'))


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_a_select_only_role_reads_status_and_customers(
    engine: Engine, reader: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed_people(engine)
    with engine.begin() as conn:
        Seeder(conn).activity(
            "email",
            datetime(2026, 10, 20, 1, 0, tzinfo=UTC),
            direction="inbound",
            people=[(ids["hanako"], "from")],
        )
    (tmp_path / "customers.csv").write_text("顧客ID,氏名\nC1,田中 太郎\n", encoding="utf-8")
    ws = tmp_path / "kizuna.yaml"
    ws.write_text(
        yaml.safe_dump(
            {
                "company": {"name": "株式会社サンプル", "domains": ["ours.co.jp"]},
                "sources": {"customers": {"type": "spreadsheet", "path": "customers.csv"}},
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("KIZUNA_WAREHOUSE_URL", reader)

    status = kizuna("status", "-w", str(ws))
    assert status.exit_code == 0, status.output
    assert "customers/" in status.output and "never" in status.output

    shown = kizuna("customer", "show", "hanako@acme.example", "-w", str(ws))
    assert shown.exit_code == 0, shown.output
    assert "山田 花子" in shown.output and "2026-10-20 10:00" in shown.output

    synced = kizuna("sync", "-w", str(ws))  # refused before any work, in one line
    assert synced.exit_code == 1
    assert synced.output.startswith("error: the warehouse is read-only"), synced.output
    assert "Fix: run this with a user that may write" in synced.output
    assert len(synced.output.strip().splitlines()) == 1 and "Traceback" not in synced.output
    resolved = kizuna("identity", "resolve", "-w", str(ws))
    assert resolved.exit_code == 1 and "read-only" in resolved.output, resolved.output
    with engine.connect() as conn:  # nothing was written by the read-only role
        assert conn.execute(text("select count(*) from sync_run")).scalar_one() == 0
