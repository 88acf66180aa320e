"""Two runs of one campaign plan at the same time (the CLI while ``kizuna serve`` picked up
the same plan), trial after trial, with SIGKILLs mixed in: every eligible recipient gets
exactly one mail, counted at a real SMTP server, and every counted trial really overlapped
(the second run found the campaign's lease held and waited)."""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import Engine, delete, text

from flows.push.campaign_render import message_id
from flows.push.campaign_run import plan
from tests.conftest import PG_URL
from tests.support.push.push_bulk import bulk_cfg, seed_recipients
from tests.support.push.push_smtp import smtp_server
from warehouse.activation.ledger_schema import CampaignPlan, Delivery, PlanEntry

ROOT = Path(__file__).resolve().parents[4]
_LONG = int(os.environ.get("KIZUNA_OVERLAP_TRIALS", "0"))
TRIALS = {"postgresql": _LONG or 8, "sqlite": 4}
"""Overlapping trials required: the proof runs on PostgreSQL (KIZUNA_OVERLAP_TRIALS=20 for
the long run); SQLite repeats it briefly."""


class Worker:
    """One sender process and the lines it printed, with the time each arrived."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()
        assert self.next(60) == "ready"

    def _pump(self, out: IO[str]) -> None:
        for line in out:
            self.lines.put((time.monotonic(), line.strip()))

    def next(self, timeout: float) -> str:
        return self.lines.get(timeout=timeout)[1]

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _trial(
    workers: list[Worker],
    box_count: Callable[[], int],
    kill_after: int | None,
) -> tuple[bool, int | None]:
    """Both workers go at once; returns (they overlapped, index of the killed worker)."""
    for w in workers:
        w.go()
    events: list[list[tuple[float, str]]] = [[], []]
    done = [False, False]
    killed: int | None = None
    start_count = box_count()
    deadline = time.monotonic() + 120
    while not all(done):
        assert time.monotonic() < deadline, events
        for i, w in enumerate(workers):
            if done[i]:
                continue
            try:
                at, line = w.lines.get(timeout=0.002)
            except queue.Empty:
                continue
            events[i].append((at, line))
            done[i] = line.startswith("end")
        if kill_after is not None and killed is None:
            holder = [i for i in (0, 1) if any(x == "lease" for _, x in events[i])]
            if holder and not done[holder[0]] and box_count() - start_count >= kill_after:
                killed = holder[0]
                workers[killed].proc.send_signal(signal.SIGKILL)
                workers[killed].proc.wait()
                events[killed].append((time.monotonic(), "killed"))
                done[killed] = True
    starts = [e[0][0] for e in events]
    ends = [e[-1][0] for e in events]
    waited = any(
        line.startswith("waiting: campaign bulk is being run") for e in events for _, line in e
    )
    return waited and max(starts) < min(ends), killed


@pytest.mark.slow
def test_two_runs_of_one_plan_with_kills_deliver_exactly_once(
    engine: Engine, tmp_path: Path
) -> None:
    groups = seed_recipients(engine, 40, seed=31)
    if engine.dialect.name == "sqlite":
        url, search_path = str(engine.url), ""
    else:
        with engine.connect() as conn:
            search_path = str(conn.execute(text("show search_path")).scalar_one())
        url = PG_URL
    sent_dir = tmp_path / "sent"
    sent_dir.mkdir()
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    overlapped = kills = 0
    trials = TRIALS[engine.dialect.name]
    with smtp_server(sent_dir) as (box, port):
        cfg = bulk_cfg(tmp_path, {"type": "smtp", "host": "127.0.0.1", "port": port}, 10)
        secret = cfg.unsubscribe_secret()
        expected = {message_id(secret, "bulk", p, 1, "own.example") for p in groups["eligible"]}
        args = [sys.executable, "-m", "tests.support.push.push_overlap_worker", url, search_path]
        args += [str(tmp_path), str(port), str(sent_dir)]
        workers = [Worker(args), Worker(args)]
        try:
            for trial in range(trials + 10):
                if overlapped >= trials:
                    break
                with engine.begin() as conn:  # a fresh ledger and mailbox per trial
                    for table in (Delivery, PlanEntry, CampaignPlan):
                        conn.execute(delete(table))
                with box.lock:
                    box.raw.clear()
                    box.seen.clear()
                for f in sent_dir.iterdir():
                    f.unlink()
                plan(engine, cfg, "bulk")
                kill_after = rng.randint(1, 25) if trial % 2 == 0 else None
                ok, killed = _trial(workers, lambda: len(box.seen), kill_after)
                if killed is not None:
                    kills += 1
                    workers[killed] = Worker(args)
                    # The survivor took over at once (the dead process's lease is free) or
                    # had finished; a fresh run finishes anything left, as a rerun would.
                    workers[killed].go()
                    while not workers[killed].next(120).startswith("end"):
                        pass
                overlapped += ok
                received = box.ids()
                assert set(received) == expected, (seed, trial, len(received), len(expected))
                assert max(received.values()) == 1, (seed, trial, received.most_common(3))
        finally:
            for w in workers:
                w.stop()
    assert overlapped >= trials, (seed, overlapped)
    assert kills >= trials // 2 - 2, (seed, kills)
