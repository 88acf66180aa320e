"""``type: singer``: a real tap process (tests/support/taps/tap_people.py) synced end to end."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, text

from flows.config import load
from flows.engine import run_stream
from flows.sources import registry
from kizuna.errors import ConfigError, FatalError, TransientError

TAP = Path(__file__).resolve().parents[3] / "support" / "taps" / "tap_people.py"
SECRET = "sk-live-7c0ffee-singer"

PEOPLE = [
    {
        "id": 1,
        "name": "山田 花子",
        "contact": {"email": "hanako@acme.example", "phones": ["03-1234-5678"]},
        "company": {"name": "株式会社アクメ"},
        "tier": "A",
    },
    {
        "id": 2,
        "name": "佐藤 一郎",
        "contact": {"email": "ichiro@beta.example"},
        "company": {"name": "ベータ株式会社"},
    },
    {"id": 3, "name": "鈴木 美香", "contact": {"email": "not-an-address"}},
    {"name": "無名", "contact": {"email": "noid@gamma.example"}},
    {
        "id": 5,
        "name": "田中 次郎",
        "contact": {"email": "jiro@gamma.example"},
        "company": {"name": "ガンマ合同会社"},
    },
    {"id": 6, "name": "高橋 三郎", "contact": {"email": "saburo@delta.example"}},
]


def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **tap: Any) -> Path:
    (tmp_path / "people.jsonl").write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in PEOPLE), encoding="utf-8"
    )
    (tmp_path / "tap.json").write_text(
        json.dumps({"data": str(tmp_path / "people.jsonl"), **tap}), encoding="utf-8"
    )
    monkeypatch.setenv("KIZUNA_TEST_TAP_KEY", SECRET)
    data = {
        "version": 1,
        "company": {"name": "株式会社サンプル", "domains": ["own.example"]},
        "sources": {
            "tap": {
                "type": "singer",
                "command": [sys.executable, str(TAP)],
                "config": "tap.json",
                "config_secrets": {"api_key": "KIZUNA_TEST_TAP_KEY"},
                "page_size": 2,
                "streams": {
                    "people": {
                        "columns": {
                            "name": "person.full_name",
                            "contact.email": "person.email",
                            "contact.phones": "person.phone",
                            "company.name": "organization.name",
                            "tier": "attributes.rank",
                        }
                    }
                },
            }
        },
    }
    f = tmp_path / "kizuna.yaml"
    f.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return f


@pytest.fixture
def tap_log() -> Iterator[list[str]]:
    """The tap's stderr as Kizuna logs it (outside a Prefect run: the ``kizuna.singer`` logger)."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger, handler = logging.getLogger("kizuna.singer"), Keep(logging.INFO)
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(old)


def _people(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "select s.source_id, p.full_name from source_record s join person p"
                " on s.entity = 'person' and p.id = s.entity_id order by s.source_id"
            )
        )
        return [(str(a), str(b)) for a, b in rows]


def _quarantine(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(x) for x in conn.execute(text("select reason from quarantine")).scalars()]


def test_full_sync_maps_nested_fields_quarantines_and_masks(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tap_log: list[str],
) -> None:
    ws = load(_workspace(tmp_path, monkeypatch, garbage=True))
    (spec,) = registry.streams(ws, "tap")
    result = run_stream(engine, spec, "r1")
    assert result.pages >= 3  # cut at STATE messages every two records
    assert _people(engine) == [
        ("people:1", "山田 花子"),
        ("people:2", "佐藤 一郎"),
        ("people:5", "田中 次郎"),
        ("people:6", "高橋 三郎"),
    ]  # the audit stream is not configured: dropped
    reasons = " ".join(_quarantine(engine))
    assert "not-an-address" in reasons  # the mapping's BadRecord
    assert "without its key" in reasons  # no id
    assert "tap output line" in reasons and "not JSON" in reasons  # the garbage line
    with engine.connect() as conn:
        phone, rank = conn.execute(
            text(
                "select ph.phone, p.attributes from source_record s join person p"
                " on s.entity = 'person' and p.id = s.entity_id"
                " join person_phone ph on ph.person_id = p.id where s.source_id = 'people:1'"
            )
        ).one()
    assert "+81312345678" in str(phone) and "A" in str(rank)
    assert "starting at offset 0" in "\n".join(tap_log)  # the tap's stderr is in the run log …
    assert SECRET not in "\n".join(tap_log) and "****" in "\n".join(
        tap_log
    )  # … with the secret masked
    again = run_stream(engine, registry.streams(ws, "tap")[0], "r2")
    assert again.stats.inserted == 0 and "starting at offset 6" in "\n".join(tap_log)

    # Incremental: two new lines; the tap resumes from the stored STATE and sends only them.
    new = [
        {"id": 7, "name": "伊藤 五郎", "contact": {"email": "goro@epsilon.example"}},
        {"id": 8, "name": "渡辺 六子", "contact": {"email": "rokuko@zeta.example"}},
    ]
    with (tmp_path / "people.jsonl").open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(p, ensure_ascii=False) + "\n" for p in new)
    third = run_stream(engine, registry.streams(ws, "tap")[0], "r3")
    assert third.read == 2 and sum("starting at offset 6" in ln for ln in tap_log) == 2
    assert [p for p, _ in _people(engine)][-2:] == ["people:7", "people:8"]


