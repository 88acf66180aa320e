"""What a worker's flow-run process loads and how it ends (``flows.ops.entry``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from flows.ops import entry

LOADED = """
import json, sys
import flows.ops.entry as entry
flow = entry.sync_workspace
print(json.dumps({"type": type(flow).__name__, "module": flow.__module__,
                  "loaded": sorted(m for m in sys.modules if m.startswith("flows."))}))
"""


def test_a_sync_run_imports_its_own_flow_and_not_the_others() -> None:
    """Every flow run is a fresh process: a sync-source run that loaded the campaign, report
    and identity flows too paid for code it never runs."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["type"] == "Flow" and seen["module"] == "flows.ops.entry"
    assert "flows.sync" in seen["loaded"]
    for other in ("flows.push.campaigns", "flows.reports.flow", "flows.identity.resolve"):
        assert other not in seen["loaded"], other


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_flow"):
        entry.no_such_flow  # noqa: B018


EXIT = """
import atexit, sys, threading, time
from flows.ops.entry import exit_now
def late():
    time.sleep(0.2)
    print("thread done", flush=True)
threading.Thread(target=late).start()       # not a daemon: an exit waits for it
# Prefect drains its log queue in an atexit handler; this one leaves its line unflushed
atexit.register(lambda: print("atexit ran", end=""))
exit_now(3)
"""


def test_exit_now_runs_what_an_exit_runs_and_keeps_the_code() -> None:
    done = subprocess.run([sys.executable, "-c", EXIT], capture_output=True, text=True)
    assert done.returncode == 3
    assert done.stdout == "thread done\natexit ran"  # in that order, the last line flushed


@pytest.mark.parametrize(("code", "want"), [(None, 0), (0, 0), (2, 2), ("no flow run id", 1)])
def test_exit_codes_follow_system_exit(code: object, want: int) -> None:
    assert entry._exit_code(code) == want
