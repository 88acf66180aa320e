"""A campaign sender that runs the ``bulk`` campaign each time it reads ``go`` on stdin, so a
test can start two at the same instant, trial after trial, without paying for imports each
time (and SIGKILL one mid-send).

Usage: python -m tests.support.push.push_overlap_worker URL SEARCH_PATH ROOT PORT SENT_DIR
Prints ``ready``; per trial ``start``, ``waiting: …`` if the other run holds the campaign,
``lease``, then ``end <outcomes>`` (or ``end nothing`` when the other run finished the plan).
"""

from __future__ import annotations

import json
import os
import smtplib
import sys
from pathlib import Path

from connectors.mail.smtp_send import SmtpChannel
from flows.push.campaign_run import approved_plan, open_batches
from flows.push.campaign_send import campaign_lease, send_batch
from kizuna.errors import FatalError
from tests.support.pg_schema import engine_in
from tests.support.push.push_bulk import bulk_cfg
from tests.support.push.push_smtp import marker


def main(url: str, search_path: str, root: str, port: str, sent_dir: str) -> None:
    engine = engine_in(url, search_path)
    cfg = bulk_cfg(Path(root), {"type": "smtp", "host": "127.0.0.1", "port": int(port)}, 10)
    sent = Path(sent_dir)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            continue
        print("start", flush=True)
        channel = SmtpChannel(
            lambda: smtplib.SMTP("127.0.0.1", int(port), timeout=10),
            name="main",
            sent_check=lambda mid: (sent / marker(mid)).exists(),
        )
        totals: dict[str, int] = {}
        run_id = f"overlap-{os.getpid()}"
        with campaign_lease(
            engine, cfg, "bulk", run_id=run_id, wait=120, on_wait=lambda s: print(s, flush=True)
        ) as held:
            print("lease", flush=True)
            try:
                plan_id = approved_plan(engine, cfg, "bulk")
            except FatalError:  # the other run finished the plan while this one waited
                print("end nothing", flush=True)
                continue
            for batch in open_batches(engine, plan_id, 10):
                got = send_batch(engine, cfg, "bulk", plan_id, batch, channel, owner=held.owner)
                for k, v in got.items():
                    totals[k] = totals.get(k, 0) + v
        channel.close()
        print(f"end {json.dumps(totals)}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:6])
