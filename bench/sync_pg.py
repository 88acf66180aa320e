"""The spreadsheet sync benchmark's PostgreSQL side: Kizuna vs. a hand-written COPY upsert.

Both sides are charged client **and** server CPU: a PostgreSQL backend does the inserting,
index maintenance and conflict checks in its own process, so client CPU alone would flatter
whichever side pushes more work to the server. ``ServerCpu`` samples ``/proc/<pid>/stat``
of every backend connected to the bench database (found through ``pg_stat_activity``,
excluding its own), so a backend the pool closes mid-run still counts up to its last sample.
The database is emptied before each phase (``DROP SCHEMA public CASCADE``); run the server
with autovacuum off for the worst case the issue asks for (fresh tables, no statistics).

The floor (``phase_pg_floor``): per 2,000-row page, ``COPY`` into a temporary staging table
and one ``INSERT … SELECT … ON CONFLICT (customer_id) DO UPDATE`` into one table with a
primary key and an e-mail index, as a person would write it by hand with psycopg.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from bench.sync_data import ASCII, read_rows

PAGE = 2000
TICK = os.sysconf("SC_CLK_TCK")


def dsn(url: str) -> str:
    """A libpq DSN from a SQLAlchemy URL (``postgresql+psycopg://`` → ``postgresql://``)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def reset(url: str) -> None:
    import psycopg

    with psycopg.connect(dsn(url), autocommit=True) as con:
        con.execute("DROP SCHEMA IF EXISTS public CASCADE")
        con.execute("CREATE SCHEMA public")


def _proc_cpu(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


class ServerCpu:
    """CPU seconds used by the database's backends between ``start`` and ``stop``."""

    def __init__(self, url: str, interval: float = 0.2) -> None:
        import psycopg

        self._con = psycopg.connect(dsn(url), autocommit=True)
        self._db = self._con.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        self._me = self._con.info.backend_pid
        self._running = False
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self) -> list[int]:
        rows = self._con.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
            (self._db, self._me),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def _sample(self) -> None:
        for pid in self._pids():
            cpu = _proc_cpu(pid)
            if cpu is not None:
                # Alive at start: charged from then on; connected later: from its birth.
                self._base.setdefault(pid, 0.0 if self._running else cpu)
                self._last[pid] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> None:
        self._running = False
        self._sample()
        self._running = True
        self._thread.start()

    def stop(self) -> float:
        self._sample()
        self._stop.set()
        self._thread.join()
        self._sample()
        self._con.close()
        return sum(self._last[p] - self._base.get(p, 0.0) for p in self._last)


def phase_pg_floor(csv_path: Path, url: str, rows: int, cpu_s: Any, peak_mb: Any) -> dict[str, Any]:
    import psycopg

    reset(url)
    cols = ", ".join(f"{c} text" for c in ASCII[1:])
    names = ", ".join(ASCII)
    sets = ", ".join(f"{c} = excluded.{c}" for c in ASCII[1:])
    server = ServerCpu(url)
    with psycopg.connect(dsn(url)) as con:
        con.execute(f"CREATE TABLE contact (customer_id text PRIMARY KEY, {cols})")
        con.execute("CREATE INDEX ix_contact_email ON contact (email)")
        con.execute("CREATE TEMP TABLE stage (LIKE contact) ON COMMIT DELETE ROWS")
        con.commit()
        upsert = (
            f"INSERT INTO contact ({names}) SELECT {names} FROM stage "
            f"ON CONFLICT (customer_id) DO UPDATE SET {sets}"
        )

        def flush(batch: list[list[str]]) -> None:
            with con.cursor() as cur:
                with cur.copy(f"COPY stage ({names}) FROM STDIN") as cp:
                    for row in batch:
                        cp.write_row(row)
                cur.execute(upsert)
            con.commit()

        server.start()
        t0, c0 = time.perf_counter(), cpu_s()
        batch: list[list[str]] = []
        for i, row in enumerate(read_rows(csv_path)):
            if i >= rows:
                break
            batch.append(row)
            if len(batch) == PAGE:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
        secs, cpu = time.perf_counter() - t0, cpu_s() - c0
        srv = server.stop()
        n = con.execute("SELECT count(*) FROM contact").fetchone()[0]  # type: ignore[index]
    return {
        "seconds": secs,
        "rows_per_s": rows / secs,
        "cpu_s": cpu,
        "server_cpu_s": srv,
        "rows_per_cpu_s": rows / (cpu + srv),
        "peak_mb": peak_mb(),
        "rows": n,
    }


__all__ = ["ServerCpu", "dsn", "phase_pg_floor", "reset"]
