"""Start `kizuna …` command lines as forked children of one process that imported the CLI
once, so a test can run dozens of real CLI processes (and SIGKILL them) without paying
Prefect's import for each (seconds on a loaded machine).

Each child is its own OS process running the CLI's own entry point (``flows.cli.main.app``)
with the given arguments and environment, its output in a file; its exit code goes to
``<out>.rc`` unless it was killed. Children are reaped at once (SIGCHLD ignored), so a killed
one leaves no zombie and the lease code sees its pid gone, as with any dead process.

Usage: python -m tests.support.cli_forker   (then one JSON line per command on stdin:
``{"args": [...], "out": "/path/file.log", "env": {...}}``; it answers ``{"pid": N}``);
tests drive it through :class:`Forker` and follow each child with :class:`Run`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any


def main() -> None:
    # What the commands import lazily, imported here once (no thread started, no engine).
    import flows.identity.resolve
    import flows.ops.launch
    import flows.push.campaigns
    import flows.push.channels
    import flows.sync
    from flows.cli.main import app

    assert flows.ops.launch and flows.push.campaigns and flows.push.channels
    assert flows.sync and flows.identity.resolve
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            fd = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.environ.update(req.get("env", {}))
            code = 0
            try:
                app(req["args"], prog_name="kizuna")
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException as exc:
                print(f"crashed: {type(exc).__name__}: {exc}")
                code = 99
            sys.stdout.flush()
            sys.stderr.flush()
            with open(req["out"] + ".rc.tmp", "w") as f:
                f.write(str(code))
            os.replace(req["out"] + ".rc.tmp", req["out"] + ".rc")  # whole, or not there
            os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)


class Forker:
    """The warmed-up process that forks CLI runs (see tests/support/cli_forker.py)."""

    def __init__(self, env: dict[str, str], root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.cli_forker"],
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._line() == "ready"

    def _line(self) -> str:
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        return out.readline().strip()

    def start(self, args: list[str], out: Path, env: dict[str, str] | None = None) -> int:
        """Fork ``kizuna ARGS`` (``env`` added to the environment); its pid."""
        assert self.proc.stdin is not None
        req = {"args": args, "out": str(out), "env": env or {}}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return int(json.loads(self._line())["pid"])

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Run:
    """One CLI run: a fresh process (``proc``) or a forked child (``pid``)."""

    def __init__(self, out: Path, proc: subprocess.Popen[Any] | None, pid: int) -> None:
        self.out, self.proc, self.pid, self.killed = out, proc, pid, False

    def done(self) -> bool:
        if self.killed:
            return True
        if self.proc is not None:
            return self.proc.poll() is not None
        return Path(str(self.out) + ".rc").exists()

    def code(self) -> int | None:
        if self.proc is not None:
            return self.proc.returncode
        rc = Path(str(self.out) + ".rc")
        return int(rc.read_text()) if rc.exists() else None

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        self.killed = True

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while not self.done():
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.05)
        return self.code()

    def text(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace") if self.out.exists() else ""


if __name__ == "__main__":
    main()
