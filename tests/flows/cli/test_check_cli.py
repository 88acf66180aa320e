"""``kizuna check`` against real servers: Dovecot (IMAP login, folders) and aiosmtpd (SMTP
login and NOOP), one line per check with the fix, nothing synced or sent."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.flows.cli.support import kizuna
from tests.support.push.push_smtp import smtp_server
from tests.support.servers import PASSWORD, Dovecot


def test_check_connects_to_every_source_and_channel_without_sending(
    dovecot_server: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KIZUNA_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("KZ_IMAP_PW", PASSWORD)
    monkeypatch.setenv("KZ_WRONG_PW", "not-the-password")
    monkeypatch.delenv("KZ_SLACK_URL", raising=False)
    (tmp_path / "customers.csv").write_text(
        "顧客ID,氏名,ランク\nC1,田中 太郎,A\n", encoding="utf-8"
    )
    user = dovecot_server.new_user()
    imap = {
        "type": "imap",
        "host": dovecot_server.host,
        "port": dovecot_server.port,
        "security": "none",
        "username": user,
        "password_env": "KZ_IMAP_PW",
        "folders": ["INBOX"],
    }
    with smtp_server() as (box, port):
        data = {
            "company": {"name": "株式会社サンプル", "domains": ["ours.co.jp"]},
            "warehouse": {"url": "sqlite:///wh.db"},
            "sources": {
                "customers": {"type": "spreadsheet", "path": "customers.csv"},
                "gone": {"type": "spreadsheet", "path": "missing.csv"},
                "mailbox": imap,
                "wrongpw": {**imap, "password_env": "KZ_WRONG_PW"},
                "nofolder": {**imap, "folders": ["INBOX", "Nosuch"]},
                "closed": {**imap, "port": 1},
            },
            "outbound": {
                "sender": "営業部 <sales@ours.co.jp>",
                "unsubscribe_address": "unsubscribe@ours.co.jp",
                "channels": {
                    "relay": {
                        "type": "smtp",
                        "host": "127.0.0.1",
                        "port": port,
                        "security": "none",
                    },
                    "team": {"type": "slack", "webhook_env": "KZ_SLACK_URL"},
                    "outbox": {"type": "outbox", "path": "outbox"},
                },
            },
        }
        ws = tmp_path / "kizuna.yaml"
        ws.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        out = kizuna("check", "-w", str(ws))
        assert box.raw == []  # nothing was sent
    lines = out.output.splitlines()

    def line(prefix: str) -> str:
        return next(ln for ln in lines if ln[2:].startswith(prefix))

    assert out.exit_code == 1, out.output
    assert line("workspace:").startswith("✓")
    assert line("warehouse:").startswith("✓")
    assert line("source customers:").startswith("✓") and "key 顧客ID, 1 unmapped" in line(
        "source customers:"
    )
    assert line("source gone:").startswith("✗") and "spreadsheet not found" in line("source gone:")
    assert line("source mailbox login:").startswith("✓") and f"logged in as {user}" in line(
        "source mailbox login:"
    )
    assert line("source wrongpw login:").startswith("✗")
    assert "no folder Nosuch" in line("source nofolder login:")
    assert line("source closed server:").startswith("✗") and "unreachable" in line(
        "source closed server:"
    )
    assert line("channel relay:").startswith("✓") and "nothing sent" in line("channel relay:")
    assert line("channel team secret:").startswith("✗") and "KZ_SLACK_URL" in line(
        "channel team secret:"
    )
    assert line("channel outbox:").startswith("✓")
    assert PASSWORD not in out.output and "not-the-password" not in out.output
    assert "Traceback" not in out.output
