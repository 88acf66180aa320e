"""Campaign send benchmark: a campaign run against a bare ``smtplib`` loop, same SMTP server.

    python bench/bench_sends.py --recipients 2000

Seeds a warehouse with opted-in people, plans and runs a Japanese campaign (ISO-2022-JP,
text + HTML, List-Unsubscribe, consent re-checked at send time, one ledger row claimed and
marked per recipient) to a local aiosmtpd server, then sends the same number of messages with
a plain loop (``EmailMessage`` + ``sendmail`` on one connection) to the same server. Prints
wall time, messages/s and the client thread's CPU per message for both and their ratio; the
issue's target is at least 0.8 of the bare loop's rate. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from connectors.mail.smtp_send import SmtpChannel
from flows.push.campaign_run import approved_plan, open_batches, plan
from flows.push.campaign_send import send_batch
from tests.support.push.push_seed import make_cfg
from tests.support.push.push_smtp import free_port
from warehouse import schema as t
from warehouse.activation.consent import ConsentEvent, record_consent
from warehouse.db import make_engine, upgrade

STEP = {
    "subject": "{{ person.family_name }}様へ 秋のセミナーのご案内",
    "text": "{{ person.name }} 様\n\n{{ org.name }} の皆様、いつもお世話になっております。\n"
    "秋のセミナーを開催いたします。ぜひご参加ください。\n担当: {{ owner.name }}",
    "html": "<p>{{ person.name }} 様</p><p>{{ org.name }} の皆様</p><p>秋のセミナーのご案内</p>",
}


def seed(engine: Engine, n: int) -> None:
    now = datetime.now(UTC)
    with engine.begin() as c:
        c.execute(
            insert(t.Organization),
            [
                {
                    "name": f"株式会社サンプル{i}",
                    "name_normalized": f"サンプル{i}",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(max(1, n // 20))
            ],
        )
        c.execute(
            insert(t.Person),
            [
                {
                    "family_name": "山田",
                    "given_name": f"花子{i}",
                    "full_name": f"山田 花子{i}",
                    "primary_email": f"p{i}@c{i % 50}.example",
                    "organization_id": i % (n // 20 or 1) + 1,
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(n)
            ],
        )
        c.execute(
            insert(t.PersonEmail),
            [{"person_id": i + 1, "email": f"p{i}@c{i % 50}.example"} for i in range(n)],
        )
        for i in range(n):
            record_consent(
                c,
                ConsentEvent(
                    person_id=i + 1,
                    purpose="marketing_mail",
                    status="opted_in",
                    source="web form",
                    evidence=f"form-{i}",
                    at=now,
                ),
            )


def kizuna_run(engine: Engine, cfg: Any, port: int) -> tuple[float, float, dict[str, int]]:
    plan(engine, cfg, "seminar")  # the dry run an admin approves
    channel = SmtpChannel(lambda: smtplib.SMTP("127.0.0.1", port, timeout=30), name="mail")
    w0, c0 = time.perf_counter(), time.thread_time()
    total: dict[str, int] = {}
    plan_id = approved_plan(engine, cfg, "seminar")
    for batch in open_batches(engine, plan_id, 500):
        for k, v in send_batch(engine, cfg, "seminar", plan_id, batch, channel).items():
            total[k] = total.get(k, 0) + v
    channel.close()
    return time.perf_counter() - w0, time.thread_time() - c0, total


def bare_loop(n: int, port: int) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.thread_time()
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = "株式会社サンプル 営業部 <sales@own.example>"
        msg["To"] = f"山田 花子{i} <p{i}@c{i % 50}.example>"
        msg["Subject"] = "山田様へ 秋のセミナーのご案内"
        msg.set_content(f"山田 花子{i} 様\n\n秋のセミナーを開催いたします。")
        msg.add_alternative(f"<p>山田 花子{i} 様</p><p>秋のセミナーのご案内</p>", subtype="html")
        client.sendmail("sales@own.example", [f"p{i}@c{i % 50}.example"], msg.as_bytes())
    client.quit()
    return time.perf_counter() - w0, time.thread_time() - c0


def _wait_for(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the SMTP server did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipients", type=int, default=2000)
    ap.add_argument("--url")
    args = ap.parse_args()
    n = args.recipients
    root = Path(tempfile.mkdtemp())
    engine = make_engine(args.url or f"sqlite:///{root / 'bench.db'}")
    upgrade(engine)
    seed(engine, n)
    cfg = make_cfg(
        root,
        segments={"customers": {"field": "person.email", "exists": True}},
        campaigns={
            "seminar": {
                "segment": "customers",
                "channel": "mail",
                "steps": [{"ja": STEP}],
                "japanese_charset": "iso-2022-jp",
                "approval": "auto",
            }
        },
        outbound={"channels": {"mail": {"type": "smtp", "host": "127.0.0.1"}}},
    )
    # The server runs in its own process, so it never competes with the client for the GIL;
    # the bare loop runs before and after the campaign and the two are averaged.
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Sink",
            "-l",
            f"127.0.0.1:{port}",
        ]
    )
    try:
        _wait_for(port)
        b1 = bare_loop(n, port)
        kw, kc, counts = kizuna_run(engine, cfg, port)
        b2 = bare_loop(n, port)
    finally:
        server.terminate()
        server.wait()
    if counts.get("sent") != n:
        raise SystemExit(f"campaign outcomes {counts}, expected {n} sent")
    bw, bc = (b1[0] + b2[0]) / 2, (b1[1] + b2[1]) / 2
    print(f"{'':<22} {'wall s':>7} {'msgs/s':>8} {'client CPU ms/msg':>18}")
    print(f"{'kizuna campaign':<22} {kw:>7.2f} {n / kw:>8.0f} {kc / n * 1000:>18.2f}")
    print(f"{'bare smtplib loop':<22} {bw:>7.2f} {n / bw:>8.0f} {bc / n * 1000:>18.2f}")
    print(f"rate ratio {bw / kw:.2f} (target ≥ 0.8)")


if __name__ == "__main__":
    main()
