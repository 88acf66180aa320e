"""An empty index written by a lean process from files the feature pass fills as it goes.

A first run (or the first after a migration that emptied the keys) writes a million rows'
features and fourteen million keys. A writer forked once every range was read shared the
run's heap: every page the run wrote afterwards stayed behind in the writer as a private
copy, and every value the writer read was copied too (a reference count is a write), so it
held 0.9–1.3 GB beside the run's scoring (2.4–2.7 GB together).

Here the process that reads a range spells the range's rows as they are stored and appends
them to a file of its own (``put``); once every range is read, the run computes the keys and
puts them in two files beside them (``write``); a process forked as the run began, before
its heap grew, writes both into the emptied index in one transaction, a range of rows and a
page of keys at a time. Without a second process the run writes them itself, the same way.
The files go with the run (``close``).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from warehouse.db import write_transaction
from warehouse.identity.apart import run_apart
from warehouse.identity.blocking import ENTITY, SAVE_FEATURE, F, clear, person_digests, shrink
from warehouse.identity.linkage import features as fe
from warehouse.identity.linkage import index
from warehouse.identity.linkage.frame import bulk, release
from warehouse.identity.linkage.key_table import Digests, add_fresh
from warehouse.write.bulk import put_rows

Ints = np.ndarray[Any, np.dtype[np.int64]]
Spooled = tuple[str, int]  # (file, offset) of one range's rows
WHAT = "writing the identity index"
KEYS_AT_ONCE = 2_000_000  # keys read back per piece (32 MB)
_COLUMNS = ("entity", "record_id", "data", "fingerprint")


class Spool:
    """Files of an empty index's rows and keys, and the process that will write them."""

    def __init__(self, engine: Engine, fork: bool) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="kizuna-index-"))
        self._handed = False
        self._recv, self._send = mp.get_context("fork").Pipe(duplex=False)
        self._wait: Callable[[], int] | None = None
        if fork:
            self._wait = run_apart(WHAT, engine, self._lean, True)
        else:
            self._send.close()
        self._recv.close()

    def put(self, cols: fe.Columns, fps: Ints) -> Spooled:
        """Append a range's rows (``fps``: their fingerprints) to this process's file."""
        path = self.root / f"rows-{os.getpid()}"
        ids, texts = _spelled(cols)
        marks = fps[np.argsort(cols.ids, kind="stable")]
        with path.open("ab") as f:
            at = f.tell()
            pickle.dump((ids, marks, texts), f, protocol=pickle.HIGHEST_PROTOCOL)
        return str(path), at

    def write(self, engine: Engine, cols: fe.Columns, rows: Sequence[Spooled]) -> Callable[[], int]:
        """Compute the keys of ``cols`` (every row, spooled as ``rows`` in id order) and have
        the index written; returns ``wait``, which gives the number of keys once committed
        (or raises what stopped the writer)."""
        d, r = person_digests(cols)
        n = int(d.shape[0])
        d.tofile(self.root / "digests")
        r.tofile(self.root / "records")
        del d, r
        self._handed = True
        if self._wait is None:
            return run_apart(WHAT, engine, lambda e: _write(e, self.root, rows, n), False)
        with contextlib.suppress(OSError):  # a writer that stopped: ``wait`` says why
            self._send.send((list(rows), n))
        self._send.close()
        return self._wait

    def close(self) -> None:
        """Let the writer go if it was handed nothing (it then writes nothing) and remove
        the files. Call it once the run no longer needs them, also when it failed."""
        if self._wait is not None and not self._handed:
            self._send.close()
            with contextlib.suppress(Exception):
                self._wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def _lean(self, engine: Engine) -> int:
        """The forked writer: it waits for the run's word, then writes."""
        self._send.close()
        try:
            rows, n = self._recv.recv()
        except EOFError:
            return 0  # the run stopped before every range was read
        finally:
            self._recv.close()
        return _write(engine, self.root, rows, n)


@bulk
def _spelled(cols: fe.Columns) -> tuple[Ints, list[str]]:
    """A range's ids in order and their rows' stored text."""
    return index.texts(cols)


def _write(engine: Engine, root: Path, rows: Sequence[Spooled], n: int) -> int:
    """The emptied index: its rows from the spooled ranges, then its ``n`` keys."""
    with write_transaction(engine) as conn:
        shrink(conn)  # a pooled connection may still have the feature pass's cache size
        clear(conn, ENTITY)
        for path, at in rows:
            with open(path, "rb") as f:
                f.seek(at)
                ids, marks, texts = pickle.load(f)
            page = [
                (ENTITY, i, s, m)
                for i, s, m in zip(ids.tolist(), texts, marks.tolist(), strict=True)
            ]
            del texts
            put_rows(conn, F, _COLUMNS, SAVE_FEATURE, page, True)
        got = add_fresh(conn, ENTITY, _keys(root, n))
    release()
    return got


def _keys(root: Path, n: int) -> Iterator[Digests]:
    """The spooled keys (in index order) a piece at a time."""
    for lo in range(0, n, KEYS_AT_ONCE):
        k = min(KEYS_AT_ONCE, n - lo)
        d = np.fromfile(root / "digests", np.int64, k, offset=8 * lo)
        r = np.fromfile(root / "records", np.int64, k, offset=8 * lo)
        yield d, r
