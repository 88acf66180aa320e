"""Sync sources of a workspace in a separate process, streams in ``PARALLEL_STREAMS`` threads as
the sync flow runs them on PostgreSQL, so a test can start several syncs at the same instant.

Usage: python -m tests.support.sync_worker WORKSPACE URL SCHEMA START_AT SOURCE[,SOURCE…]
Prints one line per stream (``ok``, ``skipped: …``) and ``done``; exits 1 on any failure.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

from flows.config import load
from flows.engine import StreamSpec, run_stream
from flows.sources import registry
from flows.sync import PARALLEL_STREAMS
from kizuna.errors import LeaseHeld
from tests.support.pg_schema import engine_in
from warehouse.db import upgrade


def main(ws_file: str, url: str, schema: str, start_at: str, sources: str) -> int:
    ws = load(ws_file)
    engine = engine_in(url, schema)
    time.sleep(max(0.0, float(start_at) - time.time()))
    upgrade(engine)  # several fresh opens at once: the migration lock sorts them out
    specs = [s for name in sources.split(",") for s in registry.streams(ws, name)]

    def one(spec: StreamSpec) -> str:
        try:
            run_stream(
                engine,
                spec,
                f"worker-{sources}",
                lease_wait=120,
                zone="Asia/Tokyo",
                on_wait=lambda line: print(line, flush=True),
            )
        except LeaseHeld as exc:
            return f"skipped: {exc}"
        return "ok"

    failed = False
    with ThreadPoolExecutor(PARALLEL_STREAMS) as pool:
        futures = [(s, pool.submit(one, s)) for s in specs]
        for spec, fut in futures:
            try:
                print(f"{spec.connector}/{spec.stream}: {fut.result()}", flush=True)
            except Exception as exc:
                failed = True
                print(f"{spec.connector}/{spec.stream}: FAILED {type(exc).__name__}: {exc}")
    print("done", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
