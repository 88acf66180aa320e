"""Report benchmark: 日報 for every rep and the pipeline page on a synthetic warehouse.

    python bench/bench_reports.py --activities 200000 --staff 200
    python bench/bench_reports.py --url postgresql+psycopg://postgres@127.0.0.1/kizuna_bench

Fills a fresh warehouse with staff, companies, people, mail and meetings spread over 180 days
(2–4 participants each) and deals with stage history, then times: finding the reps with
activity on the busiest recent day, drafting (query + Markdown + HTML) each rep's report, and
computing and rendering the pipeline. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from flows.reports.render import daily_html, daily_markdown, pipeline_html
from warehouse import schema as t
from warehouse.db import make_engine, upgrade
from warehouse.reporting.daily import daily
from warehouse.reporting.model import day_window
from warehouse.reporting.pipeline import pipeline
from warehouse.reporting.staff import staff_with_activity

STAGES = (("リード", 10), ("提案", 30), ("見積", 50), ("交渉", 70))
NOW = datetime(2026, 11, 27, 3, tzinfo=UTC)


def fill(engine: Engine, staff: int, activities: int, deals: int, seed: int = 7) -> None:
    r = random.Random(seed)
    orgs, people = max(50, activities // 40), max(200, activities // 10)
    with engine.begin() as c:
        c.execute(
            insert(t.StaffUser),
            [{"email": f"rep{i}@own.example", "name": f"営業 {i}"} for i in range(staff)],
        )
        c.execute(
            insert(t.Organization),
            [
                {
                    "name": f"株式会社サンプル{i}",
                    "name_normalized": f"サンプル{i}",
                    "attributes": {},
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(orgs)
            ],
        )
        c.execute(
            insert(t.Person),
            [
                {
                    "full_name": f"顧客 {i}",
                    "primary_email": f"p{i}@c{i % orgs}.example",
                    "organization_id": i % orgs + 1,
                    "attributes": {},
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(people)
            ],
        )
    batch = 20000
    for start in range(0, activities, batch):
        acts: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        for i in range(start, min(activities, start + batch)):
            at = NOW - timedelta(minutes=r.randrange(180 * 24 * 60))
            kind = "meeting" if r.random() < 0.2 else "email"
            rep = r.randrange(staff) + 1
            out = r.random() < 0.5
            acts.append(
                {
                    "id": i + 1,
                    "key": f"a{i}",
                    "kind": kind,
                    "occurred_at": at,
                    "ends_at": at + timedelta(hours=1) if kind == "meeting" else None,
                    "direction": "outbound" if out else "inbound",
                    "subject": f"件名 {i}",
                    "thread_key": f"t{i // 3}",
                    "status": "confirmed",
                    "revision": 0,
                    "attributes": {},
                    "created_at": at,
                    "updated_at": at,
                }
            )
            role = "organizer" if kind == "meeting" else ("from" if out else "to")
            parts.append(
                {
                    "activity_id": i + 1,
                    "email": f"rep{rep - 1}@own.example",
                    "role": role,
                    "staff_user_id": rep,
                    "person_id": None,
                }
            )
            for p in r.sample(range(people), r.randint(1, 3)):
                prole = "attendee" if kind == "meeting" else ("to" if out else "from")
                parts.append(
                    {
                        "activity_id": i + 1,
                        "email": f"p{p}@x.example",
                        "role": prole,
                        "staff_user_id": None,
                        "person_id": p + 1,
                    }
                )
        with engine.begin() as c:
            c.execute(insert(t.Activity), acts)
            c.execute(insert(t.ActivityParticipant), parts)
    hist: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for i in range(deals):
        n = r.randint(1, len(STAGES))
        created = NOW - timedelta(days=r.randrange(30, 300))
        at = created
        for k in range(n):
            hist.append({"deal_id": i + 1, "stage": STAGES[k][0], "entered_at": at})
            at += timedelta(days=r.randrange(1, 40))
        stage, prob = STAGES[n - 1]
        rows.append(
            {
                "id": i + 1,
                "name": f"案件 {i}",
                "organization_id": r.randrange(orgs) + 1,
                "stage": stage,
                "amount": Decimal(r.randrange(1, 500) * 100_000),
                "currency": "JPY",
                "probability": prob,
                "expected_close": (NOW + timedelta(days=r.randrange(-60, 120))).date(),
                "status": "open",
                "owner_id": r.randrange(staff) + 1,
                "attributes": {},
                "created_at": created,
                "updated_at": created,
            }
        )
    with engine.begin() as c:
        c.execute(insert(t.Deal), rows)
        c.execute(insert(t.DealStageHistory), hist)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--staff", type=int, default=200)
    ap.add_argument("--activities", type=int, default=200_000)
    ap.add_argument("--deals", type=int, default=20_000)
    args = ap.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    fill(engine, args.staff, args.activities, args.deals)
    print(
        f"filled {args.activities:,} activities, {args.deals:,} deals in {time.perf_counter() - t0:.1f}s"
    )

    day = date(2026, 11, 26)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        reps = staff_with_activity(conn, day_window(day, "Asia/Tokyo"))
    t_plan = time.perf_counter() - t0
    t0 = time.perf_counter()
    size = 0
    with engine.connect() as conn:
        for s in reps:
            data = daily(conn, s, day, "Asia/Tokyo")
            size += len(daily_markdown(data)) + len(daily_html(data))
    t_daily = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.connect() as conn:
        p = pipeline(conn, NOW, "Asia/Tokyo")
    html = pipeline_html(p, "ja", "bench")
    t_pipe = time.perf_counter() - t0
    print(f"reps with activity on {day}: {len(reps)} (found in {t_plan * 1000:.0f} ms)")
    print(
        f"日報 drafted: {len(reps)} in {t_daily:.2f}s ({t_daily / max(1, len(reps)) * 1000:.0f} ms each, {size / 1024:.0f} KiB)"
    )
    print(
        f"pipeline: {p.open_count:,} open deals, page {len(html) / 1024:.0f} KiB in {t_pipe:.2f}s"
    )


if __name__ == "__main__":
    main()
