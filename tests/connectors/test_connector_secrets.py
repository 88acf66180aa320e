"""Credentials of the IMAP and CalDAV sources never reach logs, errors, run records or Prefect.

Each test makes authentication fail on a real server (the password is wrong, or right for a
different account) and then greps everything a person could read afterwards for it.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select

from flows.config import load
from flows.engine import run_stream
from flows.sources import registry
from kizuna.errors import AuthError
from tests.support.servers import PASSWORD, Dovecot, Radicale, radicale
from warehouse import schema as t

CALDAV_PASSWORD = "cal-Secret-9b2e"
WRONG = "wrong-Pw-3c9d-" + PASSWORD


@pytest.fixture(scope="module")
def radicale_auth() -> Iterator[Radicale]:
    with radicale(users={"sato": CALDAV_PASSWORD}) as server:
        yield server


def _workspace(tmp_path: Path, imap: Dovecot, user: str, cal: Radicale) -> Path:
    ws = {
        "company": {"name": "絆テスト", "domains": ["kizuna.example"]},
        "warehouse": {"url": "sqlite:///wh.db"},
        "sources": {
            "mailbox": {
                "type": "imap",
                "host": imap.host,
                "port": imap.port,
                "security": "none",
                "username": user,
                "password_env": "KIZUNA_TEST_IMAP_PW",
                "folders": ["INBOX"],
            },
            "calendar": {
                "type": "caldav",
                "url": cal.url,
                "username": "sato",
                "password_env": "KIZUNA_TEST_CALDAV_PW",
                "calendars": ["/sato/work/"],
            },
        },
    }
    p = tmp_path / "kizuna.yaml"
    p.write_text(yaml.safe_dump(ws, allow_unicode=True), encoding="utf-8")
    return p


def _secrets() -> list[str]:
    return [PASSWORD, WRONG, CALDAV_PASSWORD, "wrong-" + CALDAV_PASSWORD]


def _assert_clean(text: str, where: str) -> None:
    for s in _secrets():
        assert s not in text, f"a password leaked into {where}"


def test_auth_failures_name_the_account_and_leak_nothing(
    tmp_path: Path,
    engine: Engine,
    dovecot_server: Dovecot,
    radicale_auth: Radicale,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    user = dovecot_server.new_user()
    monkeypatch.setenv("KIZUNA_TEST_IMAP_PW", WRONG)
    monkeypatch.setenv("KIZUNA_TEST_CALDAV_PW", "wrong-" + CALDAV_PASSWORD)
    ws = load(_workspace(tmp_path, dovecot_server, user, radicale_auth))
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    for source, account in (("mailbox", user), ("calendar", "sato")):
        spec = registry.streams(ws, source)[0]
        _assert_clean(repr(spec) + repr(registry.source_config(ws, source)), "the config repr")
        with pytest.raises(AuthError) as info:
            run_stream(engine, spec, "run-secret")
        assert account in str(info.value)
        errors.append(str(info.value))
        errors.append(repr(info.value))
        errors.extend(traceback.format_exception(info.value))
    with engine.connect() as conn:
        stored = conn.execute(select(t.SyncRun.error)).scalars().all()
    assert len(stored) == 2 and all(e and "AuthError" in e for e in stored)
    out, err = capfd.readouterr()
    _assert_clean("\n".join(errors), "an error message or traceback")
    _assert_clean("\n".join(str(e) for e in stored), "the run record")
    _assert_clean(caplog.text, "the logs")
    _assert_clean(out + err, "stdout/stderr")


def test_prefect_run_with_a_revoked_password_leaks_nothing(
    prefect_harness: None,
    tmp_path: Path,
    dovecot_server: Dovecot,
    radicale_auth: Radicale,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogWorker

    from flows.sync import sync_workspace

    user = dovecot_server.new_user()
    monkeypatch.setenv("KIZUNA_TEST_IMAP_PW", WRONG)
    monkeypatch.setenv("KIZUNA_TEST_CALDAV_PW", "wrong-" + CALDAV_PASSWORD)
    ws_file = _workspace(tmp_path, dovecot_server, user, radicale_auth)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RuntimeError, match="some streams failed") as info:
        sync_workspace(str(ws_file), None, "run-prefect-secret")
    message = str(info.value)
    assert user in message and "sato" in message
    APILogWorker.drain_all(timeout=5)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
        states = [s.message or "" for r in runs for s in client.read_flow_run_states(r.id)]
        logs = [entry.message for entry in client.read_logs()]
        artifacts = [str(a.data) + str(a.description) for a in client.read_artifacts()]
    _assert_clean(message, "the flow's error")
    _assert_clean("\n".join(states), "Prefect run states")
    _assert_clean("\n".join(logs), "Prefect logs")
    _assert_clean("\n".join(artifacts), "Prefect artifacts")
    _assert_clean(caplog.text, "local logs")
    assert any("login refused" in s or "credentials refused" in s for s in states + logs)


def test_a_right_password_syncs_and_is_still_not_logged(
    engine: Engine,
    tmp_path: Path,
    dovecot_server: Dovecot,
    radicale_auth: Radicale,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import caldav

    from tests.support.servers import message

    client = caldav.DAVClient(url=radicale_auth.url, username="sato", password=CALDAV_PASSWORD)
    try:
        principal = client.principal()
        if not any(str(c.url).endswith("/sato/work/") for c in principal.calendars()):
            principal.make_calendar(name="work", cal_id="work")
    finally:
        client.close()
    user = dovecot_server.new_user()
    dovecot_server.append(user, "INBOX", message("見積のご依頼"))
    monkeypatch.setenv("KIZUNA_TEST_IMAP_PW", PASSWORD)
    monkeypatch.setenv("KIZUNA_TEST_CALDAV_PW", CALDAV_PASSWORD)
    ws = load(_workspace(tmp_path, dovecot_server, user, radicale_auth))
    caplog.set_level(logging.DEBUG)
    mail = run_stream(engine, registry.streams(ws, "mailbox")[0], "ok")
    cal = run_stream(engine, registry.streams(ws, "calendar")[0], "ok")
    assert mail.stats.inserted >= 1 and cal.pages >= 1
    _assert_clean(caplog.text, "the logs of a successful run")
