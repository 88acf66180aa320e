"""Exactly once under failure: a campaign to thousands of recipients, broken at random points
(before a send, and after the server accepted a mail but before the ledger knew), rerun until
done, delivers to every eligible recipient exactly once — counted at a real SMTP server."""

from __future__ import annotations

import random
import signal
import smtplib
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, func, select

from connectors.channel import Outgoing
from connectors.mail.outbox import OutboxChannel
from connectors.mail.smtp_send import SmtpChannel
from flows.push.campaign_render import message_id
from flows.push.campaign_run import approved_plan, open_batches, plan
from flows.push.campaign_send import send_batch
from flows.push.config import PushConfig
from tests.support.push.push_bulk import bulk_cfg, seed_recipients
from tests.support.push.push_smtp import smtp_server
from warehouse.activation import ledger
from warehouse.activation.ledger_schema import Delivery

SIZES = {"sqlite": 2000, "postgresql": 500}
"""Recipients per run: thousands on SQLite; PostgreSQL proves the same ledger on fewer, since
its commits cost more on a shared test machine."""


def _recovered(engine: Engine) -> int:
    with engine.connect() as conn:
        q = select(func.count()).select_from(Delivery).where(Delivery.detail.like("recovered%"))
        return int(conn.execute(q).scalar_one())


class Crash(Exception):
    """Stands in for a process dying at that instant."""


class Flaky:
    """A channel that dies at random moments: before sending, or right after the server said 250."""

    def __init__(self, inner: SmtpChannel | OutboxChannel, rng: random.Random, rate: float) -> None:
        self.inner, self.rng, self.rate = inner, rng, rate
        self.name = inner.name

    def send(self, item: Outgoing) -> None:
        roll = self.rng.random()
        if roll < self.rate:
            raise Crash("before send")
        self.inner.send(item)
        if roll < 2 * self.rate:
            raise Crash("after send, before the ledger was told")

    def was_sent(self, message_id: str) -> bool | None:
        return self.inner.was_sent(message_id)

    def close(self) -> None:
        self.inner.close()


def _until_done(
    engine: Engine,
    cfg: PushConfig,
    make_channel: Callable[[], SmtpChannel | OutboxChannel],
    rng: random.Random,
    rate: float = 0.01,
) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for _attempt in range(500):
        with engine.connect() as conn:
            if ledger.current_plan(conn, "bulk") is None:
                return outcomes
        channel = Flaky(make_channel(), rng, rate=rate)
        try:
            plan_id = approved_plan(engine, cfg, "bulk")
            for batch in open_batches(engine, plan_id, cfg.campaign("bulk").batch_size):
                outcomes.update(send_batch(engine, cfg, "bulk", plan_id, batch, channel))
        except Crash:
            outcomes["crashes"] += 1
        finally:
            channel.close()
    raise AssertionError("campaign never finished")


def test_smtp_campaign_with_random_crashes_delivers_exactly_once(
    engine: Engine, tmp_path: Path
) -> None:
    groups = seed_recipients(engine, SIZES[engine.dialect.name])
    with smtp_server() as (box, port):
        cfg = bulk_cfg(tmp_path, {"type": "smtp", "host": "127.0.0.1", "port": port})
        view = plan(engine, cfg, "bulk")
        assert view.counts["send"] == len(groups["eligible"])

        def make() -> SmtpChannel:  # the Sent-folder check: ask the server what it holds
            return SmtpChannel(
                lambda: smtplib.SMTP("127.0.0.1", port, timeout=10), name="main", sent_check=box.has
            )

        outcomes = _until_done(engine, cfg, make, random.Random(42))
        received = box.ids()
    secret = cfg.unsubscribe_secret()
    expected = {message_id(secret, "bulk", p, 1, "own.example") for p in groups["eligible"]}
    assert outcomes["crashes"] >= 5 and _recovered(engine) >= 1, outcomes
    assert max(received.values()) == 1, [m for m, n in received.items() if n > 1][:5]
    assert set(received) == expected
    with engine.connect() as conn:
        sent = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
        ).scalar_one()
    assert sent == len(expected)


def test_outbox_channel_recovers_from_its_own_folder(engine: Engine, tmp_path: Path) -> None:
    groups = seed_recipients(engine, 150, seed=3)
    cfg = bulk_cfg(tmp_path, {"type": "outbox", "path": "outbox"}, batch_size=50)
    plan(engine, cfg, "bulk")
    outcomes = _until_done(
        engine, cfg, lambda: OutboxChannel(tmp_path / "outbox", name="main"), random.Random(7), 0.04
    )
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert outcomes["crashes"] >= 2 and _recovered(engine) >= 1, outcomes
    assert len(files) == len(groups["eligible"])
    assert not list((tmp_path / "outbox").glob("*.tmp"))


def test_sigkilled_sender_process_rerun_delivers_exactly_once(
    engine: Engine, tmp_path: Path
) -> None:
    """A real crash: the sending process is SIGKILLed at random moments and started again."""
    groups = seed_recipients(engine, 300, seed=5)
    sent_dir = tmp_path / "sent"
    sent_dir.mkdir()
    if engine.dialect.name == "sqlite":
        url, search_path = str(engine.url), ""
    else:
        from tests.conftest import PG_URL

        with engine.connect() as conn:
            search_path = str(conn.exec_driver_sql("show search_path").scalar_one())
        url = PG_URL
    rng = random.Random(11)
    kills = 0
    with smtp_server(sent_dir) as (box, port):
        cfg = bulk_cfg(tmp_path, {"type": "smtp", "host": "127.0.0.1", "port": port}, 100)
        plan(engine, cfg, "bulk")
        args = [
            sys.executable,
            "-m",
            "tests.support.push.push_kill_runner",
            url,
            search_path,
            str(tmp_path),
        ]
        args += [str(port), str(sent_dir)]
        for round_ in range(4):
            # Kill after a random number of further mails reached the server (whatever the
            # machine's speed), the last round runs to the end.
            target = len(box.seen) + rng.randint(10, 60) if round_ < 3 else None
            proc = subprocess.Popen(args, cwd=Path(__file__).resolve().parents[3])
            while proc.poll() is None:
                if target is not None and len(box.seen) >= target:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    break
                time.sleep(0.005)
            else:
                assert proc.returncode == 0
                break
        received = box.ids()
    secret = cfg.unsubscribe_secret()
    expected = {message_id(secret, "bulk", p, 1, "own.example") for p in groups["eligible"]}
    assert kills == 3  # every kill landed mid-campaign
    assert max(received.values()) == 1
    assert set(received) == expected
