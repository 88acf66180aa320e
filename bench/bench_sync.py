"""Spreadsheet sync benchmark: the Kizuna pipeline vs. the physical floor vs. dlt.

    python bench/bench_sync.py --rows 1000000

Generates an N-row Japanese/English contact export (cp932 CSV as Excel writes it, streamed
to disk), then, each phase in its own subprocess so peak RSS is per phase:

- ``kizuna``: ``run_stream`` on a fresh SQLite warehouse (parse, map, validate, upsert with
  lineage, cursor per page), RSS sampled at 25/50/100 % of the rows;
- ``rerun``: the same file again (must write nothing);
- ``change``: the file with 1 % of rows edited (cost relative to the full sync);
- ``sqlite``: the floor: csv + plain ``sqlite3`` executemany upsert into one indexed table;
- ``dlt``: the peer: dlt merging the same rows on the same key into SQLite through its
  sqlalchemy destination (``pip install -e .[bench]``).

It prints rows/s, the ratios to the issue's targets and peak memory, and writes the figures
to ``<workdir>/results.json``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sync_data import ASCII, change_file, generate, read_rows  # noqa: E402 (after ROOT)

PAGE = 2000


def rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """CPU seconds of this process and its children: steadier than wall time on a busy box."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        u = resource.getrusage(who)
        total += u.ru_utime + u.ru_stime
    return total


