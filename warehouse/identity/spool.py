"""An empty index written by a lean process from files the feature pass fills as it goes.

A first run (or the first after a migration that emptied the keys) writes a million rows'
features and fourteen million keys. A writer forked once every range was read shared the
run's heap: every page the run wrote afterwards stayed behind in the writer as a private
copy, and every value the writer read was copied too (a reference count is a write), so it
held 0.9–1.3 GB beside the run's scoring (2.4–2.7 GB together).

Here the process that reads a range spells the range's rows as they are stored and appends
them to a file of its own (``put``). A process forked as the run began, before its heap
grew, writes them into the emptied index once every range is read, while the run computes
the keys (a core that sat idle then), and the keys once the run has put them in two files
beside them (``write``): one transaction, a range of rows or a page of keys at a time.
Without a second process the run writes them itself, the same way. The files go with the
run (``close``).
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
        self._tables: dict[int, tuple[list[Any], str, int]] = {}  # id → (values, file, spooled)
        self._recv, self._send = mp.get_context("fork").Pipe(duplex=False)
        self._wait: Callable[[], int] | None = None
        if fork:
            self._wait = run_apart(WHAT, engine, self._lean, True)
        else:
            self._send.close()
        self._recv.close()

    def put(self, cols: fe.Columns, fps: Ints) -> Spooled:
        """Append a range's rows (``fps``: their fingerprints) to this process's file: the
        indexes of their values, and the JSON of each value not spooled before."""
        order = np.argsort(cols.ids, kind="stable")
        page = index.page_of(cols, order)
        tables = {name: self._log(cols.source(name)[1]) for name in fe.FIELDS}
        tables.update({name: self._log(cols.exploded(name)[2]) for name in fe.MULTI_FIELDS})
        path = self.root / f"rows-{os.getpid()}"
        with path.open("ab") as f:
            at = f.tell()
            pickle.dump((page, fps[order], tables), f, protocol=pickle.HIGHEST_PROTOCOL)
        return str(path), at

    def _log(self, values: list[Any]) -> str:
        """The file that holds a value table of this process (a ``Memo``'s, which only
        grows), the values added since the last range appended to it (pickled: the
        writer spells them, which cost the range's process 3 µs a row)."""
        held = self._tables.get(id(values))
        if held is None or held[0] is not values:
            held = (values, f"values-{os.getpid()}-{len(self._tables)}", 0)
            (self.root / held[1]).touch()  # a table may stay empty
        _, name, done = held
        if done < len(values):
            with (self.root / name).open("ab") as f:
                pickle.dump(values[done:], f, protocol=pickle.HIGHEST_PROTOCOL)
        self._tables[id(values)] = (values, name, len(values))
        return name

    def write(self, engine: Engine, cols: fe.Columns, rows: Sequence[Spooled]) -> Callable[[], int]:
        """Have the index written: ``rows`` (every row of ``cols``, spooled, in id order)
        at once, then the keys of ``cols``, computed here meanwhile. Returns ``wait``, which
        gives the number of keys once committed (or raises what stopped the writer). The
        caller writes nothing until it has waited: the writer holds the write lock."""
        if self._wait is None:
            n = self._keys(cols)
            return run_apart(WHAT, engine, lambda e: _write(e, self.root, rows, lambda: n), False)
        try:
            with contextlib.suppress(OSError):  # a writer that stopped: ``wait`` says why
                self._send.send(list(rows))  # it writes them while the keys are computed here
                self._send.send(self._keys(cols))
        finally:
            self._send.close()  # without the keys' count it rolls back
        return self._wait

    def _keys(self, cols: fe.Columns) -> int:
        """The keys of ``cols`` into the spool's two files; returns how many."""
        d, r = person_digests(cols)
        d.tofile(self.root / "digests")
        r.tofile(self.root / "records")
        return int(d.shape[0])

    def close(self) -> None:
        """Let the writer go (handed nothing, or not all, it writes nothing), wait for it
        and remove the files. Call it once the run no longer needs them, also when it
        failed."""
        self._send.close()
        if self._wait is not None:
            with contextlib.suppress(Exception):  # the run has waited already, or failed
                self._wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def _lean(self, engine: Engine) -> int:
        """The forked writer: it waits for the run's word, then writes."""
        self._send.close()
        try:
            rows = self._recv.recv()
        except EOFError:
            self._recv.close()
            return 0  # the run stopped before every range was read: nothing is written
        try:
            return _write(engine, self.root, rows, self._recv.recv)
        finally:
            self._recv.close()


def _write(engine: Engine, root: Path, rows: Sequence[Spooled], keys: Callable[[], int]) -> int:
    """The emptied index: its rows from the spooled ranges, then its keys once ``keys``
    says how many were spooled (an error there, the run's end of file, rolls all back)."""
    tables: dict[str, index.Table] = {}
    with write_transaction(engine) as conn:
        shrink(conn)  # a pooled connection may still have the feature pass's cache size
        clear(conn, ENTITY)
        for path, at in rows:
            with open(path, "rb") as f:
                f.seek(at)
                page, marks, names = pickle.load(f)
            texts = _spelled(page, {field: _table(root, n, tables) for field, n in names.items()})
            put_rows(conn, F, _COLUMNS, SAVE_FEATURE, _rows(page[0], texts, marks), True)
        tables.clear()
        got = add_fresh(conn, ENTITY, _keys(root, keys()))
    release()
    return got


@bulk
def _spelled(page: index.Page, tables: dict[str, index.Table]) -> list[str]:
    return index.spell(page, tables)


def _rows(ids: Ints, texts: list[str], marks: Ints) -> list[tuple[str, int, str, int]]:
    return [(ENTITY, i, s, m) for i, s, m in zip(ids.tolist(), texts, marks.tolist(), strict=True)]


def _table(root: Path, name: str, held: dict[str, index.Table]) -> index.Table:
    """A spooled value table, read whole the first time it is asked for."""
    if name not in held:
        bufs, starts, end = [], [np.zeros(1, np.int64)], 0
        with (root / name).open("rb") as f:
            while f.peek(1):
                buf, at = index.table(pickle.load(f))  # spelled here, once a value
                bufs.append(buf)
                starts.append(at[1:] + end)
                end += len(buf)
        held[name] = (b"".join(bufs), np.concatenate(starts))
    return held[name]


def _keys(root: Path, n: int) -> Iterator[Digests]:
    """The spooled keys (in index order) a piece at a time."""
    for lo in range(0, n, KEYS_AT_ONCE):
        k = min(KEYS_AT_ONCE, n - lo)
        d = np.fromfile(root / "digests", np.int64, k, offset=8 * lo)
        r = np.fromfile(root / "records", np.int64, k, offset=8 * lo)
        yield d, r
