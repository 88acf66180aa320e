"""``type: dlt``: a real ``@dlt.source`` (tests/support/dlt_people.py) synced end to end."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, text

from tests.flows.sources.taps.support import require_dlt

require_dlt()

from flows.config import load  # noqa: E402
from flows.engine import run_stream  # noqa: E402
from flows.sources import registry  # noqa: E402
from kizuna.errors import ConfigError, FatalError, TransientError  # noqa: E402
from tests.support.dlt_people import EXPECTED_TOKEN  # noqa: E402

PEOPLE = [
    {
        "id": 1,
        "updated": "2026-01-01",
        "name": "山田 花子",
        "contact": {"email": "hanako@acme.example"},
        "company": {"name": "株式会社アクメ"},
    },
    {"id": 2, "updated": "2026-01-02", "name": "佐藤 一郎", "contact": {"email": "not-an-address"}},
    {
        "id": 3,
        "updated": "2026-01-03",
        "name": "鈴木 美香",
        "contact": {"email": "mika@beta.example"},
    },
    {
        "id": 4,
        "updated": "2026-01-04",
        "name": "田中 次郎",
        "contact": {"email": "jiro@gamma.example"},
    },
    {
        "id": 5,
        "updated": "2026-01-05",
        "name": "伊藤 五郎",
        "contact": {"email": "goro@gamma.example"},
    },
    {"updated": "2026-01-06", "name": "無名", "contact": {"email": "noid@gamma.example"}},
]


def _workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, Any]], **args: Any
) -> Path:
    (tmp_path / "people.jsonl").write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in rows), encoding="utf-8"
    )
    monkeypatch.setenv("KIZUNA_TEST_DLT_TOKEN", EXPECTED_TOKEN)
    data = {
        "version": 1,
        "company": {"name": "株式会社サンプル", "domains": ["own.example"]},
        "sources": {
            "shop": {
                "type": "dlt",
                "source": "tests.support.dlt_people:people_file",
                "args": {"path": str(tmp_path / "people.jsonl"), **args},
                "secret_args": {"token": "KIZUNA_TEST_DLT_TOKEN"},
                "page_size": 2,
                "resources": {
                    "people": {
                        "columns": {
                            "name": "person.full_name",
                            "contact.email": "person.email",
                            "company.name": "organization.name",
                        }
                    }
                },
            }
        },
    }
    f = tmp_path / "kizuna.yaml"
    f.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return f


def _people(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "select s.source_id, p.full_name from source_record s join person p"
                " on s.entity = 'person' and p.id = s.entity_id order by s.source_id"
            )
        )
        return [(str(a), str(b)) for a, b in rows]


def test_full_then_incremental_sync_with_quarantine(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ws = load(_workspace(tmp_path, monkeypatch, PEOPLE))
    first = run_stream(engine, registry.streams(ws, "shop")[0], "r1")
    assert first.read == 5  # the audit resource is not listed: never read; the keyless one
    assert first.stats.quarantined == 2  # is taken out before dlt sees it
    assert _people(engine) == [
        ("people:1", "山田 花子"),
        ("people:3", "鈴木 美香"),
        ("people:4", "田中 次郎"),
        ("people:5", "伊藤 五郎"),
    ]
    with engine.connect() as conn:
        reasons = " ".join(conn.execute(text("select reason from quarantine")).scalars())
    assert "not-an-address" in reasons  # a record the mapping refuses is quarantined …
    assert "people: record without its key ['id']" in reasons  # … and one without its key
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from quarantine")).scalar_one() == 2

    more = [
        *PEOPLE,
        {
            "id": 6,
            "updated": "2026-02-01",
            "name": "高橋 三郎",
            "contact": {"email": "saburo@delta.example"},
        },
    ]
    ws = load(_workspace(tmp_path, monkeypatch, more))
    second = run_stream(engine, registry.streams(ws, "shop")[0], "r2")
    assert second.read == 1  # dlt's incremental state, kept as Kizuna's cursor
    assert ("people:6", "高橋 三郎") in _people(engine)
    assert EXPECTED_TOKEN not in caplog.text


def test_crash_mid_run_then_rerun_equals_a_clean_run(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = load(_workspace(tmp_path, monkeypatch, PEOPLE, fail_after=3))
    with pytest.raises(TransientError, match="ConnectionError: the API went away"):
        run_stream(engine, registry.streams(ws, "shop")[0], "crash")
    assert _people(engine) == [("people:1", "山田 花子")]  # the first page landed
    ws = load(_workspace(tmp_path, monkeypatch, PEOPLE))
    rerun = run_stream(engine, registry.streams(ws, "shop")[0], "rerun")
    assert rerun.read == 5  # the committed state is the one the crashed run started from
    assert _people(engine) == [
        ("people:1", "山田 花子"),
        ("people:3", "鈴木 美香"),
        ("people:4", "田中 次郎"),
        ("people:5", "伊藤 五郎"),
    ]


def test_config_errors_name_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = _workspace(tmp_path, monkeypatch, PEOPLE)
    monkeypatch.setenv("KIZUNA_TEST_DLT_TOKEN", "wrong-token")
    with pytest.raises(FatalError, match=r"PermissionError: bad token\. Fix: check its args"):
        list(registry.streams(load(f), "shop")[0].read(None))  # fatal: no retry helps
    monkeypatch.setenv("KIZUNA_TEST_DLT_TOKEN", EXPECTED_TOKEN)
    data = yaml.safe_load(f.read_text(encoding="utf-8"))
    data["sources"]["shop"]["source"] = "tests.support.nosuch:people_file"
    f.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    ws = load(f)
    with pytest.raises(ConfigError, match=r"sources\.shop\.source: cannot import"):
        list(registry.streams(ws, "shop")[0].read(None))
    data["sources"]["shop"]["source"] = "not a path"
    f.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sources\.shop\.source"):
        load(f)
