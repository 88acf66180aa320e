"""Fork server for the tap crash tests: imports dlt, the engine and both source types once,
then forks one child per request that syncs a source and reports each committed page.

A request is one JSON line on stdin: ``{"workspace", "source", "url", "run", "fifo", "env"}``;
the answer is ``{"pid": N}``. The child writes ``page`` to the FIFO after each committed page
and ``done`` (or ``error …``) at the end, so the test can SIGKILL it between two commits.
Children are reaped at once (SIGCHLD ignored here), so a killed one leaves no zombie and the
lease code sees its pid gone, as with any dead process.

Usage: python -m tests.flows.sources.taps.crash_worker
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def main() -> None:
    import dlt  # noqa: F401  (what the children need, imported once, before any fork)

    import tests.support.dlt_people  # noqa: F401
    from flows.config import load
    from flows.engine import run_stream
    from flows.sources import registry
    from flows.sources.taps import dlt_source, singer
    from warehouse.db import make_engine

    assert dlt_source and singer
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the tap child's exit status counts
            os.environ.update(req["env"])
            with open(req["fifo"], "w", encoding="utf-8") as out:

                def page(_: int) -> None:
                    out.write("page\n")
                    out.flush()

                try:
                    engine = make_engine(req["url"])
                    spec = registry.streams(load(Path(req["workspace"])), req["source"])[0]
                    run_stream(engine, spec, req["run"], progress=page)
                    out.write("done\n")
                except BaseException as exc:
                    out.write(f"error {type(exc).__name__}: {exc}\n")
            os._exit(0)
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    main()
