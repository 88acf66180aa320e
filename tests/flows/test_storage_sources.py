"""File sources where every worker sees them: spreadsheet, mail-file and .ics paths read
through fsspec (a URL in the source's path, or relative paths under KIZUNA_STORAGE_URL),
fsspec's in-memory filesystem standing in for S3 here. The same files give the same
records as from the local disk, an unchanged location reads nothing, a changed file is read
again, and a second worker with its own mirror changes nothing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest
import yaml
from sqlalchemy import func, select

from flows.ops import launch
from flows.runtime import engine_for
from flows.storage import source_path, source_url
from flows.sync import sync_workspace
from flows.workspace import read
from warehouse import schema as t

TABLES = (t.Person, t.Organization, t.Deal, t.Activity)


def _sync(ws_file: Path) -> dict[str, dict[str, Any]]:
    ws = read(ws_file)
    out = launch.run_flow(
        sync_workspace, ws.warehouse_url, workspace_file=str(ws_file), resolve=False
    )
    return {r["connector"]: r for r in out}


def _counts(url: str) -> dict[str, int]:
    with engine_for(url).connect() as conn:
        return {
            m.__tablename__: conn.execute(select(func.count()).select_from(m)).scalar_one()
            for m in TABLES
        }


@pytest.fixture
def bucket() -> Any:
    name = f"memory://kizuna-{uuid.uuid4().hex[:8]}"
    yield name
    fs = fsspec.filesystem("memory")
    if fs.exists(name.removeprefix("memory://")):
        fs.rm(name.removeprefix("memory://"), recursive=True)


def test_remote_file_sources_read_like_local_ones(
    tmp_path: Path, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.demo.generate import generate

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    local_ws = generate(tmp_path / "local", messages=10, seed=3)
    fs = fsspec.filesystem("memory")
    fs.put(str(local_ws.parent / "data"), f"{bucket}/data", recursive=True)

    # Another machine's copy of the workspace: no data folder; relative paths are read
    # under KIZUNA_STORAGE_URL, and one source names its URL itself.
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    doc = yaml.safe_load(local_ws.read_text(encoding="utf-8"))
    doc["sources"]["customers"]["path"] = f"{bucket}/data/customers.csv"
    remote_ws = remote_dir / "kizuna.yaml"
    remote_ws.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("KIZUNA_CACHE_DIR", str(tmp_path / "mirror-1"))
    monkeypatch.setenv("KIZUNA_STORAGE_URL", bucket)
    ws = read(remote_ws)
    assert source_url(ws, "data/mail") == f"{bucket}/data/mail"
    assert str(source_path(ws, "data/mail")).startswith(str(tmp_path / "mirror-1"))

    first = _sync(remote_ws)
    assert all(r["read"] > 0 for r in first.values()), first
    monkeypatch.delenv("KIZUNA_STORAGE_URL")
    _sync(local_ws)
    assert _counts(read(remote_ws).warehouse_url) == _counts(read(local_ws).warehouse_url)

    # Unchanged: the cursors (sizes, mtimes, hashes of the mirror) say so; nothing is read.
    monkeypatch.setenv("KIZUNA_STORAGE_URL", bucket)
    again = _sync(remote_ws)
    assert all(r["read"] == 0 for r in again.values()), again
    # A second worker with its own mirror re-reads the files but changes nothing.
    monkeypatch.setenv("KIZUNA_CACHE_DIR", str(tmp_path / "mirror-2"))
    other = _sync(remote_ws)
    assert all(r["inserted"] == r["updated"] == r["deleted"] == 0 for r in other.values()), other

    # A row added at the location is read on the next run, from that file only.
    csv = f"{bucket}/data/customers.csv"
    text = fs.cat_file(csv.removeprefix("memory://")).decode("cp932")
    line = text.splitlines()[-1].split(",")
    line[0] = "C-99999"
    fs.pipe_file(csv.removeprefix("memory://"), (text + ",".join(line) + "\r\n").encode("cp932"))
    changed = _sync(remote_ws)
    assert changed["customers"]["inserted"] + changed["customers"]["updated"] > 0, changed
    assert all(r["read"] == 0 for n, r in changed.items() if n != "customers"), changed


def test_a_missing_remote_file_is_the_usual_one_line_error(
    tmp_path: Path, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.demo.generate import generate

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("KIZUNA_CACHE_DIR", str(tmp_path / "mirror"))
    ws_file = generate(tmp_path / "ws", messages=5, seed=3)
    doc = yaml.safe_load(ws_file.read_text(encoding="utf-8"))
    doc["sources"] = {"calendar": {**doc["sources"]["calendar"], "path": f"{bucket}/nothing"}}
    ws_file.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    from flows.sync import StreamsFailed

    with pytest.raises(StreamsFailed) as err:
        _sync(ws_file)
    assert "calendar path not found" in str(err.value)
