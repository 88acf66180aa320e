"""Plugins: a package that declares ``kizuna.sources``/``kizuna.channels`` entry points adds a
source type and a channel type without touching Kizuna's code.

The example package under ``examples/kizuna-example-plugin`` is installed with pip into a
temporary folder (``--target``, no network, nothing changed in the venv) that is put on
``sys.path`` for the test, exactly how an installed distribution is found.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from flows.cli.main import app
from flows.push.channels import channel_types
from flows.sources.registry import source_types
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[4]
PLUGIN = ROOT / "examples" / "kizuna-example-plugin"
runner = CliRunner()


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(PLUGIN),
        ],
        check=True,
        cwd=build,
        capture_output=True,
    )
    return site


@pytest.fixture
def plugin(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    before = dict(source_types())  # keeps test-only types (the fake source) across the swap
    monkeypatch.syspath_prepend(str(plugin_site))
    source_types.cache_clear()
    channel_types.cache_clear()
    yield
    monkeypatch.undo()
    source_types.cache_clear()
    channel_types.cache_clear()
    source_types().update(before)


def test_builtins_are_entry_points_of_kizuna() -> None:
    types = source_types()
    assert {"spreadsheet", "mail", "ics", "salesforce", "imap"} <= set(types)
    assert all(t.builtin for n, t in types.items() if n != "fake")
    assert {n for n, (_, dist) in channel_types().items() if dist == "kizuna"} == {
        "outbox",
        "smtp",
        "slack",
        "gmail",
        "m365",
    }
    assert "example_jsonl" not in types  # not installed in the venv itself


def _url(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return str(engine.url)
    with engine.connect() as conn:
        schema = conn.execute(text("show search_path")).scalar_one()
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def _workspace(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch, **over: Any
) -> Path:
    data: dict[str, Any] = {
        "version": 1,
        "company": {"name": "株式会社サンプル", "domains": ["own.example"]},
        "sources": {"leads": {"type": "example_jsonl", "path": "leads.jsonl", "page_size": 2}},
        "segments": {"plugin_people": {"field": "person.email", "exists": True}},
        "campaigns": {
            "hello": {
                "segment": "plugin_people",
                "channel": "drop",
                "purpose": "sales_followup",
                "approval": "auto",
                "steps": [{"ja": {"subject": "{{ person.name }} 様", "text": "本文"}}],
            }
        },
        "outbound": {
            "sender": "営業部 <sales@own.example>",
            "quiet_hours": None,
            "channels": {"drop": {"type": "example_folder", "folder": "dropped"}},
        },
        **over,
    }
    f = tmp_path / "kizuna.yaml"
    f.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("KIZUNA_WAREHOUSE_URL", _url(engine))
    return f


def _flat(text: str) -> str:
    return " ".join(text.split())


def _lines(*rows: Any) -> str:
    return "".join(
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows
    )


def test_plugin_types_are_listed_and_templated(plugin: None, tmp_path: Path) -> None:
    out = runner.invoke(app, ["sources", "types"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "example_jsonl" in out.output and "kizuna-example-plugin" in out.output
    assert "example_folder" in out.output
    out = runner.invoke(app, ["init", str(tmp_path / "k.yaml")])
    assert out.exit_code == 0, out.output
    written = (tmp_path / "k.yaml").read_text(encoding="utf-8")
    assert "`example_jsonl` (from the kizuna-example-plugin package)" in written
    assert "#   type: example_jsonl" in written
    yaml.safe_load(written)  # the comments keep the file valid YAML


def test_plugin_config_errors_name_file_field_and_fix(
    plugin: None, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _workspace(
        tmp_path, engine, monkeypatch, sources={"leads": {"type": "example_jsonl", "pth": "x"}}
    )
    out = runner.invoke(app, ["sync", "-w", str(ws)], env={"COLUMNS": "300"})
    assert out.exit_code == 2, out.output
    # The plugin's own model checks the section: the unknown field, and the one it meant.
    assert "kizuna.yaml: sources.leads.pth: unknown field 'pth'" in _flat(out.output)
    assert "did you mean `path`?" in out.output
    ws = _workspace(tmp_path, engine, monkeypatch, sources={"leads": {"type": "exmple_jsonl"}})
    out = runner.invoke(app, ["sync", "-w", str(ws)], env={"COLUMNS": "300"})
    assert out.exit_code == 2 and "sources.leads.type: unknown source type" in _flat(out.output)
    assert "example_jsonl" in out.output  # the fix lists the plugin's type


def test_plugin_source_syncs_and_plugin_channel_sends(
    plugin: None,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_harness: None,
) -> None:
    (tmp_path / "leads.jsonl").write_text(
        _lines(
            {
                "id": "L1",
                "name": "山田 花子",
                "email": "hanako@acme.example",
                "company": "株式会社アクメ",
            },
            "{not json",
            {"id": "L2", "name": "佐藤 一郎", "email": "no-address"},
            {"id": "L3", "name": "鈴木 美香", "email": "mika@beta.example"},
        ),
        encoding="utf-8",
    )
    ws = _workspace(tmp_path, engine, monkeypatch)
    out = runner.invoke(app, ["sync", "leads", "-w", str(ws)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    with engine.connect() as conn:
        people = conn.execute(text("select count(*) from person")).scalar_one()
        bad = conn.execute(text("select count(*) from quarantine")).scalar_one()
    assert (people, bad) == (2, 2)  # the broken line and the address-less lead are quarantined

    # The plugin's own discover hook: `kizuna sources discover` works for it like any source.
    out = runner.invoke(
        app, ["sources", "discover", "leads", "-w", str(ws)], env={"COLUMNS": "200"}
    )
    assert out.exit_code == 0, out.output
    assert "leads/people — leads.jsonl: the first lines' fields" in out.output
    rows = {ln.split("│")[1].strip(): ln for ln in out.output.splitlines() if ln.count("│") >= 3}
    assert "person.email" in rows["email"] and "organization.name" in rows["company"]

    # Appending resumes after the committed byte offset: only the new line is read.
    with (tmp_path / "leads.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(_lines({"id": "L4", "name": "田中 次郎", "email": "jiro@gamma.example"}))
    out = runner.invoke(app, ["sync", "leads", "-w", str(ws)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from person")).scalar_one() == 3

    out = runner.invoke(app, ["campaigns", "run", "hello", "-w", str(ws)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    sent = sorted((tmp_path / "dropped").glob("*.eml"))
    assert len(sent) == 3
    assert any("hanako@acme.example" in p.read_text(errors="replace") for p in sent)
    # A rerun asks the plugin channel and sends nothing twice.
    out = runner.invoke(app, ["campaigns", "run", "hello", "-w", str(ws)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert len(list((tmp_path / "dropped").glob("*.eml"))) == 3
