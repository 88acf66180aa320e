"""A re-read export is compared by raw line before decoding (``flows.pass_hashes`` with
``connectors.files.sheet_lines``): only changed rows are mapped, and deletions, revivals and
repeated ids behave as when every row was decoded."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from flows.engine import run_stream
from tests.flows.sources.test_spreadsheet_sync import _count, _row, _spec, _write
from warehouse import records as r
from warehouse import schema as t


def _counting(spec: Any) -> tuple[Any, list[str]]:
    mapped: list[str] = []

    def map_row(raw: dict[str, Any]) -> Any:
        mapped.append(str(raw["顧客ID"]))
        out: list[r.Record] = spec.map(raw)
        return out

    return replace(spec, map=map_row), mapped


def test_only_changed_rows_are_decoded_and_mapped(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    rows = [_row(i) for i in range(40)]
    _write(f, rows)
    spec, mapped = _counting(_spec(tmp_path, page_size=10))
    run_stream(engine, spec, "r1")
    assert len(mapped) == 40
    rows[7] = _row(7, 氏名="田中 七郎")
    rows[31] = _row(31, 電話番号="03-9999-0031")
    _write(f, rows)
    mapped.clear()
    res = run_stream(engine, spec, "r2")
    assert sorted(mapped) == ["C007", "C031"]
    assert (res.read, res.unchanged, res.stats.deleted) == (40, 38, 0)
    with engine.connect() as conn:
        given = dict(conn.execute(select(t.Person.primary_email, t.Person.given_name)).all())
        (unchanged,) = conn.execute(
            select(t.SyncRun.unchanged).where(t.SyncRun.run_id == "r2")
        ).one()
    assert given["taro7@test1.co.jp"] == "七郎" and unchanged == 38


def test_vanished_rows_are_deleted_and_come_back(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    rows = [_row(i) for i in range(30)]
    _write(f, rows)
    spec, mapped = _counting(_spec(tmp_path, page_size=10))
    run_stream(engine, spec, "r1")
    _write(f, rows[:12] + rows[13:])  # C012 removed, every other line unchanged
    mapped.clear()
    res = run_stream(engine, spec, "r2")
    assert mapped == [] and res.stats.deleted == 3  # its company, person and deal
    assert _count(engine, t.Person) == 29
    _write(f, rows)  # back, byte for byte as it was stored
    res = run_stream(engine, spec, "r3")
    assert mapped == ["C012"] and _count(engine, t.Person) == 30 and res.stats.deleted == 0


def test_a_repeated_id_beside_its_stored_line_is_quarantined(
    engine: Engine, tmp_path: Path
) -> None:
    f = tmp_path / "export.csv"
    rows = [_row(i) for i in range(12)]
    _write(f, rows)
    spec = _spec(tmp_path, page_size=5)
    run_stream(engine, spec, "r1")
    # C003 stays as stored and appears again, edited, on a later page and on an earlier one.
    _write(f, [_row(3, 氏名="田中 前"), *rows, _row(3, 氏名="田中 後")])
    res = run_stream(engine, spec, "r2")
    assert res.stats.quarantined == 2 and res.stats.deleted == 0
    assert _count(engine, t.Person) == 12


def test_a_first_sync_looks_up_no_lineage_of_its_own_rows(engine: Engine, tmp_path: Path) -> None:
    """A stream with nothing stored: its rows' lineage is known to be absent, so no lookup
    names them; what lands equals a sync that looked (the second stream, same file, after
    a row of it was stored)."""
    from sqlalchemy import event

    f = tmp_path / "export.csv"
    _write(f, [_row(i) for i in range(25)])
    asked: list[str] = []

    def log(_conn: Any, _cur: Any, stmt: str, params: Any, *_: Any) -> None:
        if "FROM source_record" in stmt and "first_seen" in stmt:
            asked.append(str(params))

    event.listen(engine, "before_cursor_execute", log)
    try:
        run_stream(engine, _spec(tmp_path, page_size=10), "r1")
    finally:
        event.remove(engine, "before_cursor_execute", log)
    assert not any("C0" in p for p in asked)
    with engine.connect() as conn:
        lineage = conn.execute(
            select(t.SourceRecord.source_id, t.SourceRecord.entity).where(
                t.SourceRecord.payload_hash != ""
            )
        ).all()
    assert len(lineage) == 25 + 25 + 13  # a company, a person, and a deal every other row
    assert _count(engine, t.Person) == 25


def test_a_syncing_process_starts_numpy_without_blas_worker_threads() -> None:
    """The engine's import sets ``OPENBLAS_NUM_THREADS=1`` before numpy loads (its idle
    BLAS workers spin on CPU after the import); an operator's own value stays."""
    code = (
        "import os, flows.engine, numpy; "
        "print(os.environ['OPENBLAS_NUM_THREADS'], 'numpy' in __import__('sys').modules)"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    for given, want in ((None, "1 True"), ("3", "3 True")):
        if given is not None:
            env["OPENBLAS_NUM_THREADS"] = given
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split("\n")[-2] == want
