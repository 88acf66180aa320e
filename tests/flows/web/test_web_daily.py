"""日報 on the web: the rep's draft edited and submitted, the manager reads the team's and
comments; another team's report stays out of a manager's view."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from flows.web.app import from_workspace
from tests.flows.cli.support import workspace
from tests.flows.web.conftest import World, csrf_of, sign_in
from warehouse.access import audit

DAY = "2026-12-03"  # the seeded mail went out at 08:00 JST that day


def test_rep_submits_the_draft_and_the_manager_comments(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = from_workspace(workspace(tmp_path, world.engine, monkeypatch))
    a1, b1, mgr = (TestClient(app, follow_redirects=False) for _ in range(3))
    for c, who in ((a1, "a1"), (b1, "b1"), (mgr, "mgr")):
        assert sign_in(c, who) == 303
    draft = a1.get("/daily", params={"date": DAY})
    assert draft.status_code == 200 and "Mail of a1" in draft.text and "Submit" in draft.text
    assert "Mail of b1" not in draft.text
    assert (tmp_path / "reports" / DAY).is_dir()  # the same files `kizuna report daily` writes
    token = csrf_of(draft.text)
    body = "本日の所感: 田中様へ見積送付。<script>alert(1)</script>"
    r = a1.post("/daily/submit", data={"date": DAY, "body": body, "csrf": token})
    assert r.status_code == 303 and "done=submitted" in r.headers["location"]
    done = a1.get(r.headers["location"]).text
    assert "Submitted" in done and "&lt;script&gt;" in done and "<script>alert" not in done
    b1_token = csrf_of(b1.get("/daily", params={"date": DAY}).text)
    b1.post("/daily/submit", data={"date": DAY, "body": "B team note", "csrf": b1_token})
    assert a1.get("/daily/team").status_code == 403
    team = mgr.get("/daily/team", params={"date": DAY})
    assert team.status_code == 200 and "田中様へ見積送付" in team.text
    assert "B team note" not in team.text
    rid = team.text.split('action="/daily/comment/')[1].split('"')[0]
    r = mgr.post(
        f"/daily/comment/{rid}",
        data={"text": "良いですね。来週フォロー", "csrf": csrf_of(team.text)},
    )
    assert r.status_code == 303
    assert "良いですね。来週フォロー" in a1.get("/daily", params={"date": DAY}).text
    assert (
        a1.post(
            "/daily/submit", data={"date": "2099-01-01", "body": "x", "csrf": token}
        ).status_code
        == 400
    )
    with world.engine.connect() as conn:
        actions = [x["action"] for x in audit.recent(conn)]
    assert actions.count("daily-submit") == 2 and "daily-comment" in actions
