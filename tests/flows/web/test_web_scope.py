"""Every route, walked as a rep of team A: nothing of team B's (customer, company, deal,
mail, note, report, staff) appears in any response; and the pipeline follows the scope."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from flows.web.app import from_workspace, routes
from tests.flows.cli.support import workspace
from tests.flows.web.conftest import World, csrf_of, email, sign_in

TEAM_B = (
    "佐藤",
    "次郎",
    "サトウ",
    "Deal of b1",
    "Mail of b1",
    "customer-of-b1",
    "Company of b1",
    "Staff b1",
    "b1@own.example.jp",
    "B team secret",
)


def test_every_route_as_a_team_a_rep_shows_nothing_of_team_b(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = from_workspace(workspace(tmp_path, world.engine, monkeypatch))
    b1, a1 = TestClient(app, follow_redirects=False), TestClient(app, follow_redirects=False)
    sign_in(b1, "b1")
    url = f"/customers/{world.customer['b1']}"
    b1.post(f"{url}/notes", data={"text": "B team secret", "csrf": csrf_of(b1.get(url).text)})
    token = csrf_of(b1.get("/daily", params={"date": "2026-12-03"}).text)
    b1.post("/daily/submit", data={"date": "2026-12-03", "body": "B team secret", "csrf": token})
    sign_in(a1, "a1")
    params = {"cid": world.customer["b1"], "mid": 1, "rid": 1, "name": "news"}
    queries = [
        "",
        "?q=佐藤",
        "?q=サトウ",
        "?q=b1",
        "?team=Team+B",
        f"?owner={world.staff['b1']}",
        "?date=2026-12-03",
    ]
    walked = 0
    token = csrf_of(a1.get("/customers").text)
    for route in routes():
        assert isinstance(route, Route)
        if route.path in ("/sign-out", "/sign-in"):
            continue  # signing out would end the walk; sign-in shows nobody's data
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(params[m.group(1)]), route.path)
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            for q in queries if method == "GET" else [""]:
                data = {
                    "csrf": csrf_of(a1.get("/customers").text),
                    "text": "x",
                    "record": "1",
                    "decision": "reject",
                    "date": "2026-12-03",
                    "body": "x",
                }
                r = a1.request(method, path + q, data=data if method == "POST" else None)
                walked += 1
                body = r.text + r.headers.get("location", "")
                for typed in parse_qs(q.lstrip("?")).get("q", []):
                    body = body.replace(typed, "")  # the search box echoes what was typed
                leaked = [m for m in TEAM_B if m in body]
                assert not leaked, (method, path + q, r.status_code, leaked)
    assert walked > 40


def test_the_pipeline_counts_only_what_the_scope_covers(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = from_workspace(workspace(tmp_path, world.engine, monkeypatch))
    who = {n: TestClient(app, follow_redirects=False) for n in ("a1", "mgr", "boss")}
    for n, c in who.items():
        sign_in(c, n)
    rep = who["a1"].get("/pipeline").text
    assert "Staff a1" in rep and "Staff a2" not in rep and "Staff b1" not in rep
    mgr = who["mgr"].get("/pipeline").text
    assert "Staff a1" in mgr and "Staff a2" in mgr and "Staff b1" not in mgr
    assert "Staff b1" not in who["mgr"].get("/pipeline", params={"team": "Team B"}).text
    boss = who["boss"].get("/pipeline", params={"team": "Team B"}).text
    assert "Staff b1" in boss and "Staff a1" not in boss.split('class="scroll report"')[1]


def test_exports_as_a_team_a_rep_hold_nothing_of_team_b(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from flows.cli.main import app

    ws = str(workspace(tmp_path, world.engine, monkeypatch))
    run = CliRunner()
    for args in (["export", "customers", "--format", "jsonl"], ["export", "activities"]):
        everything = run.invoke(app, [*args, "-w", ws], env={"COLUMNS": "200"})
        assert everything.exit_code == 0, everything.output
        assert "customer-of-b1" in everything.output  # the default (admin) sees all
        mine = run.invoke(app, [*args, "--as", email("a1"), "-w", ws], env={"COLUMNS": "200"})
        assert mine.exit_code == 0, mine.output
        assert "customer-of-a1" in mine.output
        leaked = [m for m in TEAM_B if m in mine.output]
        assert not leaked, (args, leaked)
    nobody = run.invoke(app, ["export", "customers", "--as", "x@nowhere.example", "-w", ws])
    assert nobody.exit_code == 2 and "has no account" in nobody.output
