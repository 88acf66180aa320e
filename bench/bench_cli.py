"""CLI benchmark: start-up and an unchanged ``kizuna sync`` of the demo, with and without a
Prefect server, against the old path (the flow called with Prefect's temporary server).

    python bench/bench_cli.py              # the demo (3,000 messages), 3 repeats
    python bench/bench_cli.py --messages 300 --repeat 5

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
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
