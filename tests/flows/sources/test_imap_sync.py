"""The ``imap`` and ``caldav`` sources end to end: server → connector → mapping → warehouse.

Checks the things only the whole path shows: one activity per Message-ID across folders and
UIDVALIDITY resets, privacy rules applied before anything is stored, headers-only storing no
snippet, expunges retiring the activity, and meetings from CalDAV keyed like other sources.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from flows.engine import run_stream
from flows.sources import caldav as source_caldav
from flows.sources import imap as source_imap
from flows.workspace import Company, Workspace
from tests.connectors.calendar.test_connectors_caldav import event
from tests.support.servers import PASSWORD, Dovecot, Radicale, message
from warehouse import schema as t

WS = Workspace(company=Company(name="絆", domains=["kizuna.example"]))


def _cfg(server: Dovecot, user: str, **kw: Any) -> source_imap.Config:
    return source_imap.Config(
        host=server.host,
        port=server.port,
        security="none",
        username=user,
        password_env="KIZUNA_TEST_IMAP_PW",
        **kw,
    )


def _activities(engine: Engine) -> list[Any]:
    a = t.Activity
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(a.key, a.subject, a.snippet, a.deleted_at, a.attributes).order_by(a.key)
            )
        )


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIZUNA_TEST_IMAP_PW", PASSWORD)


def test_same_mail_in_inbox_and_sent_is_one_activity_and_survives_a_reset(
    engine: Engine, dovecot_server: Dovecot
) -> None:
    server = dovecot_server
    user = server.new_user()
    conn = server.login(user)
    conn.create("Sent")
    conn.logout()
    raw = message("見積書送付の件", msgid="<quote-1@customer.co.jp>")
    server.append(user, "INBOX", raw)
    server.append(user, "Sent", raw)
    server.append(user, "INBOX", message("別件", msgid="<other@customer.co.jp>"))
    cfg = _cfg(server, user, folders=["INBOX", "Sent"], privacy={"capture": "all"})
    specs = source_imap.streams("mailbox", cfg, WS)
    assert [s.stream for s in specs] == ["INBOX", "Sent"]
    for spec in specs:
        run_stream(engine, spec, "r1")
    rows = _activities(engine)
    assert [r.key for r in rows] == ["mail:other@customer.co.jp", "mail:quote-1@customer.co.jp"]

    server.doveadm("mailbox", "update", "-u", user, "--uid-validity", "777", "INBOX")
    again = run_stream(engine, specs[0], "r2")
    assert again.read == 2 and again.stats.deleted == 2  # old UIDs retired, same mail back
    rows = _activities(engine)
    assert len(rows) == 2 and all(r.deleted_at is None for r in rows)

    # Expunged from INBOX but still in Sent: the activity stays; gone from both: retired.
    conn = server.login(user)
    conn.select("INBOX")
    conn.uid("STORE", "1:*", "+FLAGS.SILENT", r"(\Deleted)")
    conn.expunge()
    conn.logout()
    run_stream(engine, specs[0], "r3")
    live = {r.key: r.deleted_at is None for r in _activities(engine)}
    assert live == {"mail:other@customer.co.jp": False, "mail:quote-1@customer.co.jp": True}


def test_privacy_rules_apply_before_storage(engine: Engine, dovecot_server: Dovecot) -> None:
    server = dovecot_server
    user = server.new_user()
    server.append(user, "INBOX", message("商談", msgid="<ext@customer.co.jp>"))
    server.append(
        user,
        "INBOX",
        message("社内", sender="suzuki@kizuna.example", msgid="<int@kizuna.example>"),
    )
    server.append(user, "INBOX", message("顧問", sender="sensei@lawfirm.example", msgid="<law@x>"))
    server.append(
        user,
        "INBOX",
        message("昔の話", msgid="<old@customer.co.jp>", date="Mon, 01 Jan 2024 10:00:00 +0900"),
        internaldate=datetime(2024, 1, 1, 1, 0, tzinfo=UTC),
    )
    cfg = _cfg(
        server,
        user,
        folders=["INBOX"],
        privacy={
            "capture": "external",
            "exclude_domains": ["lawfirm.example"],
            "headers_only": True,
            "retention_days": 365,
        },
    )
    spec = source_imap.streams("mailbox", cfg, WS, now=datetime(2026, 11, 20, tzinfo=UTC))[0]
    result = run_stream(engine, spec, "r1")
    rows = _activities(engine)
    assert [r.key for r in rows] == ["mail:ext@customer.co.jp"]
    assert rows[0].snippet is None and rows[0].subject == "商談"
    # The old mail was dated outside the window by the server too: never fetched.
    assert result.read == 3


def test_caldav_meetings_land_keyed_by_uid_and_deletions_retire_them(
    engine: Engine, radicale_server: Radicale
) -> None:
    url, user = radicale_server.new_calendar()
    radicale_server.put(url, user, "a.ics", event("mtg-a@kizuna", "定例"))
    radicale_server.put(url, user, "b.ics", event("mtg-b@kizuna", "提案"))
    cfg = source_caldav.Config(url=radicale_server.url, username=user, calendars=[url])
    spec = source_caldav.streams("cal", cfg, WS, now=datetime(2026, 11, 20, tzinfo=UTC))[0]
    run_stream(engine, spec, "r1")
    assert [r.key for r in _activities(engine)] == ["meeting:mtg-a@kizuna", "meeting:mtg-b@kizuna"]
    radicale_server.delete(url, user, "a.ics")
    second = run_stream(engine, spec, "r2")
    assert second.stats.deleted == 1
    live = {r.key: r.deleted_at is None for r in _activities(engine)}
    assert live == {"meeting:mtg-a@kizuna": False, "meeting:mtg-b@kizuna": True}


def test_config_errors_name_the_field(tmp_path: Any) -> None:
    import yaml

    from flows.config import load
    from kizuna.errors import ConfigError

    def ws(source: dict[str, Any]) -> Any:
        p = tmp_path / "kizuna.yaml"
        doc = {"company": {"name": "絆", "domains": ["kizuna.example"]}, "sources": {"m": source}}
        p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        return p

    imap = {"type": "imap", "host": "imap.example.co.jp", "username": "sato"}
    with pytest.raises(ConfigError, match=r"sources\.m\.password_env"):
        load(ws(imap))
    with pytest.raises(ConfigError, match=r"sources\.m\.privacy\.capture"):
        load(ws({**imap, "password_env": "PW", "privacy": {"capture": "everything"}}))
    with pytest.raises(ConfigError, match=r"sources\.m\.calendars"):
        load(ws({"type": "caldav", "url": "https://dav.example.co.jp/", "username": "sato"}))
    ok = load(ws({**imap, "password_env": "PW", "privacy": {"exclude_domains": ["gmail.com"]}}))
    assert ok.sources["m"]["type"] == "imap"


def test_caldav_calendar_by_display_name_and_a_missing_one_is_a_config_error(
    radicale_server: Radicale, monkeypatch: pytest.MonkeyPatch
) -> None:
    import caldav

    from kizuna.errors import ConfigError

    user = radicale_server.new_calendar()[1]
    client = caldav.DAVClient(url=radicale_server.url, username=user, password="x")
    try:
        client.principal().make_calendar(name="営業", cal_id="sales")
    finally:
        client.close()
    radicale_server.put(f"{radicale_server.url}{user}/sales/", user, "a.ics", event("a@k", "商談"))
    monkeypatch.setenv("KIZUNA_TEST_CALDAV_PW", "x")
    cfg = source_caldav.Config(
        url=radicale_server.url,
        username=user,
        password_env="KIZUNA_TEST_CALDAV_PW",
        calendars=["営業", "存在しない"],
    )
    found, missing = source_caldav.streams("cal", cfg, WS)
    assert [len(p.records) for p in found.read(None)] == [1]
    with pytest.raises(ConfigError, match="calendar not found"):
        list(missing.read(None))
