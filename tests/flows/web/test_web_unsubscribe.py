"""One-click unsubscribe (RFC 8058): the mail client's POST, with no session, opts the person
out as consent evidence; a GET only asks; a forged token is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from flows import config
from flows.push.config import push_config
from flows.web.app import from_workspace
from kizuna.tokens import unsubscribe_address
from tests.flows.cli.support import workspace
from tests.flows.web.conftest import World
from tests.flows.web.test_web_campaigns import PUSH
from warehouse import schema as t
from warehouse.access import audit


def test_one_click_post_opts_out_once_and_get_only_asks(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws_file = workspace(tmp_path, world.engine, monkeypatch, **PUSH)
    secret = push_config(config.load(ws_file)).unsubscribe_secret()
    pid = world.customer["a1"]
    mailto = unsubscribe_address("unsubscribe@own.example.jp", secret, pid, "marketing_mail")
    tok = mailto.split("+", 1)[1].split("@", 1)[0]  # what campaign mail puts in ?t=
    c = TestClient(from_workspace(ws_file), follow_redirects=False)

    def opt_outs() -> list[str]:
        with world.engine.connect() as conn:
            c_ = t.table(t.Consent)
            return list(
                conn.execute(
                    select(c_.c.status).where(c_.c.person_id == pid, c_.c.status == "opted_out")
                ).scalars()
            )

    ask = c.get("/unsubscribe", params={"t": tok})
    assert ask.status_code == 200 and "配信停止" in ask.text and not opt_outs()
    one_click = {"content-type": "application/x-www-form-urlencoded"}
    for _ in range(2):
        r = c.post(f"/unsubscribe?t={tok}", content="List-Unsubscribe=One-Click", headers=one_click)
        assert r.status_code == 200 and "配信を停止しました" in r.text
    assert opt_outs() == ["opted_out"]
    forged = tok[:-1] + ("0" if tok[-1] != "0" else "1")
    assert c.post(f"/unsubscribe?t={forged}", content="x", headers=one_click).status_code == 404
    other = f"{world.customer['b1']}.marketing_mail.{tok.rsplit('.', 1)[1]}"
    assert c.post(f"/unsubscribe?t={other}", content="x", headers=one_click).status_code == 404
    assert c.get("/unsubscribe").status_code == 404
    with world.engine.connect() as conn:
        assert [x["action"] for x in audit.recent(conn)].count("unsubscribe") == 1
