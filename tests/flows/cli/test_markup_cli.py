"""Data never becomes markup: every command, on a workspace whose names carry Rich markup,
terminal escape codes and bidi overrides, prints them as text (or refuses in one line)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import typer.main
import yaml

from flows.cli.main import app
from tests.flows.cli.support import kizuna

EVIL = "[/bold][link=http://evil.example]x[/link]\x1b[2J\x1b]0;pwned\x07\u202e"
SHOWN = "[/bold][link=http://evil.example]x[/link]"
EMAIL = "taro@acme.example"

SKIP = {
    "demo": "generates a sample company (covered by tests/flows/demo)",
    "serve": "runs schedules until stopped",
    "web": "serves pages until stopped (tests/flows/web drive the same app)",
}


def _commands() -> set[str]:
    out: set[str] = set()

    def walk(c: click.Command, path: list[str]) -> None:
        subs = getattr(c, "commands", None)
        if subs:
            for n, sub in subs.items():
                walk(sub, [*path, n])
        else:
            out.add(" ".join(path))

    walk(typer.main.get_command(app), [])
    return out


def _workspace(tmp_path: Path) -> Path:
    rows = [
        [
            "顧客ID",
            "会社名",
            "氏名",
            "メールアドレス",
            "担当者",
            "案件名",
            "フェーズ",
            "受注予定日",
        ],
        [
            "C1",
            f"ACME {EVIL}",
            f"田中 太郎{EVIL}",
            EMAIL,
            "sato@ours.co.jp",
            f"案件{EVIL}",
            "提案",
            "2026-01-05",
        ],
        ["C2", f"ACME {EVIL}", f"田中 太郎{EVIL}", EMAIL, "sato@ours.co.jp", "", "", ""],
    ]
    import csv

    with (tmp_path / "customers.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    data = {
        "company": {"name": f"株式会社{EVIL}", "domains": ["ours.co.jp"]},
        "warehouse": {"url": "sqlite:///wh.db"},
        "sources": {"customers": {"type": "spreadsheet", "path": "customers.csv"}},
        "segments": {"seg": {"field": "person.email", "exists": True}},
        "campaigns": {
            "news": {
                "segment": "seg",
                "channel": "outbox",
                "purpose": "sales_followup",
                "steps": [{"ja": {"subject": "{{ person.name }} 様", "text": "{{ org.name }}"}}],
            }
        },
        "quotes": {"seller": {"name": f"株式会社{EVIL}", "registration_number": "T7000012050002"}},
        "reminders": {"channel": "outbox", "rules": {"idle": {"type": "deal_idle", "days": 1}}},
        "outbound": {
            "sender": "営業部 <sales@ours.co.jp>",
            "unsubscribe_address": "unsubscribe@ours.co.jp",
            "quiet_hours": None,
            "channels": {"outbox": {"type": "outbox", "path": "outbox"}},
        },
    }
    ws = tmp_path / "kizuna.yaml"
    ws.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return ws


def test_every_command_prints_data_as_text(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KIZUNA_WAREHOUSE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    ws = str(_workspace(tmp_path))
    w = ["-w", ws]
    runs: dict[str, list[str]] = {
        "init": ["init", str(tmp_path / "new.yaml"), "--company", EVIL],
        "sync": ["sync", *w],
        "status": ["status", *w],
        "quarantine": ["quarantine", "--payload", *w],
        "check": ["check", *w],
        "customer show": ["customer", "show", EMAIL, *w],
        "review list": ["review", "list", *w],
        "review accept": ["review", "accept", "999999", *w],
        "review reject": ["review", "reject", "999999", *w],
        "identity split": ["identity", "split", "999999", "1", *w],
        "identity never-link": ["identity", "never-link", "1", "999999", *w],
        "identity resolve": ["identity", "resolve", *w],
        "segments list": ["segments", "list", *w],
        "segments preview": ["segments", "preview", "seg", *w],
        "campaigns list": ["campaigns", "list", *w],
        "campaigns run": ["campaigns", "run", "news", "--dry-run", *w],
        "reminders run": ["reminders", "run", *w],
        "report daily": ["report", "daily", *w],
        "report submit": [
            "report",
            "submit",
            "--staff",
            "sato@ours.co.jp",
            "--date",
            "2026-01-05",
            *w,
        ],
        "report pipeline": ["report", "pipeline", *w],
        "crm push": ["crm", "push", EVIL, *w],
        "sources discover": ["sources", "discover", "customers", *w],
        "sources reset": ["sources", "reset", "customers", EVIL, *w],
        "quote create": ["quote", "create", f"案件{EVIL}", *w],
        "quote reissue": ["quote", "reissue", EVIL, *w],
        "quote list": ["quote", "list", *w],
        "quote push": ["quote", "push", EVIL, "--to", EVIL, "--dry-run", *w],
        "sources types": ["sources", "types"],
        "export crosswalk": ["export", "crosswalk", *w],
        "export activities": ["export", "activities", *w],
        "campaigns status": ["campaigns", "status", "news", *w],
        "export customers": ["export", "customers", *w],
        "export organizations": ["export", "organizations", *w],
        "deployments write": ["deployments", "write", str(tmp_path / "prefect.yaml")],
        "campaigns decide": ["campaigns", "decide", "news", "999999", "--mark-sent", *w],
        "users add": ["users", "add", EVIL, "--create", "--name", EVIL, "--password-stdin", *w],
        "users set-role": ["users", "set-role", EVIL, "rep", *w],
        "users reset-password": ["users", "reset-password", EVIL, "--password-stdin", *w],
        "users scope": ["users", "scope", "rep", EVIL, *w],
        "users list": ["users", "list", *w],
        "customer disclose": ["customer", "disclose", EVIL, "--by", EVIL, *w],
        "customer erase": ["customer", "erase", EVIL, "--yes", "--by", EVIL, *w],
    }
    assert _commands() - set(SKIP) == set(runs), "add the new command to this walk"
    shown_by = {"status", "customer show", "segments preview", "campaigns run"}
    for name, args in runs.items():
        out = kizuna(*args, width=1000)
        assert out.exception is None or isinstance(out.exception, SystemExit), (
            name,
            repr(out.exception),
        )
        assert out.exit_code in (0, 1, 2), (name, out.output)
        for bad in ("\x1b", "\x07", "\u202e", "MarkupError", "Traceback"):
            assert bad not in out.output, (name, bad, out.output)
        if name in shown_by:
            assert SHOWN in out.output, (name, out.output)

    written = yaml.safe_load((tmp_path / "new.yaml").read_text(encoding="utf-8"))
    assert written["company"]["name"] == EVIL  # quoted in the file, whatever it holds
