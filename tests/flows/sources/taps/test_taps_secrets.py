"""Secrets of Singer taps and dlt sources never leave their box: not in the run log (the
tap's stderr, which prints its key), not in errors (a tap's last words, a dlt source's HTTP
error naming its URL with the token), not in run records, the warehouse, or Prefect's logs,
flow-run states and artifacts. Both run through the real Prefect sync flow and fail; then
everything the run left behind is searched for both secrets."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.flows.sources.taps.support import (
    TAP_SECRET,
    dlt_section,
    people,
    require_dlt,
    singer_section,
    write_lines,
    write_workspace,
)
from warehouse.migrations.env_models import metadata

require_dlt()


async def _prefect_records() -> list[str]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        artifacts = await client.read_artifacts()
        logs = await client.read_logs()
        runs = await client.read_flow_runs()
        out = [repr(a.data) + repr(a.description) for a in artifacts]
        out += [log.message for log in logs]
        out += [repr(r.state.message if r.state else "") for r in runs]
    return out


def test_tap_and_dlt_secrets_stay_out_of_logs_errors_runs_and_warehouse(
    prefect_harness: None,
    _sqlite_template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from flows import sync
    from flows.runtime import engine_for
    from tests.support.dlt_people import EXPECTED_TOKEN

    monkeypatch.setenv("KIZUNA_TEST_TAP_KEY", TAP_SECRET)
    monkeypatch.setenv("KIZUNA_TEST_DLT_TOKEN", EXPECTED_TOKEN)
    write_lines(tmp_path / "people.jsonl", people(6, bad_every=4))
    shutil.copyfile(_sqlite_template, tmp_path / "wh.db")
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    ws = write_workspace(
        tmp_path,
        {
            "tap": singer_section(tmp_path, crash_after=3, crash_status=2),
            "shop": dlt_section(tmp_path, leak=True),
        },
        warehouse={"url": url},
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RuntimeError) as info:  # both fatal: no retry
        sync.sync_workspace(str(ws), None, "secret-run", resolve=False)
    message = str(info.value)
    assert "exited with status 2" in message and "api key ****" in message  # the tap's words
    assert "token=****" in message  # the dlt source's error, its token masked

    dump: list[str] = []
    with engine_for(url).connect() as conn:
        for table in metadata().sorted_tables:
            dump += [repr(tuple(row)) for row in conn.execute(select(table))]
    prefect = asyncio.run(_prefect_records())
    assert any("tap-people: connecting with api key ****" in x for x in prefect)  # stderr logged
    assert any("token=****" in x and "failed" in x for x in dump)  # the run record's error
    assert any("not-an-address" in x for x in dump)  # the warehouse was searched too
    everything = [message, caplog.text, *dump, *prefect]
    for secret in (TAP_SECRET, EXPECTED_TOKEN):
        assert [x[:200] for x in everything if secret in x] == []
