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

import multiprocessing as mp
from collections.abc import Sequence

from sqlalchemy import Engine

from warehouse.db import write_transaction
from warehouse.identity.keys import matching as mt
from warehouse.identity.linkage import company_parts
from warehouse.identity.linkage.company_parts import Parts
from warehouse.memory import room

# From this many unread names the run reads them up front; fewer are read as the ranges
# meet them (the feature pass's own batch for its helper is 2,000 names).
UP_FRONT = 20_000


def read_up_front(engine: Engine, fork: bool) -> int:
    """Read and store the parts of the live companies' names the store lacks, when there
    are at least ``UP_FRONT``; ``fork``: half of them in a second process. Returns how many
    names were read."""
    with engine.connect() as conn:
        names = company_parts.unread(conn, UP_FRONT)
    if len(names) < UP_FRONT:
        return 0
    parts = _read(names, fork and room())
    with write_transaction(engine) as conn:
        company_parts.store(conn, list(zip(names, parts, strict=True)))
    return len(names)


def _read(names: Sequence[str], fork: bool) -> list[Parts]:
    if not fork or "fork" not in mp.get_all_start_methods():
        return mt.org_parts(names)
    mt.reading_tokens("田中")  # the dictionary loaded once, shared with the fork
    half = len(names) // 2
    with mp.get_context("fork").Pool(1) as pool:
        far = pool.apply_async(_parts, (names[half:],))
        near = mt.org_parts(names[:half])
        return near + far.get()


def _parts(names: Sequence[str]) -> list[Parts]:
    # Looked up when called: the pool is handed this function by name, not the one it finds.
    return mt.org_parts(names)
