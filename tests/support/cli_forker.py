"""Start `kizuna …` command lines as forked children of one process that imported the CLI
once, so a test can run dozens of real CLI processes (and SIGKILL them) without paying
Prefect's import for each (seconds on a loaded machine).

Each child is its own OS process running the CLI's own entry point (``flows.cli.main.app``)
with the given arguments and environment, its output in a file; its exit code goes to
``<out>.rc`` unless it was killed. Children are reaped at once (SIGCHLD ignored), so a killed
one leaves no zombie and the lease code sees its pid gone, as with any dead process.

Usage: python -m tests.support.cli_forker   (then one JSON line per command on stdin:
``{"args": [...], "out": "/path/file.log", "env": {...}}``; it answers ``{"pid": N}``)
"""

from __future__ import annotations

import json
import os
import signal
import sys


def main() -> None:
    # What the commands import lazily, imported here once (no thread started, no engine).
    import flows.ops.launch
    import flows.push.campaigns
    import flows.push.channels
    from flows.cli.main import app

    assert flows.ops.launch and flows.push.campaigns and flows.push.channels
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
            with open(req["out"] + ".rc", "w") as f:
                f.write(str(code))
            os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    main()
