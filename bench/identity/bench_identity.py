"""Identity resolution benchmark: quality on labelled data, and scale (on demand, not in CI).

    .venv/bin/python -m bench.identity.bench_identity febrl            # FEBRL 1-3: precision/recall/F1
    .venv/bin/python -m bench.identity.bench_identity japanese --n 5000
    .venv/bin/python -m bench.identity.bench_identity scale --n 1000000 --db /tmp/identity-1m.db

Everything runs through the warehouse (records written with ``apply_page``, resolved with
``warehouse.identity.resolve``) on SQLite, the one-machine default. Quality is counted on pairs of
source records: two source rows are predicted the same when their unified rows end in one
cluster (rows the store already linked by email count as predicted too). Scale runs resolve in
a child process so its peak memory is measured alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from bench.identity.identity_data import febrl, japanese, japanese_people
from warehouse import records as r
from warehouse import schema as t
from warehouse.db import make_engine, upgrade
from warehouse.identity import schema as ids
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.resolve import ResolveStats, resolve_full, resolve_incremental
from warehouse.state import StreamKey
from warehouse.write.store import apply_page

PAGE = 2000


def fresh_engine(path: Path) -> Engine:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def load(engine: Engine, stream_records: Iterable[tuple[str, r.Person]]) -> int:
    """Write records in pages per stream, as a sync would."""
    pending: dict[str, list[r.Person]] = defaultdict(list)
    n = 0

    def flush(stream: str) -> None:
        with engine.begin() as conn:
            apply_page(conn, StreamKey(stream, "people"), records=pending[stream], cursor=None)
        pending[stream] = []

    for stream, rec in stream_records:
        pending[stream].append(rec)
        n += 1
        if len(pending[stream]) >= PAGE:
            flush(stream)
    for stream in list(pending):
        if pending[stream]:
            flush(stream)
    return n


def bulk_load(engine: Engine, stream_records: Iterable[tuple[str, r.Person]]) -> int:
    """Scale runs: write people straight into the tables the resolver reads (person, emails,
    phones, organization, lineage) with plain bulk inserts, one row per record.

    The sync path (``apply_page``) has its own benchmark; going around it here keeps a
    million-row set loadable in minutes on two cores. Like ``apply_page`` since records stay
    records, every record is its own person row: only the resolver links them.
    """
    from warehouse.identity.keys.normalize import normalize_org_name
    from warehouse.state import now

    ts = now()
    orgs: dict[str, int] = {}
    next_id = [0]
    n = 0
    batch: list[tuple[str, r.Person]] = []

    def flush() -> None:
        nonlocal n
        with engine.begin() as conn:
            new_orgs = []
            for _, p in batch:
                name = p.organization.name if p.organization else None
                if name and name not in orgs:
                    orgs[name] = -1
                    new_orgs.append(
                        {
                            "name": name,
                            "name_normalized": normalize_org_name(name),
                            "corporate_number": p.organization.corporate_number
                            if p.organization
                            else None,
                            "attributes": {},
                            "created_at": ts,
                            "updated_at": ts,
                        }
                    )
            if new_orgs:
                o = t.table(t.Organization)
                got = conn.execute(
                    o.insert().returning(o.c.id, sort_by_parameter_order=True), new_orgs
                ).scalars()
                for row, oid in zip(new_orgs, got, strict=True):
                    orgs[str(row["name"])] = int(oid)
            ids_: list[int] = []
            people = []
            for _, p in batch:
                next_id[0] += 1
                pid = next_id[0]
                people.append(
                    {
                        "id": pid,
                        "family_name": p.family_name,
                        "given_name": p.given_name,
                        "family_name_kana": p.family_name_kana,
                        "given_name_kana": p.given_name_kana,
                        "full_name": p.display_name(),
                        "primary_email": p.emails[0] if p.emails else None,
                        "title": p.title,
                        "birth_date": p.birth_date,
                        "organization_id": orgs[p.organization.name]
                        if p.organization and p.organization.name
                        else None,
                        "attributes": dict(p.attributes),
                        "created_at": ts,
                        "updated_at": ts,
                    }
                )
                ids_.append(pid)
            conn.execute(t.table(t.Person).insert(), people)
            emails = [
                {"email": e, "person_id": pid}
                for pid, (_, p) in zip(ids_, batch, strict=True)
                for e in sorted(set(p.emails))
            ]
            if emails:
                conn.execute(t.table(t.PersonEmail).insert(), emails)
            phones = sorted(
                {(pid, ph) for pid, (_, p) in zip(ids_, batch, strict=True) for ph in p.phones}
            )
            if phones:
                from warehouse.write.upsert import insert_ignore

                insert_ignore(
                    conn,
                    t.table(t.PersonPhone),
                    [{"person_id": a, "phone": b} for a, b in phones],
                    ["person_id", "phone"],
                )
            conn.execute(
                t.table(t.SourceRecord).insert(),
                [
                    {
                        "connector": s,
                        "stream": "people",
                        "source_id": p.source_id,
                        "entity": "person",
                        "entity_id": pid,
                        "payload_hash": p.payload_hash or "x",
                        "first_seen": ts,
                        "last_seen": ts,
                    }
                    for pid, (s, p) in zip(ids_, batch, strict=True)
                ],
            )
        n += len(batch)
        batch.clear()

    for item in stream_records:
        batch.append(item)
        if len(batch) >= 10000:
            flush()
    if batch:
        flush()
    if engine.dialect.name == "postgresql":
        # The people's ids were given here: the sequence a sync takes ids from starts after
        # them, or the first change written through ``apply_page`` would collide.
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('person', 'id'), "
                "(SELECT max(id) FROM person))"
            )
    return n


def predicted_pairs(engine: Engine) -> set[tuple[str, str]]:
    """Pairs of source ids whose unified rows are in one cluster."""
    with engine.connect() as conn:
        cluster = {
            int(a): int(b)
            for a, b in conn.execute(
                select(ids.IdentityMember.record_id, ids.IdentityMember.cluster_id).where(
                    ids.IdentityMember.entity == "person"
                )
            )
        }
        groups: dict[int, list[str]] = defaultdict(list)
        for sid, eid in conn.execute(
            select(t.SourceRecord.source_id, t.SourceRecord.entity_id).where(
                t.SourceRecord.entity == "person"
            )
        ):
            if eid is not None:
                groups[cluster.get(int(eid), int(eid))].append(sid)
    return {p for g in groups.values() if len(g) > 1 for p in combinations(sorted(g), 2)}


def quality(pred: set[tuple[str, str]], truth: set[tuple[str, str]]) -> dict[str, float]:
    tp = len(pred & truth)
    p = tp / len(pred) if pred else 0.0
    rc = tp / len(truth) if truth else 0.0
    f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
    return {"precision": round(p, 4), "recall": round(rc, 4), "f1": round(f1, 4)}


def run_febrl(settings: MatchSettings, label: str) -> list[dict[str, Any]]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2, 3):
            people, truth = febrl(n)
            engine = fresh_engine(Path(tmp) / f"febrl{n}.db")
            load(engine, (("febrl", p) for p in people))
            t0 = time.monotonic()
            stats = resolve_full(engine, settings)
            row = {
                "dataset": f"febrl{n}",
                "variant": label,
                "records": len(people),
                "true_pairs": len(truth),
                **quality(predicted_pairs(engine), truth),
                "pairs_compared": stats.pairs,
                "review_queue": stats.reviews,
                "seconds": round(time.monotonic() - t0, 2),
            }
            engine.dispose()
            print(json.dumps(row), flush=True)
            out.append(row)
    return out


def run_japanese(n: int, seed: int) -> dict[str, Any]:
    data = japanese(n, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        engine = fresh_engine(Path(tmp) / "ja.db")
        total = load(engine, ((s, p) for s, ps in data.pages.items() for p in ps))
        t0 = time.monotonic()
        stats = resolve_full(engine, MatchSettings())
        row = {
            "dataset": f"japanese n={n} seed={seed}",
            "records": total,
            "true_pairs": len(data.truth),
            **quality(predicted_pairs(engine), data.truth),
            "pairs_compared": stats.pairs,
            "review_queue": stats.reviews,
            "seconds": round(time.monotonic() - t0, 2),
        }
        engine.dispose()
    print(json.dumps(row), flush=True)
    return row


def _child(mode: str, db: str) -> None:
    """Resolve in this (child) process and print stats with its own peak memory."""
    engine = make_engine(f"sqlite:///{db}")
    run = resolve_full if mode == "full" else resolve_incremental
    t0 = time.monotonic()
    stats: ResolveStats = run(engine, MatchSettings())
    # The run's own ``seconds`` stop before its last commit, which it records them in.
    took = round(time.monotonic() - t0, 2)
    use = resource.getrusage(resource.RUSAGE_SELF)
    # The run's own helpers (the index writer, the company readings) count too.
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            stats.as_dict()
            | {
                "run_seconds": took,
                "peak_rss_mib": round(use.ru_maxrss / 1024, 1),
                "cpu_seconds": round(use.ru_utime + use.ru_stime, 1),
                "helpers_peak_rss_mib": round(kids.ru_maxrss / 1024, 1),
                "helpers_cpu_seconds": round(kids.ru_utime + kids.ru_stime, 1),
            }
        )
    )


def _resolve_in_child(mode: str, db: Path) -> dict[str, Any]:
    """Resolve in a child process; adds its wall time and ``peak_pss_mib``: the largest sum
    of the proportional set size of the child and every process it started, sampled every
    0.25 s (a forked helper shares most of its pages with the run: PSS counts them once,
    where adding each process's peak RSS would count them twice)."""
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "bench.identity.bench_identity", "_child", mode, "--db", str(db)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=os.environ)
        peak = 0
        while child.poll() is None:
            peak = max(peak, sum(_pss_kib(p) for p in _tree(child.pid)))
            time.sleep(0.25)
        if child.returncode:
            err.seek(0)
            raise SystemExit(f"the {mode} run failed ({child.returncode}):\n{err.read()[-2000:]}")
        out.seek(0)
        row: dict[str, Any] = json.loads(out.read().strip().splitlines()[-1])
    row["wall_seconds"] = round(time.monotonic() - t0, 2)
    row["peak_pss_mib"] = round(peak / 1024)
    return row


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (from /proc; only ``root`` where there is none)."""
    kids: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                kids[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run_scale(n: int, db: Path, seed: int, reuse: bool) -> dict[str, Any]:
    truth_clusters: dict[int, list[str]] = defaultdict(list)
    t0 = time.monotonic()
    if reuse and db.exists():
        engine = make_engine(f"sqlite:///{db}")
        with engine.begin() as conn:  # from scratch: forget any earlier resolution
            for name in sorted(ids.IdentityKey.metadata.tables):
                if name.startswith("identity_"):
                    conn.exec_driver_sql(f"DELETE FROM {name}")
        for _, rec, base in japanese_people(n, seed=seed):
            truth_clusters[base].append(rec.source_id)
        total = sum(len(c) for c in truth_clusters.values())
    else:
        engine = fresh_engine(db)

        def stream() -> Iterable[tuple[str, r.Person]]:
            for s, rec, base in japanese_people(n, seed=seed):
                truth_clusters[base].append(rec.source_id)
                yield s, rec

        total = bulk_load(engine, stream())
    load_s = round(time.monotonic() - t0, 1)
    with engine.connect() as conn:
        people = conn.execute(select(func.count()).select_from(t.Person)).scalar_one()
    print(f"loaded {total} records as {people} person rows in {load_s}s", flush=True)
    engine.dispose()
    full = _resolve_in_child("full", db)
    print("full", json.dumps(full), flush=True)
    # Every later full run finds the index (and the company names) this one stored.
    again = _resolve_in_child("full", db)
    print("full again", json.dumps(again), flush=True)
    engine = make_engine(f"sqlite:///{db}")
    truth = {p for c in truth_clusters.values() if len(c) > 1 for p in combinations(sorted(c), 2)}
    q = quality(predicted_pairs(engine), truth)
    print("quality", json.dumps(q), flush=True)
    # A 1% change: half edits of existing records (drawn at this size their companies and
    # mail differ: their keys move), half new duplicates of people from a new source.
    change = max(2, total // 100)
    edits: list[tuple[str, r.Person]] = []
    for s, rec, _ in japanese_people(change // 2, seed=seed):
        if s == "crm":
            edits.append((s, rec.model_copy(update={"title": "変更後", "payload_hash": "changed"})))
    news: list[tuple[str, r.Person]] = []
    for i, (s, rec, _base) in enumerate(japanese_people(change, seed=seed + 1)):
        if s == "crm" and len(news) < change - len(edits):
            news.append(
                (
                    "import",
                    rec.model_copy(update={"source_id": f"new{i}", "payload_hash": "new"}),
                )
            )
    t1 = time.monotonic()
    load(engine, [*edits, *news])
    engine.dispose()
    print(f"changed {len(edits)} rows and added {len(news)} in {time.monotonic() - t1:.1f}s")
    inc = _resolve_in_child("incremental", db)
    print("incremental", json.dumps(inc), flush=True)
    return {
        "records": total,
        "person_rows": people,
        "load_seconds": load_s,
        "full": full,
        "full_again": again,
        "quality": q,
        "changed": len(edits) + len(news),
        "incremental": inc,
        "incremental_share_of_full": round(inc["run_seconds"] / full["run_seconds"], 4),
        "incremental_share_of_full_again": round(inc["run_seconds"] / again["run_seconds"], 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["febrl", "japanese", "scale", "quality", "_child"])
    ap.add_argument("mode", nargs="?", default="full")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--db", type=Path, default=Path(tempfile.gettempdir()) / "identity-scale.db")
    ap.add_argument("--reuse", action="store_true", help="Reuse a loaded --db (scale).")
    args = ap.parse_args()
    if args.what == "_child":
        _child(args.mode, str(args.db))
    elif args.what == "febrl":
        run_febrl(MatchSettings(), "name+dob+address")
        run_febrl(MatchSettings(id_attributes=("soc_sec_id",)), "+soc_sec_id")
    elif args.what == "japanese":
        run_japanese(args.n, args.seed)
    elif args.what == "quality":  # of a resolved --db generated with the same --n/--seed
        clusters: dict[int, list[str]] = defaultdict(list)
        for _, rec, base in japanese_people(args.n, seed=args.seed):
            clusters[base].append(rec.source_id)
        truth = {p for c in clusters.values() for p in combinations(sorted(c), 2)}
        engine = make_engine(f"sqlite:///{args.db}")
        print(json.dumps(quality(predicted_pairs(engine), truth)))
    else:
        print(json.dumps(run_scale(args.n, args.db, args.seed, args.reuse), indent=1))


if __name__ == "__main__":
    main()
