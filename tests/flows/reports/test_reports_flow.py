"""The report flows and CLI on a small generated demo company, synced like `kizuna demo` does:
one 日報 per rep with activity (files + stored drafts + artifact), a submitted report kept on
regeneration, and the pipeline page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from flows import config
from flows.cli.main import app
from flows.demo.generate import generate
from flows.engine import run_stream
from flows.runtime import engine_for
from flows.sources import registry
from warehouse.reporting.schema import DailyReport
from warehouse.schema import table

runner = CliRunner()
SECTIONS = ("本日の活動", "商談", "メール", "明日の予定", "所感")


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    ws_file = generate(tmp_path_factory.mktemp("reports") / "demo", messages=200)
    ws = config.load(ws_file)
    engine = engine_for(ws.warehouse_url)
    for name in ws.sources:
        for spec in registry.streams(ws, name):
            run_stream(engine, spec, f"seed-{name}")
    yield ws_file
    engine.dispose()


def _stored(ws_file: Path) -> dict[tuple[int, date], tuple[str, str]]:
    ws = config.load(ws_file)
    r = table(DailyReport)
    with engine_for(ws.warehouse_url).connect() as conn:
        rows = conn.execute(select(r.c.staff_user_id, r.c.date, r.c.body_md, r.c.status))
        return {(a, d): (body, status) for a, d, body, status in rows}


@pytest.mark.slow
def test_daily_and_pipeline_flows(demo_ws: Path, prefect_harness: None) -> None:
    from flows.reports.flow import daily_reports, pipeline_report
    from flows.reports.run import yesterday

    ws = config.load(demo_ws)
    rows = daily_reports(str(demo_ws), up_to=yesterday(ws))
    assert len(rows) >= 3  # the demo has about ten reps, most with mail or meetings
    assert all(r["status"] == "drafted" for r in rows)
    assert all(r["date"] <= yesterday(ws) for r in rows)
    stored = _stored(demo_ws)
    assert len(stored) == len(rows)
    for r in rows:
        md = Path(r["file"])
        assert md.parent == ws.root / "reports" / r["date"]
        html = md.with_suffix(".html").read_text(encoding="utf-8")
        text = md.read_text(encoding="utf-8")
        for section in SECTIONS:
            assert f"## {section}" in text
            assert f"<h2>{section}" in html
        kinds = ("meetings", "mail_sent", "mail_received", "mail_internal", "deals_touched")
        assert sum(r[k] for k in kinds) > 0

    # The rep edits the draft (所感) and submits it; a regeneration of that day keeps it.
    first = rows[0]
    md = Path(first["file"])
    edited = md.read_text(encoding="utf-8") + "\n順調。来週見積提出予定。\n"
    md.write_text(edited, encoding="utf-8")
    res = runner.invoke(
        app,
        [
            "report",
            "submit",
            "-w",
            str(demo_ws),
            "--staff",
            first["staff"],
            "--date",
            first["date"],
            "--file",
            str(md),
        ],
    )
    assert res.exit_code == 0, res.output
    again = daily_reports(str(demo_ws), date=first["date"])
    status = {r["staff"]: r["status"] for r in again}
    assert status[first["staff"]] == "submitted"
    assert md.read_text(encoding="utf-8") == edited
    assert any(body == edited and st == "submitted" for body, st in _stored(demo_ws).values())

    # Another rep writes in their draft file without submitting: a regeneration keeps the file.
    second = rows[1]
    md2 = Path(second["file"])
    typing = md2.read_text(encoding="utf-8") + "\n（途中まで書いた所感）\n"
    md2.write_text(typing, encoding="utf-8")
    third = daily_reports(str(demo_ws), date=second["date"], staff=second["staff"])
    assert [r["status"] for r in third] == ["edited"]
    assert md2.read_text(encoding="utf-8") == typing

    summary = pipeline_report(str(demo_ws))
    page = Path(summary["file"])
    assert page == ws.root / "reports" / "pipeline.html"
    html = page.read_text(encoding="utf-8")
    for section in ("進行中の案件", "フェーズ別", "担当者別", "今月の受注予定", "停滞案件"):
        assert section in html
    assert summary["open_deals"] > 0 and summary["weighted"] > 0
    assert "<script" not in html


def test_cli_daily_prints_the_draft(demo_ws: Path) -> None:
    from flows.reports.run import plan, yesterday

    ws = config.load(demo_ws)
    sid, day = plan(ws, up_to=yesterday(ws))[0]
    with engine_for(ws.warehouse_url).connect() as conn:
        from warehouse.reporting.staff import staff_by_ids

        email = staff_by_ids(conn, [sid])[0].email
    res = runner.invoke(
        app, ["report", "daily", "-w", str(demo_ws), "--staff", email, "--date", day]
    )
    assert res.exit_code == 0, res.output
    assert "日報" in res.output and "所感" in res.output
    assert (ws.root / "reports" / day / f"{email}.html").exists()

    res = runner.invoke(app, ["report", "daily", "-w", str(demo_ws), "--staff", "nobody@x.example"])
    assert res.exit_code == 2 and "nobody@x.example" in res.output

    res = runner.invoke(app, ["report", "pipeline", "-w", str(demo_ws)])
    assert res.exit_code == 0, res.output
    assert "total" in res.output and "pipeline.html" in res.output

    res = runner.invoke(app, ["report", "pipeline", "-w", str(demo_ws), "--team", "営業1課"])
    assert res.exit_code == 2 and "no team '営業1課'" in res.output


def test_demo_reports_after_sync(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What `kizuna demo` runs after its sync: the pipeline page and yesterday's-or-latest 日報."""
    from flows.cli.reports import demo_reports
    from flows.reports.run import yesterday

    demo_reports(demo_ws)
    out = capsys.readouterr().out
    ws = config.load(demo_ws)
    assert (ws.root / "reports" / "pipeline.html").exists()
    assert "pipeline.html" in out and "日報 drafts" in out
    days = [p.name for p in (ws.root / "reports").iterdir() if p.is_dir()]
    assert days and all(d <= yesterday(ws) for d in days)


def test_reports_go_to_the_shared_storage_every_worker_sees(
    demo_ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KIZUNA_STORAGE_URL (an fsspec URL; fsspec's in-memory filesystem here, S3 or a shared
    folder in operations): the 日報 files and the pipeline page are written there."""
    import uuid

    import fsspec

    from flows.reports.run import plan, yesterday

    bucket = f"memory://kz-{uuid.uuid4().hex[:8]}/shared"
    monkeypatch.setenv("KIZUNA_STORAGE_URL", bucket)
    ws = config.load(demo_ws)
    sid, day = plan(ws, up_to=yesterday(ws))[0]
    with engine_for(ws.warehouse_url).connect() as conn:
        from warehouse.reporting.staff import staff_by_ids

        email = staff_by_ids(conn, [sid])[0].email
    res = runner.invoke(
        app, ["report", "daily", "-w", str(demo_ws), "--staff", email, "--date", day]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", "pipeline", "-w", str(demo_ws)], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert f"{bucket}/reports/pipeline.html".replace("memory://", "memory:/") in res.output
    fs, base = fsspec.core.url_to_fs(bucket)
    assert "所感" in fs.cat_file(f"{base}/reports/{day}/{email}.md").decode()
    assert fs.cat_file(f"{base}/reports/pipeline.html").decode().startswith("<!DOCTYPE html>")
