"""Segment benchmark: each built-in kind of condition, compiled, against hand-written SQL.

    python bench/bench_segments.py                       # SQLite, 300k activities
    python bench/bench_segments.py --url postgresql+psycopg://postgres@127.0.0.1/kizuna_bench

Fills a fresh warehouse with the report benchmark's synthetic company (people, mail and
meetings over 180 days, deals), then for each question runs the compiled segment and the SQL a
DBA would write for it, checks both give the same people, and prints the time of each and
their ratio (best of ``--repeat`` runs, so the cache is warm for both). The issue's target is
a ratio of at most 1.5 for every line. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from bench.bench_reports import NOW, fill
from warehouse.activation.segments import Context, members, parse_segments
from warehouse.db import make_engine, upgrade

D30 = NOW - timedelta(days=30)
D90 = NOW - timedelta(days=90)
Y1 = NOW - timedelta(days=round(12 * 30.44))
CONTACT = "('email','forward','invitation','meeting','call')"
MAIL = "('email','forward','invitation')"

LIVE_ACT = "a.deleted_at is null and a.status <> 'cancelled' and a.timeline = :t"

QUESTIONS: list[tuple[str, dict[str, Any], str]] = [
    (
        "≥ 2 meetings in 30 days",
        {"activity": "meetings", "within_days": 30, "min_count": 2},
        f"""select p.id from person p where p.deleted_at is null and p.id in (
              select ap.person_id from activity a
              join activity_participant ap on ap.activity_id = a.id
              where a.occurred_at >= :d30 and a.occurred_at <= :now and a.kind = 'meeting'
                and {LIVE_ACT}
              group by ap.person_id having count(distinct a.id) >= 2)
            order by p.id""",
    ),
    (
        "inbound mail in 30 days",
        {"activity": "last_inbound_mail", "within_days": 30},
        f"""select p.id from person p where p.deleted_at is null and p.id in (
              select ap.person_id from activity a
              join activity_participant ap on ap.activity_id = a.id
              where a.occurred_at >= :d30 and a.occurred_at <= :now and a.kind in {MAIL}
                and a.direction = 'inbound' and ap.role = 'from' and {LIVE_ACT})
            order by p.id""",
    ),
    (
        "no contact in 90 days",
        {"activity": "last_contact", "not_within_days": 90},
        f"""select p.id from person p where p.deleted_at is null and p.id not in (
              select ap.person_id from activity a
              join activity_participant ap on ap.activity_id = a.id
              where a.occurred_at >= :d90 and a.occurred_at <= :now and a.kind in {CONTACT}
                and ap.person_id is not null and {LIVE_ACT})
            order by p.id""",
    ),
    (
        "open deal in stage 提案",
        {"deal": "open_in_stage", "stage": "提案"},
        """select p.id from person p where p.deleted_at is null and (
              p.id in (select d.person_id from deal d where d.deleted_at is null
                       and d.status = 'open' and d.stage = '提案')
              or p.organization_id in (select d.organization_id from deal d
                       where d.deleted_at is null and d.status = 'open' and d.stage = '提案'))
            order by p.id""",
    ),
    (
        "won ≥ ¥10M in 12 months",
        {"deal": "won_amount", "months": 12, "gte": 10_000_000},
        """select p.id from person p join (
              select x.pid, sum(x.amount) as total from (
                select d.id, d.person_id as pid, d.amount from deal d
                 where d.deleted_at is null and d.status = 'won' and d.updated_at >= :y1
                   and d.person_id is not null
                union
                select d.id, p2.id as pid, d.amount from deal d join person p2
                    on p2.organization_id = d.organization_id
                 where d.deleted_at is null and d.status = 'won' and d.updated_at >= :y1) x
              group by x.pid) w on w.pid = p.id
            where p.deleted_at is null and w.total >= 10000000
            order by p.id""",
    ),
    (
        "inbound mail in 30 days and an open deal",
        {
            "all": [
                {"activity": "last_inbound_mail", "within_days": 30},
                {"deal": "open"},
            ]
        },
        f"""select p.id from person p where p.deleted_at is null and p.id in (
              select ap.person_id from activity a
              join activity_participant ap on ap.activity_id = a.id
              where a.occurred_at >= :d30 and a.occurred_at <= :now and a.kind in {MAIL}
                and a.direction = 'inbound' and ap.role = 'from' and {LIVE_ACT})
              and (p.id in (select d.person_id from deal d where d.deleted_at is null
                            and d.status = 'open')
                   or p.organization_id in (select d.organization_id from deal d
                            where d.deleted_at is null and d.status = 'open'))
            order by p.id""",
    ),
]


def best(fn: Callable[[], list[int]], repeat: int) -> tuple[float, list[int]]:
    times, out = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def run(conn: Connection, repeat: int) -> list[float]:
    params = {"now": NOW, "d30": D30, "d90": D90, "y1": Y1, "t": True}
    ratios = []
    print(f"{'question':<42} {'people':>7} {'compiled ms':>12} {'hand ms':>9} {'ratio':>6}")
    for name, cond, sql in QUESTIONS:
        parsed = parse_segments({"s": cond})
        ctx = Context(as_of=NOW, segments=parsed)
        tc, got = best(lambda: members(conn, parsed["s"], ctx), repeat)  # noqa: B023
        th, want = best(
            lambda: [int(x) for x in conn.execute(text(sql), params).scalars()],  # noqa: B023
            repeat,
        )
        if got != want:
            raise SystemExit(f"{name}: compiled {len(got)} people, hand-written {len(want)}")
        ratios.append(tc / th)
        print(f"{name:<42} {len(got):>7,} {tc * 1000:>12.1f} {th * 1000:>9.1f} {tc / th:>6.2f}")
    print(f"worst ratio {max(ratios):.2f} (target ≤ 1.5)")
    return ratios


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--activities", type=int, default=300_000)
    ap.add_argument("--deals", type=int, default=30_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    fill(engine, 200, args.activities, args.deals)
    with engine.begin() as c:  # a third of the deals won, some of them by a person
        c.execute(
            text("update deal set status = 'won', updated_at = :at where id % 3 = 0"),
            {"at": NOW - timedelta(days=40)},
        )
        c.execute(text("update deal set person_id = id % 1000 + 1 where id % 5 = 0"))
        c.execute(text("analyze"))
    print(
        f"{engine.dialect.name}: filled {args.activities:,} activities, {args.deals:,} deals "
        f"in {time.perf_counter() - t0:.1f}s"
    )
    with engine.connect() as conn:
        run(conn, args.repeat)


if __name__ == "__main__":
    main()
