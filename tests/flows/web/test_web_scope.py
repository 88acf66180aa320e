"""Every route, walked as a rep of team A: nothing of team B's (customer, company, deal,
mail, note, report, staff) appears in any response; and the pipeline follows the scope."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select
from starlette.routing import Route
from starlette.testclient import TestClient

from flows.web.app import from_workspace, routes
from tests.flows.cli.support import workspace
from tests.flows.web.conftest import NOW, World, csrf_of, email, sign_in
from warehouse import schema as t

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


@pytest.mark.parametrize("who", ["a1", "mgr"])
def test_every_route_as_team_a_shows_nothing_of_team_b(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, who: str
) -> None:
    """As a rep of team A and as team A's manager (who also sees the campaign pages, with a
    plan that has a line for team B's customer)."""
    from tests.flows.web.test_web_campaigns import PUSH

    app = from_workspace(workspace(tmp_path, world.engine, monkeypatch, **PUSH))
    b1, a1 = TestClient(app, follow_redirects=False), TestClient(app, follow_redirects=False)
    sign_in(b1, "b1")
    url = f"/customers/{world.customer['b1']}"
    b1.post(f"{url}/notes", data={"text": "B team secret", "csrf": csrf_of(b1.get(url).text)})
    token = csrf_of(b1.get("/daily", params={"date": "2026-12-03"}).text)
    b1.post("/daily/submit", data={"date": "2026-12-03", "body": "B team secret", "csrf": token})
    sign_in(a1, who)
    if who == "mgr":
        made = a1.post(
            "/campaigns/news/act", data={"do": "plan", "csrf": csrf_of(a1.get("/campaigns").text)}
        )
        assert made.status_code == 303 and "made" in made.headers["location"]
        assert "田中" in a1.get("/campaigns/news/progress").text
    params = {
        "cid": world.customer["b1"],
        "did": world.deal["b1"],
        "mid": 1,
        "rid": 1,
        "name": "news",
    }
    queries = [
        "",
        "?q=佐藤",
        "?q=サトウ",
        "?q=b1",
        "?team=Team+B",
        f"?owner={world.staff['b1']}",
        "?date=2026-12-03",
        "?stage=提案",
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


def test_the_pipeline_filters_by_stage_within_the_scope(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with world.engine.begin() as conn:
        d = t.table(t.Deal)
        conn.execute(d.update().where(d.c.id == world.deal["a2"]).values(stage="交渉"))
        conn.execute(d.update().where(d.c.id == world.deal["b1"]).values(stage="B only stage"))
    app = from_workspace(workspace(tmp_path, world.engine, monkeypatch))
    mgr = TestClient(app, follow_redirects=False)
    sign_in(mgr, "mgr")
    page = mgr.get("/pipeline").text
    assert '<option value="交渉">' in page and '<option value="提案">' in page
    assert "B only stage" not in page  # another team's stage names are not offered
    report = mgr.get("/pipeline", params={"stage": "交渉"}).text.split('class="scroll report"')[1]
    assert "Staff a2" in report and "Staff a1" not in report
    both = mgr.get("/pipeline", params={"stage": "提案", "owner": world.staff["a2"]}).text
    assert "Staff a" not in both.split('class="scroll report"')[1]
    assert "Staff b1" not in mgr.get("/pipeline", params={"stage": "B only stage"}).text


def _lineage(world: World) -> None:
    """Each seeded customer and company as a spreadsheet row, so the crosswalk has lines."""
    with world.engine.begin() as conn:
        p, o = t.table(t.Person).c, t.table(t.Organization).c
        for who, pid in world.customer.items():
            org = conn.execute(select(p.organization_id).where(p.id == pid)).scalar_one()
            for entity, eid in (("person", pid), ("organization", org)):
                conn.execute(
                    t.table(t.SourceRecord)
                    .insert()
                    .values(
                        connector="sheet",
                        stream="customers",
                        source_id=f"customer-of-{who}",
                        entity=entity,
                        entity_id=eid,
                        payload_hash="0" * 32,
                        first_seen=NOW,
                        last_seen=NOW,
                        locator=f"customers.csv:{pid}",
                    )
                )
        assert conn.execute(select(o.id)).first() is not None


EXPORTS = [
    ["export", "customers", "--format", "jsonl"],
    ["export", "activities"],
    ["export", "crosswalk", "--format", "jsonl"],
    ["export", "organizations", "--format", "jsonl"],
    ["segments", "preview", "customers"],
    ["report", "daily", "--date", "2026-12-03"],
    ["report", "pipeline"],
]
"""Every command that prints or writes warehouse data (test_every_output_command_takes_as
checks that this list is complete)."""


def test_exports_and_reports_as_a_team_a_rep_hold_nothing_of_team_b(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from flows.cli.main import app
    from tests.flows.web.test_web_campaigns import PUSH

    _lineage(world)
    ws = str(workspace(tmp_path, world.engine, monkeypatch, **PUSH))
    run = CliRunner()
    wide = {"COLUMNS": "250"}
    for args in EXPORTS:
        everything = run.invoke(app, [*args, "-w", ws], env=wide)
        assert everything.exit_code == 0, (args, everything.output)
        seen_all = everything.output + _pages(tmp_path)
        assert _names("b1", seen_all), args  # the default (admin) sees all
        _clear_pages(tmp_path)
        mine = run.invoke(app, [*args, "--as", email("a1"), "-w", ws], env=wide)
        assert mine.exit_code == 0, (args, mine.output)
        seen = mine.output + _pages(tmp_path)
        assert _names("a1", seen), (args, seen)
        leaked = [m for m in TEAM_B if m in seen]
        assert not leaked, (args, leaked)
        _clear_pages(tmp_path)
    nobody = run.invoke(app, ["export", "customers", "--as", "x@nowhere.example", "-w", ws])
    assert nobody.exit_code == 2 and "has no account" in nobody.output
    theirs = ["report", "daily", "--date", "2026-12-03", "--staff", email("b1")]
    refused = run.invoke(app, [*theirs, "--as", email("a1"), "-w", ws], env=wide)
    assert refused.exit_code == 2 and "outside what a1@own.example.jp may see" in refused.output


def _names(who: str, text: str) -> bool:
    return any(f"{x}{who}" in text for x in ("of-", "of ", "Staff "))


def _pages(root: Path) -> str:
    """What the reports wrote (the pipeline page, 日報 files), as one text."""
    return "".join(f.read_text(encoding="utf-8") for f in sorted(root.rglob("reports/**/*.*")))


def _clear_pages(root: Path) -> None:
    for f in root.rglob("reports/**/*.*"):
        f.unlink()


def test_every_output_command_takes_as() -> None:
    """Each command that reads customers, deals, activities or reports has ``--as``."""
    import typer.main

    from flows.cli.main import app

    group = typer.main.get_command(app)
    covered = {" ".join(a[:2]) for a in EXPORTS}
    for name in ("export", "segments", "report"):
        sub = group.commands[name]  # type: ignore[attr-defined]
        for cmd_name, cmd in sub.commands.items():
            opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
            if (name == "segments" and cmd_name == "list") or cmd_name == "submit":
                continue  # counts only / writes one's own report: nobody else's rows
            assert "--as" in opts, f"kizuna {name} {cmd_name} lacks --as"
            assert f"{name} {cmd_name}" in covered, f"add kizuna {name} {cmd_name} to EXPORTS"
