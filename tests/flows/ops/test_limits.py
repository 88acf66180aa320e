"""One Prefect global concurrency limit per source (API account): made by a sync flow run
when missing, never retuned, and a slot held while each stream of the source runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

from flows import config
from flows.ops import limits


def _ws(tmp_path: Path) -> Any:
    (tmp_path / "c.csv").write_text("顧客ID,氏名\nC1,田中 太郎\n", encoding="utf-8")
    f = tmp_path / "kizuna.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "company": {"name": "株式会社サンプル", "domains": ["ours.co.jp"]},
                "warehouse": {"url": f"sqlite:///{tmp_path / 'wh.db'}"},
                "sources": {"顧客 CRM": {"type": "spreadsheet", "path": "c.csv"}},
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return config.load(f)


def _limit(name: str) -> Any:
    with get_client(sync_client=True) as c:
        return c.read_global_concurrency_limit_by_name(name)


def test_a_flow_run_creates_the_limit_once_and_holds_a_slot_per_stream(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _ws(tmp_path)
    name = limits.limit_name(ws, "顧客 CRM")
    assert name.startswith("kizuna-CRM-") and "sqlite" not in name
    monkeypatch.setenv("KIZUNA_ACCOUNT_STREAMS", "3")
    held: list[int] = []

    @flow(name="kizuna-test-limits")
    def run() -> list[str]:
        made = limits.ensure(ws, ["顧客 CRM"])
        with limits.stream_slot(ws, "顧客 CRM"):
            held.append(_limit(name).active_slots)
        return made

    assert run() == [name]
    lim = _limit(name)
    assert (lim.limit, lim.active_slots, held) == (3, 0, [1])

    with get_client(sync_client=True) as c:  # an operator retunes it in the UI
        c.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=5))
    assert run() == []  # left as the operator set it
    assert _limit(name).limit == 5


def test_outside_a_flow_run_nothing_asks_a_server(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    assert limits.ensure(ws, ["顧客 CRM"]) == []
    with limits.stream_slot(ws, "顧客 CRM"):
        pass
