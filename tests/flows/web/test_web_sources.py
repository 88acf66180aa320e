"""Sources (admins): a sync run from the page, each stream's last run and cursor, and the
quarantine with the reason and the file to fix."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from flows.web.app import from_workspace
from tests.flows.cli.support import workspace
from tests.flows.web.conftest import World, csrf_of, sign_in
from warehouse import schema as t

CSV = "顧客ID,会社名,氏名,メールアドレス\nC1,株式会社いろは,田中 一郎,ichiro@iroha.jp\n"


def test_admin_runs_a_sync_and_reads_status_and_quarantine(
    prefect_harness: None, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "customers.csv").write_bytes(CSV.encode("cp932"))
    src = {"customers": {"type": "spreadsheet", "path": "customers.csv"}}
    app = from_workspace(workspace(tmp_path, world.engine, monkeypatch, sources=src))
    boss, rep = TestClient(app, follow_redirects=False), TestClient(app, follow_redirects=False)
    sign_in(boss, "boss")
    sign_in(rep, "a1")
    assert rep.get("/admin/sources").status_code == 403
    page = boss.get("/admin/sources")
    assert page.status_code == 200 and "No stream has run yet" in page.text
    token = csrf_of(page.text)
    assert (
        boss.post("/admin/sources/sync", data={"source": "nope", "csrf": token}).status_code == 400
    )
    r = boss.post("/admin/sources/sync", data={"source": "customers", "csrf": token})
    assert r.status_code == 303 and "sync%20finished" in r.headers["location"]
    with world.engine.begin() as conn:
        conn.execute(
            t.table(t.Quarantine)
            .insert()
            .values(
                connector="customers",
                stream="rows",
                source_id="C9",
                reason="no name and no e-mail address",
                path="customers.csv:7",
                created_at=datetime.now(UTC),
                row_key="k1",
            )
        )
    page = boss.get("/admin/sources").text
    assert "customers/rows" in page and "completed" in page
    assert "customers.csv:7" in page and "no name and no e-mail address" in page
