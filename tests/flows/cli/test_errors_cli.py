"""One line per error, with the fix: warehouse URLs, read-only warehouses, failing streams,
unknown workspace fields; tracebacks only under --debug."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine

from tests.flows.cli.support import kizuna, url_of, workspace


def _ws(tmp_path: Path, url: str, **sources: object) -> Path:
    f = tmp_path / "kizuna.yaml"
    data = {"company": {"name": "株式会社サンプル"}, "warehouse": {"url": url}, "sources": sources}
    f.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return f


def _one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("not a url", "not a database URL"),
        ("mysql://app@db/kizuna", "no database driver for 'mysql'"),
        (
            "postgres://app:s3cret@127.0.0.1:1/crm",
            "cannot reach the warehouse (postgresql+psycopg, host 127.0.0.1:1, database crm, "
            "user app (password given))",
        ),
        ("sqlite:////nonexistent-root/x/y/kizuna.db", "cannot open the warehouse (SQLite file"),
    ],
)
def test_bad_warehouse_urls_are_one_line_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, said: str
) -> None:
    monkeypatch.delenv("KIZUNA_WAREHOUSE_URL", raising=False)
    if url.startswith("sqlite:////nonexistent-root"):
        (tmp_path / "blocker").write_text("a file where a folder should be")
        url = f"sqlite:///{tmp_path / 'blocker' / 'kizuna.db'}"
    ws = _ws(tmp_path, url)
    for cmd in (["status"], ["sync"]):
        out = kizuna(*cmd, "-w", str(ws))
        assert out.exit_code in (1, 2), out.output
        line = _one_error_line(out.output)
        assert said in line and "Fix:" in line
        assert "s3cret" not in out.output


@pytest.mark.postgres
def test_postgres_scheme_is_accepted(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    ws = workspace(tmp_path, engine, monkeypatch)
    monkeypatch.setenv(
        "KIZUNA_WAREHOUSE_URL", url_of(engine).replace("postgresql+psycopg://", "postgres://")
    )
    out = kizuna("status", "-w", str(ws))
    assert out.exit_code == 0, out.output


def test_read_only_warehouse_reads_and_refuses_writes_in_one_line(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KIZUNA_WAREHOUSE_URL", raising=False)
    (tmp_path / "c.csv").write_text("顧客ID,氏名\nC1,田中 太郎\n", encoding="utf-8")
    src = {"type": "spreadsheet", "path": "c.csv"}
    db = tmp_path / "wh.db"
    assert kizuna("status", "-w", str(_ws(tmp_path, f"sqlite:///{db}", c=src))).exit_code == 0
    ws = _ws(tmp_path, f"sqlite:///file:{db}?mode=ro&uri=true", c=src)
    out = kizuna("status", "-w", str(ws))
    assert out.exit_code == 0, out.output
    out = kizuna("sync", "-w", str(ws))
    assert out.exit_code == 1
    assert "c/rows failed: the warehouse is read-only" in out.output
    assert "Traceback" not in out.output and "[SQL" not in out.output


def test_a_failing_stream_is_reported_once_and_debug_adds_the_traceback(
    prefect_harness: None,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "customers.csv").write_bytes(b"\x7fELF\x02\x01\x01\x00\x1b[2J\x1b]0;pwned\x07" * 40)
    ws = workspace(
        tmp_path,
        engine,
        monkeypatch,
        sources={"customers": {"type": "spreadsheet", "path": "customers.csv"}},
    )
    out = kizuna("sync", "-w", str(ws))
    captured = capfd.readouterr()
    everything = out.output + captured.out + captured.err
    assert out.exit_code == 1
    assert everything.count("not a text export") == 1, everything
    assert "customers/rows failed:" in out.output
    assert "ERROR" not in everything and "Traceback" not in everything
    assert "\x1b]0" not in everything and "pwned" not in everything

    out = kizuna("--debug", "sync", "-w", str(ws))
    assert out.exit_code == 1
    assert "customers/rows failed:" in out.output


def test_unknown_field_is_named_with_the_closest_known_one(tmp_path: Path) -> None:
    ws = _ws(tmp_path, "sqlite:///wh.db", customers={"type": "spreadsheet", "pth": "c.csv"})
    out = kizuna("status", "-w", str(ws))
    assert out.exit_code == 2
    line = _one_error_line(out.output)
    assert "sources.customers.pth: unknown field 'pth'" in line
    assert "did you mean `path`" in line and "more problem" not in line
    ws = _ws(tmp_path, "sqlite:///wh.db")
    data = yaml.safe_load(ws.read_text(encoding="utf-8"))
    data["company"]["time_zon"] = "Asia/Tokyo"
    ws.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    line = _one_error_line(kizuna("status", "-w", str(ws)).output)
    assert "company.time_zon: unknown field 'time_zon'" in line and "`time_zone`" in line


def test_init_enables_only_sources_whose_files_exist(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "customers.csv").write_text("顧客ID\n", encoding="utf-8")
    out = kizuna("init", str(tmp_path / "kizuna.yaml"))
    assert out.exit_code == 0, out.output
    assert "Disabled until their files exist: mail, calendar" in out.output
    text = (tmp_path / "kizuna.yaml").read_text(encoding="utf-8")
    assert "encoding:" in text
    data = yaml.safe_load(text)
    assert data["sources"]["customers"]["enabled"] is True
    assert data["sources"]["mail"]["enabled"] is False
    assert data["sources"]["calendar"]["enabled"] is False