# -- phases ----------------------------------------------------------------------------------
def phase_kizuna(csv_path: Path, db: Path | str, rows: int, fresh: bool) -> dict[str, Any]:
    """A Kizuna sync of the file into ``db``: a SQLite path, or a PostgreSQL URL (client and
    server CPU are then both counted)."""
    from sqlalchemy import func, select

    from flows.engine import run_stream
    from flows.sources import spreadsheet as src
    from flows.workspace import Company, Workspace
    from warehouse import schema as t
    from warehouse.db import make_engine, upgrade

    pg = isinstance(db, str)
    if pg:
        from bench.sync_pg import ServerCpu, reset

        if fresh:
            reset(str(db))
        engine = make_engine(str(db))
    else:
        path = Path(db)
        if fresh and path.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    ws = Workspace(
        company=Company(name="Kizuna Demo", domains=["kizuna-demo.co.jp"]),
        path=csv_path.parent / "kizuna.yaml",
    )
    cfg = src.Config(path=str(csv_path))
    (spec,) = src.streams("export", cfg, ws)

    def stamp() -> Any:
        with engine.connect() as conn:
            return [
                conn.execute(select(func.max(m.updated_at), func.count()).select_from(m)).one()
                for m in (t.Organization, t.Person, t.Deal)
            ] + [conn.execute(select(func.max(t.SourceRecord.last_seen))).scalar()]

    before = None if fresh else stamp()
    marks = {max(rows * q // 4, 1): q * 25 for q in (1, 2, 4)}
    mem: dict[str, dict[str, float]] = {}
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        prev, done = done, done + n
        for at, pct in marks.items():
            if prev < at <= done:
                mem[f"{pct}%"] = {"rows": done, "rss_mb": rss_now_mb(), "peak_mb": peak_mb()}

    server = ServerCpu(str(db)) if pg else None
    if server is not None:
        server.start()
    t0, c0 = time.perf_counter(), cpu_s()
    res = run_stream(engine, spec, f"bench-{time.time_ns()}", progress=progress)
    secs, cpu = time.perf_counter() - t0, cpu_s() - c0
    srv = server.stop() if server is not None else 0.0
    out = {
        "seconds": secs,
        "rows_per_s": rows / secs,
        "cpu_s": cpu + srv,
        "client_cpu_s": cpu,
        "server_cpu_s": srv,
        "rows_per_cpu_s": rows / (cpu + srv),
        "peak_mb": peak_mb(),
        "memory": mem,
        "result": res.as_dict(),
    }
    if before is not None:
        out["wrote_nothing"] = stamp() == before
    engine.dispose()
    return out


def phase_sqlite(csv_path: Path, db: Path, rows: int) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    cols = ", ".join(f"{c} TEXT" for c in ASCII[1:])
    con.execute(f"CREATE TABLE contact (customer_id TEXT PRIMARY KEY, {cols})")
    con.execute("CREATE INDEX ix_contact_email ON contact (email)")
    marks = ", ".join("?" * len(ASCII))
    sets = ", ".join(f"{c} = excluded.{c}" for c in ASCII[1:])
    sql = (
        f"INSERT INTO contact ({', '.join(ASCII)}) VALUES ({marks}) "
        f"ON CONFLICT (customer_id) DO UPDATE SET {sets}"
    )
    t0, c0 = time.perf_counter(), cpu_s()
    batch: list[list[str]] = []
    for row in read_rows(csv_path):
        batch.append(row)
        if len(batch) == PAGE:
            con.execute("BEGIN")
            con.executemany(sql, batch)
            con.execute("COMMIT")
            batch = []
    if batch:
        con.execute("BEGIN")
        con.executemany(sql, batch)
        con.execute("COMMIT")
    secs, cpu = time.perf_counter() - t0, cpu_s() - c0
    n = con.execute("SELECT count(*) FROM contact").fetchone()[0]
    con.close()
    return {
        "seconds": secs,
        "rows_per_s": rows / secs,
        "cpu_s": cpu,
        "rows_per_cpu_s": rows / cpu,
        "peak_mb": peak_mb(),
        "rows": n,
    }


def phase_dlt(csv_path: Path, workdir: Path, rows: int) -> dict[str, Any]:
    import dlt

    db = workdir / "dlt.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)

    @dlt.resource(name="contact", write_disposition="merge", primary_key="customer_id")
    def contacts() -> Iterator[list[dict[str, str]]]:
        batch: list[dict[str, str]] = []
        for i, row in enumerate(read_rows(csv_path)):
            if i >= rows:
                break
            batch.append(dict(zip(ASCII, row, strict=True)))
            if len(batch) == PAGE:
                yield batch
                batch = []
        if batch:
            yield batch

    pipe = dlt.pipeline(
        pipeline_name=f"bench_{time.time_ns()}",
        destination=dlt.destinations.sqlalchemy(credentials=f"sqlite:///{db}"),
        dataset_name="main",
        pipelines_dir=str(workdir / "dlt_pipelines"),
    )
    t0, c0 = time.perf_counter(), cpu_s()
    pipe.run(contacts())
    secs, cpu = time.perf_counter() - t0, cpu_s() - c0
    con = sqlite3.connect(db)
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    n = con.execute("SELECT count(*) FROM contact").fetchone()[0] if "contact" in names else None
    con.close()
    return {
        "seconds": secs,
        "rows_per_s": rows / secs,
        "cpu_s": cpu,
        "rows_per_cpu_s": rows / cpu,
        "peak_mb": peak_mb(),
        "rows": n,
    }


def run_phase(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.workdir)
    export, changed, db = work / "export.csv", work / "export_changed.csv", work / "kizuna.db"
    if args.phase == "generate":
        t0 = time.perf_counter()
        generate(export, args.rows)
        gen = time.perf_counter() - t0
        n = change_file(export, changed)
        return {"seconds": gen, "bytes": export.stat().st_size, "changed_rows": n}
    if args.phase == "kizuna":
        return phase_kizuna(export, db, args.rows, fresh=True)
    if args.phase == "rerun":
        return phase_kizuna(export, db, args.rows, fresh=False)
    if args.phase == "change":
        work.joinpath("export.csv").rename(work / "export_orig.csv")
        changed.rename(export)
        try:
            return phase_kizuna(export, db, args.rows, fresh=False)
        finally:
            export.rename(changed)
            (work / "export_orig.csv").rename(export)
    if args.phase == "sqlite":
        return phase_sqlite(export, work / "plain.db", args.rows)
    pg_export, pg_changed = work / "export_pg.csv", work / "export_pg_changed.csv"
    if args.phase == "pg_generate":
        generate(pg_export, args.pg_rows)
        return {"changed_rows": change_file(pg_export, pg_changed)}
    if args.phase == "pg_kizuna":
        return phase_kizuna(pg_export, args.pg_url, args.pg_rows, fresh=True)
    if args.phase == "pg_change":
        return phase_kizuna(pg_changed, args.pg_url, args.pg_rows, fresh=False)
    if args.phase == "pg_floor":
        from bench.sync_pg import phase_pg_floor

        return phase_pg_floor(pg_export, args.pg_url, args.pg_rows, cpu_s, peak_mb)
    if args.phase == "dlt":
        return phase_dlt(export, work, args.dlt_rows or args.rows)
    raise SystemExit(f"unknown phase {args.phase}")


def _sub(args: argparse.Namespace, phase: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--rows",
        str(args.rows),
        "--workdir",
        args.workdir,
        "--phase",
        phase,
    ]
    if args.dlt_rows:
        cmd += ["--dlt-rows", str(args.dlt_rows)]
    if args.pg_url:
        cmd += ["--pg-url", args.pg_url, "--pg-rows", str(args.pg_rows)]
    print(f"· {phase} …", flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def report(r: dict[str, Any], rows: int) -> str:
    k, s = r["kizuna"], r["sqlite"]
    buf = io.StringIO()

    def p(*a: Any) -> None:
        print(*a, file=buf)

    p(f"\n{rows:,} rows, {r['generate']['bytes'] / 2**20:.0f} MiB cp932 CSV")
    p(f"{'phase':<34}{'wall s':>9}{'rows/s':>11}{'CPU s':>9}{'rows/CPU-s':>12}{'peak MB':>9}")
    for name, label in [
        ("kizuna", "kizuna full sync"),
        ("rerun", "kizuna rerun, unchanged file"),
        ("change", "kizuna rerun, 1% rows changed"),
        ("sqlite", "plain sqlite3 executemany upsert"),
        ("dlt", "dlt merge (sqlalchemy → sqlite)"),
    ]:
        if name in r:
            x = r[name]
            p(
                f"{label:<34}{x['seconds']:>9.2f}{x['rows_per_s']:>11,.0f}{x['cpu_s']:>9.2f}"
                f"{x['rows_per_cpu_s']:>12,.0f}{x['peak_mb']:>9.0f}"
            )
    p("")
    p("ratios (wall / CPU):")
    p(
        f"  pipeline / plain upsert : {k['rows_per_s'] / s['rows_per_s']:.3f}x / "
        f"{k['rows_per_cpu_s'] / s['rows_per_cpu_s']:.3f}x   (target >= 0.5x)"
    )
    if "dlt" in r:
        d = r["dlt"]
        p(
            f"  pipeline / dlt          : {k['rows_per_s'] / d['rows_per_s']:.2f}x / "
            f"{k['rows_per_cpu_s'] / d['rows_per_cpu_s']:.2f}x   (target >= 5x)"
        )
    p(f"pipeline peak RSS         : {k['peak_mb']:.0f} MB   (target < 500 MB)")
    flat = ", ".join(
        f"{m} ({v['rows']:,} rows) {v['rss_mb']:.0f} MB" for m, v in k["memory"].items()
    )
    p(f"pipeline RSS as it goes   : {flat}")
    re_ = r["rerun"]
    p(
        f"unchanged rerun           : {re_['seconds']:.2f} s, pages {re_['result']['pages']}, "
        f"wrote nothing: {re_['wrote_nothing']}"
    )
    ch = r["change"]
    p(
        f"1% change rerun           : {ch['seconds']:.2f} s wall = "
        f"{ch['seconds'] / k['seconds']:.1%}, {ch['cpu_s']:.2f} CPU s = "
        f"{ch['cpu_s'] / k['cpu_s']:.1%} of the full sync (target <= 3%); "
        f"updated {ch['result']['updated']}, unchanged {ch['result']['unchanged']}"
    )
    if "pg_kizuna" in r:
        pk, pf, pc = r["pg_kizuna"], r["pg_floor"], r["pg_change"]
        p(f"\nPostgreSQL, {pf['rows']:,} rows (CPU = client + server backends)")
        p(
            f"{'phase':<34}{'wall s':>9}{'client s':>9}{'server s':>9}{'rows/CPU-s':>12}{'peak MB':>9}"
        )
        for x, label in [
            (pk, "kizuna full sync"),
            (pc, "kizuna rerun, 1% rows changed"),
            (pf, "COPY → staging → INSERT ON CONFLICT"),
        ]:
            client = x.get("client_cpu_s", x["cpu_s"])
            p(
                f"{label:<34}{x['seconds']:>9.2f}{client:>9.2f}{x['server_cpu_s']:>9.2f}"
                f"{x['rows_per_cpu_s']:>12,.0f}{x['peak_mb']:>9.0f}"
            )
        p(
            f"  pipeline / COPY upsert  : {pk['rows_per_s'] / pf['rows_per_s']:.3f}x wall / "
            f"{pk['rows_per_cpu_s'] / pf['rows_per_cpu_s']:.3f}x CPU   (target >= 0.5x)"
        )
        p(
            f"  1% change               : {pc['cpu_s'] / pk['cpu_s']:.1%} of the full sync's CPU "
            f"(target <= 3%)"
        )
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workdir", default=None, help="where files go (a temp dir by default)")
    ap.add_argument("--dlt-rows", type=int, default=0, help="rows for dlt (default: --rows)")
    ap.add_argument("--skip-dlt", action="store_true")
    ap.add_argument(
        "--pg-url",
        default=os.environ.get("KIZUNA_BENCH_PG_URL", ""),
        help="an EMPTY PostgreSQL database for the PostgreSQL phases (it is wiped); "
        "default $KIZUNA_BENCH_PG_URL, none: SQLite only",
    )
    ap.add_argument("--pg-rows", type=int, default=100_000, help="rows for PostgreSQL")
    ap.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args), default=str))
        return
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="kizuna-bench-")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    print(f"workdir {args.workdir}")
    results: dict[str, Any] = {}
    phases = ["generate", "kizuna", "rerun", "change", "sqlite"]
    if not args.skip_dlt:
        phases.append("dlt")
    if args.pg_url:
        phases += ["pg_generate", "pg_kizuna", "pg_change", "pg_floor"]
    for ph in phases:
        results[ph] = _sub(args, ph)
    if "dlt" in results and args.dlt_rows:
        results["dlt"]["note"] = f"dlt measured on the first {args.dlt_rows:,} rows"
    Path(args.workdir, "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(report(results, args.rows))


if __name__ == "__main__":
    main()
