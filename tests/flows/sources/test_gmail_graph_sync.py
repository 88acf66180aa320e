"""Gmail and Microsoft 365 end to end: connector → mapping → ``run_stream`` → warehouse.

The same mail (one Message-ID) seen in a Gmail mailbox and in an Exchange Online mailbox is one
activity; deletes from one source keep it alive while the other still has it; a stale Gmail
history id resyncs the mailbox; one account's revoked credentials fail only its stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from connectors.throttle import RetryPolicy, TokenBucket
from flows.engine import StreamSpec, run_stream
from flows.sources import gmail as source_gmail
from flows.sources import m365 as source_m365
from flows.workspace import Company, Workspace
from kizuna.errors import AuthError
from tests.support.fakes.google_fakes import NOT_FOUND, Script, gmail_raw, ok, rfc822, service
from tests.support.fakes.graph_fakes import (
    BASE,
    CLIENT,
    SECRET,
    TENANT,
    GraphScript,
    graph_mock,
    message,
    page,
    removed,
)
from warehouse import schema as t

MID = "<Deal-42.20260303@Customer.co.jp>"
HANAKO = "hanako@ourco.co.jp"
JIRO = "jiro@ourco.co.jp"


def _ws(tmp_path: Path) -> Workspace:
    return Workspace(
        company=Company(name="株式会社アワコ", domains=["ourco.co.jp"]), path=tmp_path / "k.yaml"
    )


def _opts() -> dict[str, Any]:
    return {
        "policy": RetryPolicy(max_retries=1, sleep=lambda s: None, rand=lambda: 0.0),
        "budget": TokenBucket(1000.0, 100_000.0, clock=lambda: 0.0, sleep=lambda s: None),
    }


def _gmail_spec(
    tmp_path: Path, scripts: dict[str, Script], accounts: list[str]
) -> list[StreamSpec]:
    cfg = source_gmail.Config(accounts=accounts, service_account_key_env="UNUSED_SA_KEY")
    return source_gmail.streams(
        "gmail",
        cfg,
        _ws(tmp_path),
        service_for=lambda acct: service("gmail", "v1", scripts[acct]),
        options=_opts(),
    )


def _m365_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StreamSpec:
    monkeypatch.setenv("KZ_TEST_M365_SECRET", SECRET)
    cfg = source_m365.Config(
        tenant_id=TENANT,
        client_id=CLIENT,
        client_secret_env="KZ_TEST_M365_SECRET",
        mailboxes=[JIRO],
        folders=["inbox"],
        calendar=False,
    )
    (spec,) = source_m365.streams("m365", cfg, _ws(tmp_path), options=_opts())
    return spec


def _activities(engine: Engine) -> list[Any]:
    a = t.Activity
    with engine.connect() as conn:
        return list(conn.execute(select(a.key, a.subject, a.direction, a.deleted_at)).all())


def _lineage(engine: Engine) -> list[tuple[str, str, str, bool]]:
    sr = t.SourceRecord
    with engine.connect() as conn:
        rows = conn.execute(
            select(sr.connector, sr.stream, sr.source_id, sr.deleted_at).where(
                sr.entity == "activity"
            )
        ).all()
    return sorted((c, s, i, d is not None) for c, s, i, d in rows)


def test_same_mail_via_gmail_and_graph_is_one_activity(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_m365._tokens.clear()
    raw = rfc822(MID, to="Sato Hanako <hanako@ourco.co.jp>, Jiro <jiro@ourco.co.jp>")
    gmail_script = Script(
        [
            ok({"emailAddress": HANAKO, "historyId": "1000"}),
            ok({"messages": [{"id": "g1", "threadId": "tg1"}], "resultSizeEstimate": 1}),
            ok(gmail_raw("g1", raw)),
        ]
    )
    (gspec,) = _gmail_spec(tmp_path, {HANAKO: gmail_script}, [HANAKO])
    res = run_stream(engine, gspec, "run-1")
    assert res.stats.inserted >= 1

    delta = f"{BASE}/users/jiro%40ourco.co.jp/mailFolders/inbox/messages/delta"
    graph = GraphScript(
        [
            page(
                [
                    message(
                        "AAMk-J1",
                        MID,
                        to=[("hanako@ourco.co.jp", "佐藤 花子"), ("jiro@ourco.co.jp", "Jiro")],
                    )
                ],
                delta_link=f"{delta}?$deltatoken=D1",
            )
        ]
    )
    mspec = _m365_spec(tmp_path, monkeypatch)
    with graph_mock(graph):
        run_stream(engine, mspec, "run-1")

    acts = _activities(engine)
    assert len(acts) == 1
    key, subject, direction, deleted = acts[0]
    assert key == "mail:deal-42.20260303@customer.co.jp"
    assert (subject, direction, deleted) == ("お見積りの件", "inbound", None)
    assert _lineage(engine) == [
        ("gmail", HANAKO, "g1", False),
        ("m365", f"{JIRO}/mail/inbox", "AAMk-J1", False),
    ]
    with engine.connect() as conn:
        pe = t.PersonEmail
        # Each mailbox's stream has its own participant record of the address (the
        # resolver links them); the address is the only one.
        assert set(conn.execute(select(pe.email)).scalars()) == {"taro@customer.co.jp"}

    # Gmail: permanently deleted. The activity lives on: Exchange still has the mail.
    gmail_script2 = Script(
        [
            ok(
                {
                    "history": [
                        {
                            "id": "1001",
                            "messagesDeleted": [{"message": {"id": "g1", "threadId": "tg1"}}],
                        }
                    ],
                    "historyId": "1001",
                }
            )
        ]
    )
    (gspec2,) = _gmail_spec(tmp_path, {HANAKO: gmail_script2}, [HANAKO])
    run_stream(engine, gspec2, "run-2")
    assert gmail_script2.params(0)["startHistoryId"] == "1000"
    assert _activities(engine)[0][3] is None

    # Exchange: removed too. Now no source has it: the activity is retired.
    graph2 = GraphScript([page([removed("AAMk-J1")], delta_link=f"{delta}?$deltatoken=D2")])
    with graph_mock(graph2):
        run_stream(engine, mspec, "run-2")
    assert str(graph2.requests[0].url) == f"{delta}?$deltatoken=D1"
    assert _activities(engine)[0][3] is not None


def test_stale_history_id_resyncs_the_mailbox_and_retires_vanished_mail(
    engine: Engine, tmp_path: Path
) -> None:
    first = Script(
        [
            ok({"historyId": "50"}),
            ok({"messages": [{"id": "a"}, {"id": "b"}]}),
            ok(gmail_raw("a", rfc822("<a@customer.co.jp>"))),
            ok(gmail_raw("b", rfc822("<b@customer.co.jp>"))),
        ]
    )
    (spec,) = _gmail_spec(tmp_path, {HANAKO: first}, [HANAKO])
    run_stream(engine, spec, "r1")

    # Weeks later: history id 50 is gone (404), and "b" was deleted in the meantime.
    second = Script(
        [
            NOT_FOUND,
            ok({"historyId": "900"}),
            ok({"messages": [{"id": "a"}]}),
            ok(gmail_raw("a", rfc822("<a@customer.co.jp>"))),
        ]
    )
    (spec,) = _gmail_spec(tmp_path, {HANAKO: second}, [HANAKO])
    res = run_stream(engine, spec, "r2")
    assert res.resynced and res.unchanged == 1
    assert second.params(0)["startHistoryId"] == "50"
    live = {k: d for k, _, _, d in _activities(engine)}
    assert live["mail:a@customer.co.jp"] is None
    assert live["mail:b@customer.co.jp"] is not None  # vanished during the gap: retired
    with engine.connect() as conn:
        cur = conn.execute(select(t.SyncState.cursor).where(t.SyncState.stream == HANAKO)).scalar()
    assert cur == {"history_id": "900", "phase": "incremental", "page_token": None}


def test_revoked_account_fails_alone(engine: Engine, tmp_path: Path) -> None:
    import json

    from google.oauth2.credentials import Credentials

    revoked = Script(
        [
            (
                {"status": "400"},
                json.dumps(
                    {
                        "error": "invalid_grant",
                        "error_description": "Token has been expired or revoked.",
                    }
                ),
            )
        ]
    )
    healthy = Script(
        [
            ok({"historyId": "7"}),
            ok({"messages": [{"id": "x"}]}),
            ok(gmail_raw("x", rfc822("<x@customer.co.jp>"))),
        ]
    )
    creds = Credentials(
        token=None,
        refresh_token="1//REFRESH-TOKEN-SECRET",
        client_id="cid",
        client_secret="OAUTH-CLIENT-SECRET",
        token_uri="https://oauth2.googleapis.com/token",
    )
    cfg = source_gmail.Config(
        accounts=[HANAKO, JIRO],
        oauth_token_env={HANAKO: "GMAIL_TOKEN_HANAKO"},
        service_account_key_env="GOOGLE_SA_KEY",
    )

    def make(acct: str) -> Any:
        if acct == HANAKO:
            return service("gmail", "v1", revoked, credentials=creds)
        return service("gmail", "v1", healthy)

    specs = source_gmail.streams("gmail", cfg, _ws(tmp_path), service_for=make, options=_opts())
    errors: dict[str, str] = {}
    for spec in specs:
        try:
            run_stream(engine, spec, "r1")
        except AuthError as exc:
            errors[spec.stream] = str(exc)
    assert list(errors) == [HANAKO]
    assert "Run Google's OAuth consent again for hanako@ourco.co.jp" in errors[HANAKO]
    assert "GMAIL_TOKEN_HANAKO" in errors[HANAKO] and "SECRET" not in errors[HANAKO]
    assert [k for k, *_ in _activities(engine)] == ["mail:x@customer.co.jp"]
    with engine.connect() as conn:
        runs = dict(conn.execute(select(t.SyncRun.stream, t.SyncRun.status)).all())
        error = conn.execute(select(t.SyncRun.error).where(t.SyncRun.stream == HANAKO)).scalar_one()
    assert runs == {HANAKO: "failed", JIRO: "completed"}
    assert "invalid_grant" in (error or "") and "SECRET" not in (error or "")


def test_m365_calendar_stream_through_the_engine(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from tests.mappings.mail.test_graph_mapping import graph_event

    source_m365._tokens.clear()
    monkeypatch.setenv("KZ_TEST_M365_SECRET", SECRET)
    cfg = source_m365.Config(
        tenant_id=TENANT,
        client_id=CLIENT,
        client_secret_env="KZ_TEST_M365_SECRET",
        mailboxes=[JIRO],
        mail=False,
    )
    now = datetime(2026, 3, 1, tzinfo=UTC)
    (spec,) = source_m365.streams("m365", cfg, _ws(tmp_path), options=_opts(), now=now)
    assert spec.stream == f"{JIRO}/calendar"
    cal = f"{BASE}/users/jiro%40ourco.co.jp/calendarView/delta"
    first = GraphScript([page([graph_event()], delta_link=f"{cal}?$deltatoken=C1", entity="event")])
    with graph_mock(first):
        run_stream(engine, spec, "r1")
    assert "startDateTime" in first.requests[0].url.params
    a, ap = t.Activity, t.ActivityParticipant
    with engine.connect() as conn:
        (act_id, kind, deleted) = conn.execute(select(a.id, a.kind, a.deleted_at)).one()
        responses = dict(
            conn.execute(select(ap.email, ap.response).where(ap.activity_id == act_id)).all()
        )
    assert (kind, deleted) == ("meeting", None)
    assert responses["taro@customer.co.jp"] == "accepted"
    assert responses["hanako@ourco.co.jp"] == "tentative"

    second = GraphScript(
        [
            page(
                [removed("AAMkAGI2-ev1", "event")],
                delta_link=f"{cal}?$deltatoken=C2",
                entity="event",
            )
        ]
    )
    with graph_mock(second):
        run_stream(engine, spec, "r2")
    with engine.connect() as conn:
        assert conn.execute(select(a.deleted_at)).scalar_one() is not None
