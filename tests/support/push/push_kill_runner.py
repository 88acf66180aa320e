"""Run the ``bulk`` campaign to its end in a separate process, so a test can SIGKILL it.

Usage: python -m tests.support.push.push_kill_runner URL SEARCH_PATH ROOT PORT SENT_DIR
"""

from __future__ import annotations

import os
import smtplib
import sys
from pathlib import Path

from connectors.mail.smtp_send import SmtpChannel
from flows.push.campaign_run import approved_plan, open_batches
from flows.push.campaign_send import campaign_lease, send_batch
from tests.support.push.push_bulk import bulk_cfg
from tests.support.push.push_smtp import marker
from warehouse.db import make_engine


def main(url: str, search_path: str, root: str, port: str, sent_dir: str) -> None:
    extra = {"connect_args": {"options": f"-csearch_path={search_path}"}} if search_path else {}
    engine = make_engine(url, **extra)
    cfg = bulk_cfg(Path(root), {"type": "smtp", "host": "127.0.0.1", "port": int(port)}, 100)
    sent = Path(sent_dir)
    channel = SmtpChannel(
        lambda: smtplib.SMTP("127.0.0.1", int(port), timeout=10),
        name="main",
        sent_check=lambda mid: (sent / marker(mid)).exists(),
    )
    with campaign_lease(engine, cfg, "bulk", run_id=f"kill-runner-{os.getpid()}", wait=60) as held:
        plan_id = approved_plan(engine, cfg, "bulk")
        for batch in open_batches(engine, plan_id, 100):
            send_batch(engine, cfg, "bulk", plan_id, batch, channel, owner=held.owner)
    channel.close()


if __name__ == "__main__":
    main(*sys.argv[1:6])
