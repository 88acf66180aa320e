"""Two `kizuna campaigns run` of one approved plan at the same moment, as an operator would
start one while `kizuna serve` picked the plan up, trial after trial, with SIGKILLs mixed in:
every eligible recipient gets exactly one mail, counted at a real SMTP server (aiosmtpd),
and every trial really overlapped (one run waited for the other's campaign lease).

The channel is plain SMTP with ``sent_folder:`` on a real IMAP server (Dovecot), which the
SMTP server files each accepted message into, as submission servers do: that is what lets
the run that takes over from a killed one confirm an interrupted send instead of guessing.
The first trial starts two fresh `python -m flows.cli.main` processes; the rest fork the
same CLI entry point from one warmed-up process (tests/support/cli_forker.py), so the
trials cost seconds of imports instead of minutes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, delete, select, text

from flows.config import load
from flows.push.campaign_render import message_id
from flows.push.campaign_run import plan
from flows.push.config import PushConfig, push_config
from tests.conftest import PG_URL
from tests.support.cli_forker import Forker, Run
from tests.support.push.push_bulk import seed_recipients
from tests.support.push.push_smtp import Received, smtp_server
from tests.support.servers import PASSWORD, Dovecot
from warehouse.activation.ledger_schema import CampaignPlan, Delivery, PlanEntry
from warehouse.lease_schema import Lease

ROOT = Path(__file__).resolve().parents[4]
# Eight trials (four with a kill) in the suite; KIZUNA_OVERLAP_TRIALS=20 for the long proof.
TRIALS = int(os.environ.get("KIZUNA_OVERLAP_TRIALS", "8"))


def _url(engine: Engine) -> str:
    with engine.connect() as conn:
        schema = conn.execute(text("show search_path")).scalar_one()
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def _workspace(tmp_path: Path, port: int, imap_port: int, user: str) -> Path:
    ws = {
        "version": 1,
        "company": {"name": "株式会社サンプル", "domains": ["own.example"]},
        "segments": {"everyone": {"field": "person.email", "exists": True}},
        "campaigns": {
            "bulk": {
                "segment": "everyone",
                "channel": "main",
                "batch_size": 4,
                "steps": [{"ja": {"subject": "{{ person.name }} 様 ご案内", "text": "本文"}}],
            }
        },
        "outbound": {
            "sender": "営業部 <sales@own.example>",
            "unsubscribe_address": "unsubscribe@own.example",
            "quiet_hours": None,
            "channels": {
                "main": {
                    "type": "smtp",
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "sent_folder": {
                        "host": "127.0.0.1",
                        "port": imap_port,
                        "security": "none",
                        "username": user,
                        "password_env": "KZ_TEST_SENT_PASSWORD",
                    },
                }
            },
        },
    }
    f = tmp_path / "kizuna.yaml"
    f.write_text(yaml.safe_dump(ws, allow_unicode=True), encoding="utf-8")
    return f


def _empty(dovecot: Dovecot, user: str) -> None:
    imap = dovecot.login(user)
    imap.select("Sent")
    if imap.search(None, "ALL")[1][0]:
        imap.store("1:*", "+FLAGS", "\\Deleted")
        imap.expunge()
    imap.logout()


def _holder_pid(engine: Engine) -> int | None:
    with engine.connect() as conn:
        return conn.execute(select(Lease.pid).where(Lease.unit == "campaign:bulk")).scalar()


def _fresh(engine: Engine, box: Received, dovecot: Dovecot, user: str, cfg: PushConfig) -> None:
    """A fresh ledger, mailbox and Sent folder, and a newly approved plan."""
    with engine.begin() as conn:
        for table in (Delivery, PlanEntry, CampaignPlan):
            conn.execute(delete(table))
    with box.lock:
        box.raw.clear()
        box.seen.clear()
    _empty(dovecot, user)
    plan(engine, cfg, "bulk")  # the approved dry run


def _race(engine: Engine, box: Received, runs: list[Run], kill_after: int | None) -> bool:
    """Wait for both runs, SIGKILLing the lease holder once ``kill_after`` mails arrived;
    returns whether one was killed. Every run not killed must end green."""
    deadline = time.monotonic() + 300
    killed: Run | None = None
    while not all(r.done() for r in runs):
        assert time.monotonic() < deadline, [r.text() for r in runs]
        if kill_after is not None and killed is None and len(box.seen) >= kill_after:
            pid = _holder_pid(engine)
            killed = next((r for r in runs if r.pid == pid and not r.done()), None)
            if killed is not None:
                killed.kill()
        time.sleep(0.02)
    for r in runs:
        t = r.text()
        assert r.killed or r.code() == 0, t
        assert "Traceback" not in t and "crashed" not in t, t
    return killed is not None


def _overlapped(runs: list[Run]) -> bool:
    texts = [r.text() for r in runs]
    return any("another run sent the approved plan meanwhile" in t for t in texts)


def _cold(args: list[str], out: Path, env: dict[str, str]) -> Run:
    """A fresh interpreter, as an operator starts `kizuna`."""
    with out.open("w") as f:
        p = subprocess.Popen(
            [sys.executable, "-m", "flows.cli.main", *args], cwd=ROOT, env=env, stdout=f, stderr=f
        )
    return Run(out, p, p.pid)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_cli_runs_of_one_plan_with_kills_send_each_mail_once(
    engine: Engine, tmp_path: Path, dovecot_server: Dovecot, prefect_harness: None
) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip(
            "proven on PostgreSQL; SQLite runs the same lease and ledger code in "
            "test_campaign_overlap"
        )
    from prefect.settings import PREFECT_API_URL

    groups = seed_recipients(engine, 14, seed=41)
    user = dovecot_server.new_user()
    imap = dovecot_server.login(user)
    imap.create("Sent")
    imap.logout()
    env = {
        **os.environ,
        "KIZUNA_WAREHOUSE_URL": _url(engine),
        "KZ_TEST_SENT_PASSWORD": PASSWORD,
    }
    env.pop("PREFECT_API_URL", None)
    on_server = {**env, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    kills = overlapped = 0
    with smtp_server() as (box, port):
        box.delay = 0.15  # a run takes a couple of seconds to send: room to overlap and kill
        box.on_message = lambda raw: dovecot_server.append(user, "Sent", raw)
        ws_file = _workspace(tmp_path, port, dovecot_server.port, user)
        os.environ["KIZUNA_WAREHOUSE_URL"] = env["KIZUNA_WAREHOUSE_URL"]
        try:
            cfg = push_config(load(ws_file))
        finally:
            del os.environ["KIZUNA_WAREHOUSE_URL"]
        secret = cfg.unsubscribe_secret()
        expected = {message_id(secret, "bulk", p, 1, "own.example") for p in groups["eligible"]}

        def check(trial: object) -> None:
            received = box.ids()
            assert set(received) == expected, (seed, trial, len(received), len(expected))
            assert max(received.values()) == 1, (seed, trial, received.most_common(2))

        args = ["campaigns", "run", "bulk", "-w", str(ws_file)]
        forker = Forker(env, ROOT)
        try:
            for trial in range(TRIALS):
                _fresh(engine, box, dovecot_server, user, cfg)
                outs = [tmp_path / f"t{trial}-{i}.log" for i in range(2)]
                if trial == 0:  # cold: two fresh interpreters
                    runs = [_cold(args, o, env) for o in outs]
                else:
                    runs = [Run(o, None, forker.start(args, o)) for o in outs]
                kill_after = rng.randint(1, len(expected) - 1) if trial % 2 else None
                if _race(engine, box, runs, kill_after):
                    kills += 1
                else:
                    overlapped += _overlapped(runs)
                check(trial)
            # The CLI here while a flow run on a Prefect server (what `kizuna serve` executes)
            # sends the same plan: once side by side, once with the holder killed.
            for trial in ("serve", "serve-kill"):
                _fresh(engine, box, dovecot_server, user, cfg)
                server_run = _cold(args, tmp_path / f"{trial}-server.log", on_server)
                deadline = time.monotonic() + 240
                while _holder_pid(engine) != server_run.pid:  # the flow run is sending
                    assert not server_run.done(), server_run.text()
                    assert time.monotonic() < deadline, server_run.text()
                    time.sleep(0.05)
                out = tmp_path / f"{trial}-cli.log"
                runs = [server_run, Run(out, None, forker.start(args, out))]
                kill_after = len(box.seen) + 1 if trial == "serve-kill" else None
                if _race(engine, box, runs, kill_after):
                    kills += 1
                else:
                    assert _overlapped(runs), [r.text() for r in runs]
                check(trial)
        finally:
            forker.stop()
    assert kills >= TRIALS // 2 - 2, (seed, kills)
    assert overlapped >= TRIALS // 2 - 2, (seed, overlapped)