def test_crash_then_rerun_resumes_from_the_last_committed_state(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tap_log: list[str],
) -> None:
    ws = load(_workspace(tmp_path, monkeypatch, crash_after=5))
    with pytest.raises(TransientError, match=r"exited with status 1: .*connection reset"):
        run_stream(engine, registry.streams(ws, "tap")[0], "crash")
    assert [p for p, _ in _people(engine)] == ["people:1", "people:2"]  # pages up to STATE 4
    with engine.connect() as conn:
        cursor = conn.execute(text("select cursor from sync_state")).scalar_one()
    assert '"offset": 4' in str(cursor).replace("'", '"') or '"offset":4' in str(cursor)

    ws = load(_workspace(tmp_path, monkeypatch))
    run_stream(engine, registry.streams(ws, "tap")[0], "rerun")
    assert "starting at offset 4" in "\n".join(tap_log)
    assert [p for p, _ in _people(engine)] == ["people:1", "people:2", "people:5", "people:6"]
    assert SECRET not in "\n".join(tap_log)


def test_auth_failure_is_fatal_and_never_shows_the_secret(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = load(_workspace(tmp_path, monkeypatch))
    monkeypatch.setenv("KIZUNA_TEST_TAP_KEY", "bad")
    with pytest.raises(FatalError, match="authentication failed") as err:
        run_stream(engine, registry.streams(ws, "tap")[0], "auth")
    assert "check the tap's config" in str(err.value)


def test_config_errors_name_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = _workspace(tmp_path, monkeypatch)
    data = yaml.safe_load(f.read_text(encoding="utf-8"))
    data["sources"]["tap"]["streams"]["people"]["columns"]["name"] = "person.nmae"
    f.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sources\.tap\.streams\.people\.columns\.name"):
        load(f)
    monkeypatch.delenv("KIZUNA_TEST_TAP_KEY")
    ws = load(_workspace(tmp_path, monkeypatch))
    monkeypatch.delenv("KIZUNA_TEST_TAP_KEY")
    with pytest.raises(ConfigError, match=r"config_secrets\.api_key"):
        list(registry.streams(ws, "tap")[0].read(None))


def test_the_catalog_selection_reaches_the_tap(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tap_log: list[str]
) -> None:
    f = _workspace(tmp_path, monkeypatch)
    data = yaml.safe_load(f.read_text(encoding="utf-8"))
    data["sources"]["tap"]["streams"]["audit"] = {"key": ["n"]}  # Kizuna would keep it …
    f.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    everything = run_stream(engine, registry.streams(load(f), "tap")[0], "all")
    assert (
        everything.read == 2 * len(PEOPLE) and "tap: tap-people: sending audit, people" in tap_log
    )

    catalog = {
        "streams": [
            {"tap_stream_id": s, "metadata": [{"breadcrumb": [], "metadata": {"selected": on}}]}
            for s, on in (("people", True), ("audit", False))
        ]
    }
    (tmp_path / "catalog.json").write_text(json.dumps(catalog), encoding="utf-8")
    data["sources"]["tap"]["catalog"] = "catalog.json"  # … but the catalog leaves it out
    f.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with engine.begin() as conn:
        conn.execute(text("delete from sync_state"))  # read from the start again
    selected = run_stream(engine, registry.streams(load(f), "tap")[0], "selected")
    assert selected.read == len(PEOPLE) and "tap: tap-people: sending people" in tap_log
