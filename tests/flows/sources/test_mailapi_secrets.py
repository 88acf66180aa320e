"""Credentials never leave their box: not in logs, exceptions, run records or Prefect artifacts.

The Microsoft 365 source runs through the real Prefect sync flow with its client secret and
the access token it obtains both made of a marker string; one mailbox works, the other's
token is refused. Everything the run leaves behind is then searched for the marker.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml
from pydantic import SecretStr
from sqlalchemy import select

from flows.sources import gmail as source_gmail
from flows.sources import m365 as source_m365
from flows.sources.google_common import auth_for
from flows.workspace import Company, Workspace
from tests.support.fakes.graph_fakes import (
    BASE,
    CLIENT,
    TENANT,
    TOKEN_URL,
    graph_error,
    message,
    page,
)
from warehouse import schema as t

MARK = "KZSECRETMARK"
CLIENT_SECRET = f"cs~{MARK}~0123456789"
ACCESS_TOKEN = f"eyJ0eXAi.{MARK}.sig"
OK_BOX = "jiro@ourco.co.jp"
BAD_BOX = "saburo@ourco.co.jp"


def _workspace(tmp_path: Path) -> Path:
    ws = {
        "company": {"name": "株式会社アワコ", "domains": ["ourco.co.jp"]},
        "warehouse": {"url": "sqlite:///wh.db"},
        "sources": {
            "m365": {
                "type": "m365",
                "tenant_id": TENANT,
                "client_id": CLIENT,
                "client_secret_env": "KZ_SECRET_TEST_M365",
                "mailboxes": [OK_BOX, BAD_BOX],
                "folders": ["inbox"],
                "calendar": False,
            }
        },
    }
    p = tmp_path / "kizuna.yaml"
    p.write_text(yaml.safe_dump(ws, allow_unicode=True), encoding="utf-8")
    return p


def _graph(request: httpx.Request) -> httpx.Response:
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    if "saburo" in request.url.path:
        return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.")
    delta = f"{BASE}/users/jiro%40ourco.co.jp/mailFolders/inbox/messages/delta"
    return page([message("AAMk-1", "<s1@customer.co.jp>")], delta_link=f"{delta}?$deltatoken=1")


def _token(request: httpx.Request) -> httpx.Response:
    assert MARK in request.content.decode()  # the secret is sent where it belongs, only there
    return httpx.Response(
        200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN}
    )


async def _prefect_records() -> list[str]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        artifacts = await client.read_artifacts()
        logs = await client.read_logs()
        runs = await client.read_flow_runs()
        out = [repr(a.data) + repr(a.description) for a in artifacts]
        out += [log.message for log in logs]
        out += [repr(r.state.message if r.state else "") for r in runs]
    return out


def test_secrets_stay_out_of_logs_errors_runs_and_artifacts(
    prefect_harness: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from flows.runtime import engine_for
    from flows.sync import sync_workspace

    monkeypatch.setenv("KZ_SECRET_TEST_M365", CLIENT_SECRET)
    source_m365._tokens.clear()
    ws_file = _workspace(tmp_path)
    caplog.set_level(logging.DEBUG)
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()  # Prefect's own API
        router.route(host="localhost").pass_through()
        router.post(TOKEN_URL).mock(side_effect=_token)
        router.route(host="graph.microsoft.com").mock(side_effect=_graph)
        with pytest.raises(RuntimeError) as info:
            sync_workspace(str(ws_file), None, "secret-run")

    message_text = str(info.value)
    assert f"{BAD_BOX}/mail/inbox" in message_text and "401" in message_text
    assert OK_BOX + "/mail/inbox" not in message_text  # the healthy mailbox synced

    engine = engine_for(f"sqlite:///{tmp_path / 'wh.db'}")
    with engine.connect() as conn:
        runs = conn.execute(select(t.SyncRun.stream, t.SyncRun.status, t.SyncRun.error)).all()
        keys = conn.execute(select(t.Activity.key)).scalars().all()
        cursors = conn.execute(select(t.SyncState.cursor)).scalars().all()
    assert {(s, st) for s, st, _ in runs} == {
        (f"{OK_BOX}/mail/inbox", "completed"),
        (f"{BAD_BOX}/mail/inbox", "failed"),
    }
    assert keys == ["mail:s1@customer.co.jp"]

    everything: list[str] = [message_text, caplog.text, repr(runs), repr(cursors)]
    everything += asyncio.run(_prefect_records())
    assert any("kizuna-sync" in x or "saburo" in x for x in everything[4:])  # we did read them
    leaks = [x[:200] for x in everything if MARK in x]
    assert leaks == []


def test_secret_models_never_print_their_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_json = (
        '{"refresh_token": "1//' + MARK + '", "client_id": "c.apps.googleusercontent.com",'
        ' "client_secret": "' + MARK + '-cs", "type": "authorized_user"}'
    )
    monkeypatch.setenv("KZ_GMAIL_TOKEN", token_json)
    ws = Workspace(company=Company(name="x", domains=["ourco.co.jp"]), path=tmp_path / "k.yaml")
    cfg = source_gmail.Config(accounts=[OK_BOX], oauth_token_env={OK_BOX: "KZ_GMAIL_TOKEN"})
    auth = auth_for(cfg, ws, "gmail", OK_BOX)
    creds = auth.credentials_for(OK_BOX, ["https://www.googleapis.com/auth/gmail.readonly"])
    assert creds.refresh_token == f"1//{MARK}"  # resolved for use...
    for shown in (repr(auth), str(auth), repr(cfg), auth.model_dump_json(), auth.fix_for(OK_BOX)):
        assert MARK not in shown  # ...but never shown
    assert "KZ_GMAIL_TOKEN" in auth.fix_for(OK_BOX)

    from connectors.mail.graph import GraphAuth

    graph = GraphAuth(tenant_id=TENANT, client_id=CLIENT, client_secret=SecretStr(CLIENT_SECRET))
    assert MARK not in repr(graph) and MARK not in graph.model_dump_json()


def test_missing_secret_names_the_variable_not_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kizuna.errors import ConfigError

    monkeypatch.delenv("KZ_NOT_SET_ANYWHERE", raising=False)
    monkeypatch.setattr("flows.secrets.block_value", lambda name: None)
    ws = Workspace(company=Company(name="x", domains=["ourco.co.jp"]), path=tmp_path / "k.yaml")
    cfg = source_gmail.Config(accounts=[OK_BOX], service_account_key_env="KZ_NOT_SET_ANYWHERE")
    spec: Any = source_gmail.streams("gmail", cfg, ws)[0]
    with pytest.raises(ConfigError) as info:
        list(spec.read(None))
    text = str(info.value)
    assert "KZ_NOT_SET_ANYWHERE" in text and "kz-not-set-anywhere" in text
    assert "sources.gmail.service_account_key_env" in text
