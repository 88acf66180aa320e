"""Company names read before a large run's feature pass, once, on both cores.

A person's features carry their company's parts (``linkage.company_parts``), and a name's
dictionary reading is the costliest value of the pass. Where the parts are stored, every
process of a run takes them from the store. Where they are not (a first run: 260,000 names
at a million people), each process read the names it met: the run's helper those of its
ranges, the companies' process every company's key and then the names of the ranges it
read from the far end. Most names were read two or three times over (13–16 CPU-s, against
5.3 for reading each once), while both cores were already busy with the ranges. So a large
run that finds many names unread reads them all first, half in a forked process, and stores
them; the ranges and the companies then find every name stored, as a run over a stored
index does.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from warehouse.db import write_transaction
from warehouse.identity.apart import run_apart
from warehouse.identity.keys import matching as mt
from warehouse.identity.linkage import company_parts
from warehouse.identity.linkage.company_parts import Parts
from warehouse.memory import room

# From this many unread names the run reads them up front; fewer are read as the ranges
# meet them (the feature pass's own batch for its helper is 2,000 names).
UP_FRONT = 20_000
WHAT = "reading company names"


def read_up_front(engine: Engine, fork: bool) -> int:
    """Read and store the parts of the live companies' names the store lacks, when there
    are at least ``UP_FRONT``; ``fork``: half of them in a second process, which stores its
    own half (both cores read, and each half is stored while the other may still be read).
    Returns how many names were read."""
    with engine.connect() as conn:
        names = company_parts.unread(conn, UP_FRONT)
    if len(names) < UP_FRONT:
        return 0
    fork = fork and room()
    if fork:
        mt.reading_tokens("田中")  # the dictionary loaded once, shared with the fork
    half = len(names) // 2
    wait = run_apart(WHAT, engine, lambda e: _keep(e, names[half:]), fork)
    try:
        _keep(engine, names[:half])
    finally:
        wait()
    return len(names)


def _keep(engine: Engine, names: Sequence[str]) -> int:
    parts: list[Parts] = mt.org_parts(names)
    with write_transaction(engine) as conn:
        return company_parts.store(conn, list(zip(names, parts, strict=True)))
