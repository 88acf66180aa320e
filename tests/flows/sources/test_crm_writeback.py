"""Write-back from the store to a CRM through the source's `writeback:` config, and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from flows.cli.main import app
from flows.config import load
from flows.engine import run_stream
from flows.sources import registry
from flows.sources.crm import kintone as source_kintone
from flows.sources.crm.writeback import push
from flows.workspace import Workspace
from kizuna.errors import ConfigError
from tests.support.fakes.fake_kintone import BASE, FakeKintone
from warehouse import schema as t


def _workspace(tmp: Path, writeback: dict[str, object] | None) -> Workspace:
    src: dict[str, object] = {
        "type": "kintone",
        "base_url": BASE,
        "apps": {
            "contacts": {
                "app": 30,
                "token_env": "KT",
                "entity": "person",
                "field_map": {"family_name": "姓", "email": "メール", "title": "役職"},
            }
        },
    }
    if writeback is not None:
        src["writeback"] = writeback
    f = tmp / "kizuna.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "company": {"name": "自社"},
                "warehouse": {"url": f"sqlite:///{tmp / 'wh.db'}"},
                "sources": {"kt": src},
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return load(f)


def test_push_writes_only_differences_after_a_dry_run(engine: Engine, tmp_path: Path) -> None:
    fake = FakeKintone()
    fake.app(30, {"姓": "SINGLE_LINE_TEXT", "メール": "LINK", "役職": "SINGLE_LINE_TEXT"})
    for i in range(3):
        fake.add(30, {"姓": f"山田{i}", "メール": f"p{i}@abc.co.jp", "役職": "課長"})
    ws = _workspace(tmp_path, {"contacts": {"entity": "person", "columns": {"title": "役職"}}})
    cfg = registry.source_config(ws, "kt")
    (spec,) = source_kintone.streams("kt", cfg, ws, client=fake.client())
    run_stream(engine, spec, "r1")
    with engine.begin() as conn:
        conn.execute(
            update(t.Person).where(t.Person.primary_email == "p2@abc.co.jp").values(title="部長")
        )

    fake.calls.clear()
    [dry] = push(ws, "kt", engine, dry_run=True, client=fake.client())
    assert dry.counts()["would_update"] == 1 and dry.unchanged == 2
    assert not [c for c in fake.calls if c.startswith(("PUT", "DELETE"))]

    [done] = push(ws, "kt", engine, client=fake.client())
    assert done.counts()["update"] == 1
    assert fake.apps[30].records[3]["役職"]["value"] == "部長"
    [again] = push(ws, "kt", engine, client=fake.client())
    assert again.counts()["update"] == 0 and again.unchanged == 3


def test_push_without_a_writeback_section_says_what_to_add(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, None)
    with pytest.raises(ConfigError, match=r"sources\.kt\.writeback"):
        push(ws, "kt", engine=None, dry_run=True)  # type: ignore[arg-type]
    result = CliRunner().invoke(app, ["crm", "push", "kt", "--dry-run", "-w", str(ws.path)])
    assert result.exit_code == 2
    assert "writeback" in result.output
