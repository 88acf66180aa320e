"""An empty index written by a lean process from files the feature pass fills as it goes.

A first run (or the first after a migration that emptied the keys) writes a million rows'
features and fourteen million keys. A writer forked once every range was read shared the
run's heap: every page the run wrote afterwards stayed behind in the writer as a private
copy, and every value the writer read was copied too (a reference count is a write), so it
held 0.9–1.3 GB beside the run's scoring (2.4–2.7 GB together).

Here the process that reads a range appends it to a file of its own (``put``): the rows as
indexes into that process's value tables (a ``Memo``'s, which only grow) and the values new
since its last range, pickled, which costs the feature pass next to nothing (spelling the
rows' JSON there cost 5 CPU-s at a million people, on cores both busy). A process forked
as the run began, before its heap grew, writes the rows into the emptied index once every
range is read, each value spelled once, while the run computes the keys; then the keys,
which the run puts in two files as it made them, in sixteen parts by their top bits, and
the writer sorts a part at a time (``write``): one transaction, a range of rows or a part
of keys at a time. Without a second process the run writes them itself, the same way. The
files have no name and go with the run (``close``).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from sqlalchemy import Engine

from warehouse.db import write_transaction
from warehouse.identity.apart import run_apart
from warehouse.identity.blocking import ENTITY, clear, put_features, shrink
from warehouse.identity.linkage import features as fe
from warehouse.identity.linkage import index
from warehouse.identity.linkage.frame import bulk, release
from warehouse.identity.linkage.key_table import Digests, add_fresh

Ints = np.ndarray[Any, np.dtype[np.int64]]
Spooled = tuple[str, int]  # (which file, offset) of one range's rows
_FILES = ("run", "far", "digests", "records")
WHAT = "writing the identity index"


class Spool:
    """Files of an empty index's rows and keys, and the process that will write them.

    The files have no name (``tempfile.TemporaryFile``): a run that is killed leaves none
    of its people's data on disk. They are opened before any fork, so the run's processes
    share them: the run's ranges go in one, the other reader's (the companies' process's
    far ranges) in another, the keys in two more."""

    def __init__(self, engine: Engine, fork: bool) -> None:
        # Closed by ``close``, which the run calls whatever happens.
        where = _beside(engine)
        opened = {name: tempfile.TemporaryFile(dir=where) for name in _FILES}  # noqa: SIM115
        self._files: dict[str, IO[bytes]] = dict(opened)
        self._run = os.getpid()
        self._reader: int | None = None  # the one other process that spools ranges
        self._tables: dict[int, tuple[list[Any], list[int], int]] = {}  # id → (values, at, n)
        self._recv, self._send = mp.get_context("fork").Pipe(duplex=False)
        self._wait: Callable[[], int] | None = None
        if fork:
            self._wait = run_apart(WHAT, engine, self._lean, True)
        else:
            self._send.close()
        self._recv.close()

    def put(self, cols: fe.Columns, fps: Ints) -> Spooled:
        """Append a range's rows (``fps``: their fingerprints) to this process's file: the
        indexes of their values, and the values not spooled before."""
        which = self._mine()
        f = self._files[which]
        order = np.argsort(cols.ids, kind="stable")
        page = index.page_of(cols, order)
        tables = {name: self._log(f, cols.source(name)[1]) for name in fe.FIELDS}
        tables.update({name: self._log(f, cols.exploded(name)[2]) for name in fe.MULTI_FIELDS})
        at = f.seek(0, os.SEEK_END)
        pickle.dump((page, fps[order], tables), f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        return which, at

    def _mine(self) -> str:
        """The file this process spools its ranges to."""
        if os.getpid() == self._run:
            return "run"
        if self._reader not in (None, os.getpid()):
            raise RuntimeError("a third process spooled ranges of one identity run")
        self._reader = os.getpid()
        return "far"

    def _log(self, f: IO[bytes], values: list[Any]) -> list[int]:
        """Where a value table of this process (a ``Memo``'s, which only grows) is spooled,
        the values added since the last range appended (pickled: the writer spells them,
        which cost the range's process 3 µs a row)."""
        held = self._tables.get(id(values))
        if held is None or held[0] is not values:
            held = (values, [], 0)
        _, chunks, done = held
        if done < len(values):
            chunks = [*chunks, f.seek(0, os.SEEK_END)]
            pickle.dump(values[done:], f, protocol=pickle.HIGHEST_PROTOCOL)
        self._tables[id(values)] = (values, chunks, len(values))
        return chunks

    def write(self, engine: Engine, cols: fe.Columns, rows: Sequence[Spooled]) -> Callable[[], int]:
        """Have the index written: ``rows`` (every row of ``cols``, spooled, in id order)
        at once, then the keys of ``cols``, computed here meanwhile. Returns ``wait``, which
        gives the number of keys once committed (or raises what stopped the writer). The
        caller writes nothing until it has waited: the writer holds the write lock."""
        if self._wait is None:
            parts = self._put_keys(cols)
            return run_apart(
                WHAT, engine, lambda e: _write(e, self._files, rows, lambda: parts), False
            )
        try:
            with contextlib.suppress(OSError):  # a writer that stopped: ``wait`` says why
                self._send.send(list(rows))  # it writes them while the keys are computed here
                self._send.send(self._put_keys(cols))
        finally:
            self._send.close()  # without the keys' count it rolls back
        return self._wait

    def _put_keys(self, cols: fe.Columns) -> list[int]:
        """The keys of ``cols`` into the spool's two files, as made (not sorted), a part
        per top four bits of the digest; returns how many each part holds. The writer sorts
        each part as it writes it: sorted here, 14 M keys took 2.8 s and 0.3 GB more at
        the run's busiest."""
        d, r, _ = _made_keys(cols)
        part = d.view(np.int8)[7 :: d.itemsize] >> 4 if d.shape[0] else np.zeros(0, np.int8)
        counts = []
        for p in range(-8, 8):  # signed: the parts in index order
            at = part == p
            for name, a in (("digests", d), ("records", r)):
                self._files[name].write(np.ascontiguousarray(a[at], "<i8").data)
            counts.append(int(np.count_nonzero(at)))
        for name in ("digests", "records"):
            self._files[name].flush()
        return counts

    def close(self) -> None:
        """Let the writer go (handed nothing, or not all, it writes nothing), wait for it
        and close the files. Call it once the run no longer needs them, also when it
        failed."""
        self._send.close()
        if self._wait is not None:
            with contextlib.suppress(Exception):  # the run has waited already, or failed
                self._wait()
        for f in self._files.values():
            f.close()

    def _lean(self, engine: Engine) -> int:
        """The forked writer: it waits for the run's word, then writes."""
        self._send.close()
        try:
            rows = self._recv.recv()
        except EOFError:
            self._recv.close()
            return 0  # the run stopped before every range was read: nothing is written
        try:
            return _write(engine, self._files, rows, self._recv.recv)
        finally:
            self._recv.close()


def _write(
    engine: Engine,
    files: dict[str, IO[bytes]],
    rows: Sequence[Spooled],
    keys: Callable[[], list[int]],
) -> int:
    """The emptied index: its rows from the spooled ranges, then its keys once ``keys``
    says how many each part holds (an error there, the run's end of file, rolls all back).
    Returns how many keys, each pair once."""
    tables: dict[tuple[str, int], tuple[int, index.Table]] = {}
    with write_transaction(engine) as conn:
        shrink(conn)  # a pooled connection may still have the feature pass's cache size
        clear(conn, ENTITY)
        for which, at in rows:
            f = files[which]
            f.seek(at)
            page, marks, chunks = pickle.load(f)
            held = {name: _table(f, which, pos, tables) for name, pos in chunks.items()}
            texts = _spelled(page, held)
            put_features(conn, page[0], texts, marks, True)
        tables.clear()
        got = add_fresh(conn, ENTITY, _spooled_keys(files, keys()))
    release()
    return got


@bulk
def _spelled(page: index.Page, tables: dict[str, index.Table]) -> list[str]:
    return index.spell(page, tables)


_EMPTY: index.Table = (b"", np.zeros(1, np.int64))


def _table(
    f: IO[bytes],
    which: str,
    chunks: list[int],
    held: dict[tuple[str, int], tuple[int, index.Table]],
) -> index.Table:
    """A spooled value table as far as ``chunks`` go, spelled (each value once): a later
    range's list of chunks goes on from an earlier one's, so only the new ones are read."""
    if not chunks:
        return _EMPTY
    n, (buf, starts) = held.get((which, chunks[0]), (0, _EMPTY))
    if n < len(chunks):
        bufs, parts, end = [buf], [starts], len(buf)
        for at in chunks[n:]:
            f.seek(at)
            more, where = index.table(pickle.load(f))
            parts.append(where[1:] + end)
            bufs.append(more)
            end += len(more)
        buf, starts = b"".join(bufs), np.concatenate(parts)
        held[(which, chunks[0])] = (len(chunks), (buf, starts))
    return buf, starts


def _spooled_keys(files: dict[str, IO[bytes]], parts: list[int]) -> Iterator[Digests]:
    """The spooled keys in index order: part by part (≈ 0.9 M keys at a million people),
    each read whole, sorted here and each pair kept once."""
    lo = 0
    for n in parts:
        d, r = _read(files["digests"], lo, n), _read(files["records"], lo, n)
        got = index.distinct(d, r, np.zeros(n, np.int8))
        del d, r
        yield got[0], got[1]
        lo += n


def _beside(engine: Engine) -> str | None:
    """Where the spool's files go: beside a SQLite database, on the disk that holds the
    data (about 0.5 GB at a million people; a temporary directory in memory, as some
    systems mount it, would charge them to the machine's memory); else the system's
    temporary directory (``TMPDIR``)."""
    db = engine.url.database or ""
    if engine.dialect.name == "sqlite" and db not in ("", ":memory:"):
        return str(Path(db).resolve().parent)
    return None


def _made_keys(cols: fe.Columns) -> index.Keys:
    return index.keys(cols, ordered=False)


def _read(f: IO[bytes], lo: int, k: int) -> Ints:
    f.seek(8 * lo)
    got = f.read(8 * k)
    if len(got) != 8 * k:
        raise RuntimeError("the identity index's spooled keys are short")
    return np.frombuffer(got, "<i8").astype(np.int64)
