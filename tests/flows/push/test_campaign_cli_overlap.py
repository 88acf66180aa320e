"""Two `kizuna campaigns run` of one approved plan started at the same moment from the command
line (as an operator would while `kizuna serve` picked the plan up): one sends, the other waits
for it and stands back; every eligible recipient gets one mail, counted at the SMTP server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, text

from flows.config import load
from flows.push.campaign_render import message_id
from flows.push.campaign_run import plan
from flows.push.config import push_config
from tests.conftest import PG_URL
from tests.support.push_bulk import seed_recipients
from tests.support.push_smtp import smtp_server

ROOT = Path(__file__).resolve().parents[3]


def _url(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return str(engine.url)
    with engine.connect() as conn:
        schema = conn.execute(text("show search_path")).scalar_one()
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@pytest.mark.slow
@pytest.mark.postgres
def test_two_cli_runs_of_one_plan_send_each_mail_once(engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip(
            "two Prefect processes cost a minute: proven on PostgreSQL (the ledger and "
            "lease are the same code on SQLite, see test_campaign_overlap)"
        )
    groups = seed_recipients(engine, 30, seed=41)
    with smtp_server() as (box, port):
        box.delay = 0.3  # ~8 s of sending: the second run arrives while the first sends
        ws = {
            "version": 1,
            "company": {"name": "株式会社サンプル", "domains": ["own.example"]},
            "segments": {"everyone": {"field": "person.email", "exists": True}},
            "campaigns": {
                "bulk": {
                    "segment": "everyone",
                    "channel": "main",
                    "batch_size": 20,
                    "steps": [{"ja": {"subject": "{{ person.name }} 様 ご案内", "text": "本文"}}],
                }
            },
            "outbound": {
                "sender": "営業部 <sales@own.example>",
                "unsubscribe_address": "unsubscribe@own.example",
                "quiet_hours": None,
                "channels": {
                    "main": {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none"}
                },
            },
        }
        f = tmp_path / "kizuna.yaml"
        f.write_text(yaml.safe_dump(ws, allow_unicode=True), encoding="utf-8")
        env = {**os.environ, "KIZUNA_WAREHOUSE_URL": _url(engine)}
        env.pop("PREFECT_HOME", None)
        os.environ["KIZUNA_WAREHOUSE_URL"] = env["KIZUNA_WAREHOUSE_URL"]
        try:
            cfg = push_config(load(f))
        finally:
            del os.environ["KIZUNA_WAREHOUSE_URL"]
        plan(engine, cfg, "bulk")  # the approved dry run
        cmd = [sys.executable, "-m", "flows.cli.main", "campaigns", "run", "bulk", "-w", str(f)]
        procs = []
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            time.sleep(0.2)
        outs = [p.communicate(timeout=300) for p in procs]
        received = box.ids()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err[-2000:]
        assert "Traceback" not in out + err
    text_out = "".join(o for o, _ in outs)
    assert "another run sent the approved plan meanwhile" in text_out, text_out
    secret = cfg.unsubscribe_secret()
    expected = {message_id(secret, "bulk", p, 1, "own.example") for p in groups["eligible"]}
    assert set(received) == expected and max(received.values()) == 1
