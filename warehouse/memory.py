"""How much memory a run may still use, and whether a second process fits beside it.

A forked process copies the pages it touches, so work goes to one only where the memory
allows: the machine's available memory, lowered in a container to what its cgroup's limit
leaves. A host with plenty free says nothing about a 2 GB pod, whose kernel kills the run
(measured: a first run of a million people under a 2 GB limit was killed 35 s in while the
company-name helper ran beside it).
"""

from __future__ import annotations

import os
from pathlib import Path


def room() -> bool:
    """Memory for a second process beside this one: a forked process copies the pages it
    touches, so one beside the scoring waits its turn unless there is twice this process's
    size free. Free means what the machine has available and, in a container, what its
    memory limit leaves (``free_memory``): a host with plenty free says nothing about a
    2 GB pod, whose kernel would kill the run instead."""
    try:
        with open("/proc/self/statm") as f:
            mine = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return False
    free = free_memory()
    return free is not None and free >= 2 * mine


CGROUP = Path("/sys/fs/cgroup")


def free_memory() -> int | None:
    """Bytes this process may still allocate: the machine's available memory, lowered to
    what the cgroup's limit leaves (v2 ``memory.max``, v1 ``memory.limit_in_bytes``; the
    group's reclaimable file cache counts as free). None if the machine does not say."""
    try:
        with open("/proc/meminfo") as f:
            free = next(int(x.split()[1]) * 1024 for x in f if x.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return None
    left = _cgroup_left()
    return free if left is None else min(free, left)


def _cgroup_left() -> int | None:
    try:
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in own:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: one hierarchy
            group = CGROUP / path.lstrip("/")
            got = _left(group / "memory.max", group / "memory.current", group, "inactive_file")
        elif "memory" in controllers.split(","):
            group = CGROUP / "memory" / path.lstrip("/")
            got = _left(
                group / "memory.limit_in_bytes",
                group / "memory.usage_in_bytes",
                group,
                "total_inactive_file",
            )
        else:
            continue
        if got is not None:
            return got
    return None


def _left(limit_file: Path, usage_file: Path, group: Path, cache_key: str) -> int | None:
    """What a cgroup's memory limit leaves, or None without a limit (or files to say)."""
    try:
        raw = limit_file.read_text().strip()
        if raw == "max" or int(raw) >= 2**60:  # v1 writes "no limit" as a huge number
            return None
        usage = int(usage_file.read_text().strip())
        cache = 0
        for line in (group / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == cache_key:
                cache = int(value)
        return max(0, int(raw) - usage + cache)
    except (OSError, ValueError):
        return None
