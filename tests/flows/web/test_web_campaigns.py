"""Campaign approval on the web: a manager makes the dry-run plan, reads it (lines for their
team's customers only, counts for the rest), approves it with one button, sees the results."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from flows.web.app import from_workspace
from tests.flows.cli.support import workspace
from tests.flows.web.conftest import World, csrf_of, sign_in
from tests.support.push.push_seed import consent

PUSH: dict[str, Any] = {
    "segments": {"customers": {"field": "person.email", "exists": True}},
    "campaigns": {
        "news": {
            "segment": "customers",
            "channel": "outbox",
            "steps": [{"ja": {"subject": "{{ person.name }} 様 ニュース", "text": "本文"}}],
        }
    },
    "outbound": {
        "sender": "営業部 <sales@own.example.jp>",
        "unsubscribe_address": "unsubscribe@own.example.jp",
        "quiet_hours": None,
    },
}


def test_manager_plans_reads_and_approves_a_campaign(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for who in ("a1", "b1"):
        consent(world.engine, world.customer[who], "opted_in")
    app = from_workspace(workspace(tmp_path, world.engine, monkeypatch, **PUSH))
    mgr, rep = TestClient(app, follow_redirects=False), TestClient(app, follow_redirects=False)
    sign_in(mgr, "mgr")
    sign_in(rep, "a1")
    assert rep.get("/campaigns").status_code == 403
    listing = mgr.get("/campaigns")
    assert listing.status_code == 200 and "news" in listing.text
    token = csrf_of(listing.text)
    assert rep.post("/campaigns/news/act", data={"do": "plan", "csrf": token}).status_code == 403
    r = mgr.post("/campaigns/news/act", data={"do": "plan", "csrf": token})
    assert r.status_code == 303 and "made" in r.headers["location"]
    plan = mgr.get("/campaigns/news").text
    assert "田中 太郎" in plan and "customer-of-a1@client.example.com" in plan
    assert "鈴木" in plan  # a2 is in the manager's team: no consent, skipped with the reason
    assert "佐藤" not in plan and "customer-of-b1" not in plan
    assert "1 line(s) are for customers outside your scope" in plan
    plan_id = plan.split('name="plan" value="')[1].split('"')[0]
    stale = mgr.post("/campaigns/news/act", data={"do": "approve", "plan": "0", "csrf": token})
    assert stale.status_code == 409
    r = mgr.post("/campaigns/news/act", data={"do": "approve", "plan": plan_id, "csrf": token})
    assert r.status_code == 303 and "sending" in r.headers["location"]
    again = mgr.post("/campaigns/news/act", data={"do": "approve", "plan": plan_id, "csrf": token})
    assert again.status_code == 409  # one run per plan, however often the button is pressed
    after = follow_run(mgr)
    assert "Approve and send" not in after and "→ sent" in after and "2 of 2 handled" in after
    assert "佐藤" not in after  # the live part keeps the scope too
    page = mgr.get("/campaigns/news").text
    assert "data-refresh" not in page and '<script src="/static/kizuna.js"' in page
    assert "Run done" in page and "<progress" in page
    assert rep.get("/campaigns/news/progress").status_code == 403
    assert mgr.get("/campaigns/nope").status_code == 404


def follow_run(c: TestClient, name: str = "news", seconds: float = 90) -> str:
    """Ask for the live part as kizuna.js does until it stops asking to be refreshed; each
    answer while live shows the progress so far."""
    deadline = time.monotonic() + seconds
    while True:
        part = c.get(f"/campaigns/{name}/progress")
        assert part.status_code == 200 and part.text.lstrip().startswith('<section id="plan"')
        if "data-refresh" not in part.text:
            return part.text
        assert "Sending:" in part.text and "<progress" in part.text
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.2)
