"""CLI benchmark: start-up and an unchanged ``kizuna sync`` of the demo, with and without a
Prefect server, against the old path (the flow called with Prefect's temporary server).

    python bench/bench_cli.py              # the demo (3,000 messages), 3 repeats
    python bench/bench_cli.py --messages 300 --repeat 5
    python bench/bench_cli.py --scale-out  # a work pool: two workers against one at a time

Every measurement is a fresh process, as a user types it: wall seconds (median) and the CPU
seconds of the process tree. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
OLD_PATH = """
import sys
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from flows.runtime import quiet_prefect
from pathlib import Path
quiet_prefect(Path(sys.argv[1]).parent / ".kizuna" / "prefect-old")
from flows.sync import sync_workspace
with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
    sync_workspace(sys.argv[1])
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(label: str, cmd: list[str], env: dict[str, str], repeat: int) -> None:
    runs = [timed(cmd, env) for _ in range(repeat)]
    wall = statistics.median(w for w, _ in runs)
    cpu = statistics.median(c for _, c in runs)
    print(f"| {label} | {wall:.2f} | {cpu:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scale-out", action="store_true", help="the work-pool figures instead")
    ap.add_argument("--rows", type=int, default=20_000, help="deals per source (--scale-out)")
    args = ap.parse_args()
    if args.scale_out:
        scale_out(args.rows, args.repeat)
        return
    from flows.demo.generate import generate
    from flows.ops import server

    # As a user runs it: Python writes its bytecode caches (a harness's
    # PYTHONDONTWRITEBYTECODE=1 would recompile ~130 modules, ~0.6 CPU-s, on every command).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "KIZUNA_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    with tempfile.TemporaryDirectory() as tmp:
        ws = str(generate(Path(tmp) / "demo", messages=args.messages))
        kizuna = [str(BIN / "kizuna")]
        subprocess.run([*kizuna, "sync", "-w", ws], env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"load average {os.getloadavg()[0]:.1f}; demo with {args.messages} messages\n")
        # Prefect is not imported on the in-process path (flows.ops.lazy): shown, not assumed.
        probe = "import sys, runpy; sys.argv = ['kizuna', 'sync', '-w', sys.argv[1]]\n"
        probe += "from flows.cli.main import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        probe += "print('prefect imported:', 'prefect' in sys.modules, file=sys.stderr)"
        done = subprocess.run(
            [sys.executable, "-c", probe, ws], env=env, capture_output=True, text=True
        )
        print(done.stderr.strip().splitlines()[-1] + "\n")
        print("| command | wall s (median) | CPU s |\n|---|---:|---:|")
        measure("`kizuna --help`", [*kizuna, "--help"], env, args.repeat)
        measure("`kizuna status`", [*kizuna, "status", "-w", ws], env, args.repeat)
        measure(
            "unchanged `kizuna sync`, no Prefect server (in-process)",
            [*kizuna, "sync", "-w", ws],
            env,
            args.repeat,
        )
        with server.started(Path(tmp) / "server", 0) as api:
            measure(
                "unchanged `kizuna sync`, Prefect server in PREFECT_API_URL",
                [*kizuna, "sync", "-w", ws],
                {**env, "PREFECT_API_URL": api},
                args.repeat,
            )
        measure(
            "baseline: the flow with Prefect's temporary server (before)",
            [sys.executable, "-c", OLD_PATH, ws],
            env,
            args.repeat,
        )


def scale_out(rows: int, repeat: int) -> None:
    """README "Past one machine" on this machine (``tests/deployments/pool_support.py``):
    `sync-all` of four sources on two workers, then the same runs one at a time; then one
    flow run's own cost (an unchanged source) as Prefect starts it by default (a supervisor
    process, then the engine) and through ``kizuna-engine``. Needs PostgreSQL
    (``KIZUNA_TEST_PG_URL``, as the tests)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' pool helpers
    from tests.deployments import pool_support as ps

    url = os.environ.get(
        "KIZUNA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1/kizuna_test"
    )
    with tempfile.TemporaryDirectory() as tmp, ps.pool_databases(url, ("two", "one")) as db:
        ws_file = ps.write_workspace(Path(tmp) / "ws", rows)
        print(f"load average {os.getloadavg()[0]:.1f}; 4 sources x {rows} rows\n")
        with ps.pool(Path(tmp), db["prefect"], ws_file, ("w1", "w2")) as p:
            two, _ = ps.sync_all(p.api, db["two"], pool_limit=None)
            ps.stop_workers(p.workers[1:])
            one, _ = ps.sync_all(p.api, db["one"], pool_limit=2)
            print("| `sync-all` | wall s |\n|---|---:|")
            print(f"| two workers, four sources at once | {two:.1f} |")
            print(f"| baseline: one worker, one source at a time | {one:.1f} |")
            print(f"\nload average {os.getloadavg()[0]:.1f}\n")
            print("| one unchanged `sync-source` run | wall s to Completed (median) | CPU s |")
            print("|---|---:|---:|")
            worker = p.workers[0][0].pid
            for label, command in (
                ("Prefect's default command", None),
                ("`kizuna-engine`", "kizuna-engine"),
            ):
                got = [_one_run(p.api, worker, command) for _ in range(repeat)]
                wall = statistics.median(w for w, _ in got)
                cpu = statistics.median(c for _, c in got)
                print(f"| {label} | {wall:.2f} | {cpu:.2f} |", flush=True)
            supervised = p.log(0).count("Downloading flow code")  # the supervisor's line
            print(f"\n(runs that went through Prefect's supervisor process: {supervised})")


def _one_run(api: str, worker: int, command: str | None) -> tuple[float, float]:
    """Wall seconds from creation to Completed, and the CPU seconds of the worker's child
    processes (read once the worker has reaped them: Linux ``/proc``)."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.deployments.pool_support import wait

    def reaped_cpu() -> float:
        fields = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")

    def children() -> str:
        return Path(f"/proc/{worker}/task/{worker}/children").read_text().strip()

    before = reaped_cpu()
    with temporary_settings(updates={PREFECT_API_URL: api}):
        t0 = time.perf_counter()
        run = run_deployment(
            "kizuna-sync/sync-source",
            parameters={"sources": ["tokyo"]},
            job_variables={"command": command},
            timeout=0,
        )
        assert wait(run.id) == "COMPLETED"
        wall = time.perf_counter() - t0
    while children():  # the process outlives its final state by its exit
        time.sleep(0.1)
    time.sleep(0.5)
    return wall, reaped_cpu() - before


if __name__ == "__main__":
    main()
