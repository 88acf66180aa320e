"""An empty index written by a lean process from files the feature pass fills as it goes.

A first run (or the first after a migration that emptied the keys) writes a million rows'
features and fourteen million keys. A writer forked once every range was read shared the
run's heap: every page the run wrote afterwards stayed behind in the writer as a private
copy, and every value the writer read was copied too (a reference count is a write), so it
held 0.9–1.3 GB beside the run's scoring (2.4–2.7 GB together).

Here the process that reads a range appends it to a file of its own (``put``): the rows as
indexes into that process's value tables (a ``Memo``'s, which only grow) and the values new
since its last range, pickled (spelling the rows' JSON there cost 5 CPU-s at a million
people, on cores both busy), then the range's keys, as made, in parts by their top
bits. The keys are made by the ranges, each value hashed once per process
(``index.Keyed``): made by the run once every range was read, they held it 6 s between
its ranges and its scoring, with the writer waiting for them. A process forked as the run
began, before its heap grew, writes the rows into the emptied index once every range is
read, each value spelled once, then the keys, a part at a time, gathered from every range
and sorted (``write``): one transaction. Without a second process the run writes them
itself, the same way. The files have no name and go with the run (``close``).
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
Spooled = tuple[str, int]  # (which file, offset) of one range's rows and keys
_FILES = ("run", "far")
# The keys' parts, by the top six bits of their digest: a part (≈ 0.2 M keys at a million
# people) is sorted and written beside the run's scoring, so its copies are kept small.
_BITS = 6
_PARTS = 1 << _BITS
WHAT = "writing the identity index"


class Spool:
    """Files of an empty index's rows and keys, and the process that will write them.

    The files have no name (``tempfile.TemporaryFile``): a run that is killed leaves none
    of its people's data on disk. They are opened before any fork, so the run's processes
    share them: the run's ranges go in one, the other reader's (the companies' process's
    far ranges) in the other."""

    def __init__(self, engine: Engine, fork: bool) -> None:
        # Closed by ``close``, which the run calls whatever happens.
        where = _beside(engine)
        opened = {name: tempfile.TemporaryFile(dir=where) for name in _FILES}  # noqa: SIM115
        self._files: dict[str, IO[bytes]] = dict(opened)
        self._run = os.getpid()
        self._reader: int | None = None  # the one other process that spools ranges
        self._tables: dict[int, tuple[list[Any], list[int], int]] = {}  # id → (values, at, n)
        self._keyed = index.Keyed()  # each process's own once it forks
        self._recv, self._send = mp.get_context("fork").Pipe(duplex=False)
        self._wait: Callable[[], int] | None = None
        if fork:
            self._wait = run_apart(WHAT, engine, self._lean, True)
        else:
            self._send.close()
        self._recv.close()

    def put(self, cols: fe.Columns, fps: Ints) -> Spooled:
        """Append a range's rows (``fps``: their fingerprints) to this process's file: the
        indexes of their values, and the values not spooled before; then the range's keys,
        digests and records, each in parts by top bits (how many each part holds is
        pickled with the rows)."""
        which = self._mine()
        f = self._files[which]
        order = np.argsort(cols.ids, kind="stable")
        page = index.page_of(cols, order)
        tables = {name: self._log(f, cols.source(name)[1]) for name in fe.FIELDS}
        tables.update({name: self._log(f, cols.exploded(name)[2]) for name in fe.MULTI_FIELDS})
        d, r, _ = index.keys(cols, ordered=False, keyed=self._keyed)
        part = (d.view(np.int8)[7 :: d.itemsize] >> (8 - _BITS)).astype(np.int64) + _PARTS // 2
        by = np.argsort(part, kind="stable")  # signed top bits: the parts in index order
        counts = np.bincount(part, minlength=_PARTS).tolist()
        at = f.seek(0, os.SEEK_END)
        pickle.dump((page, fps[order], tables, counts), f, protocol=pickle.HIGHEST_PROTOCOL)
        for a in (d, r):
            f.write(np.ascontiguousarray(a[by], "<i8").data)
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

    def finished(self) -> None:
        """This process has spooled all its ranges: what it kept of its value tables goes
        (their key hashes, 0.1 GB at a million people, and the tables themselves, which a
        run joins into new ones: both held through scoring otherwise)."""
        self._keyed = index.Keyed()
        self._tables = {}

    def write(self, engine: Engine, rows: Sequence[Spooled]) -> Callable[[], int]:
        """Have the index written from ``rows`` (every range, spooled, in id order).
        Returns ``wait``, which gives the number of keys once committed (or raises what
        stopped the writer). The caller writes nothing until it has waited: the writer
        holds the write lock."""
        if self._wait is None:
            return run_apart(WHAT, engine, lambda e: _write(e, self._files, rows), False)
        try:
            with contextlib.suppress(OSError):  # a writer that stopped: ``wait`` says why
                self._send.send(list(rows))
        finally:
            self._send.close()
        return self._wait

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
        self._recv.close()
        return _write(engine, self._files, rows)


# Where a range's keys are spooled: (which file, offset, how many each part holds).
KeysAt = tuple[str, int, list[int]]


def _write(engine: Engine, files: dict[str, IO[bytes]], rows: Sequence[Spooled]) -> int:
    """The emptied index: its rows from the spooled ranges, then its keys, a part at a
    time from every range. Returns how many keys, each pair once."""
    tables: dict[tuple[str, int], tuple[int, index.Table]] = {}
    keyed: list[KeysAt] = []
    # The run checkpoints what this commits, in a thread, while it saves its evidence: here
    # the run waited 1.7–1.9 s for it at a million people.
    with write_transaction(engine, checkpoint=False) as conn:
        shrink(conn)  # a pooled connection may still have the feature pass's cache size
        clear(conn, ENTITY)
        for which, at in rows:
            f = files[which]
            f.seek(at)
            page, marks, chunks, counts = pickle.load(f)
            keyed.append((which, f.tell(), counts))  # the keys follow the rows
            held = {name: _table(f, which, pos, tables) for name, pos in chunks.items()}
            texts = _spelled(page, held)
            put_features(conn, page[0], texts, marks, True)
        tables.clear()
        release()  # the values' spelling, beside the run's scoring otherwise
        got = add_fresh(conn, ENTITY, _spooled_keys(files, keyed))
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


def _spooled_keys(files: dict[str, IO[bytes]], keyed: Sequence[KeysAt]) -> Iterator[Digests]:
    """The spooled keys in index order: part by part (≈ 0.2 M keys at a million people),
    gathered from every range, sorted here and each pair kept once."""
    for p in range(_PARTS):
        ds: list[Ints] = []
        rs: list[Ints] = []
        for which, at, counts in keyed:
            n, lo = sum(counts), sum(counts[:p])
            ds.append(_read(files[which], at + 8 * lo, counts[p]))
            rs.append(_read(files[which], at + 8 * (n + lo), counts[p]))
        d = np.concatenate(ds) if ds else np.zeros(0, np.int64)
        r = np.concatenate(rs) if rs else np.zeros(0, np.int64)
        del ds, rs
        got = index.distinct(d, r, np.zeros(d.shape[0], np.int8))
        del d, r
        yield got[0], got[1]


def _beside(engine: Engine) -> str | None:
    """Where the spool's files go: beside a SQLite database, on the disk that holds the
    data (about 0.5 GB at a million people; a temporary directory in memory, as some
    systems mount it, would charge them to the machine's memory); else the system's
    temporary directory (``TMPDIR``)."""
    db = engine.url.database or ""
    if engine.dialect.name == "sqlite" and db not in ("", ":memory:"):
        return str(Path(db).resolve().parent)
    return None


def _read(f: IO[bytes], at: int, k: int) -> Ints:
    f.seek(at)
    got = f.read(8 * k)
    if len(got) != 8 * k:
        raise RuntimeError("the identity index's spooled keys are short")
    return np.frombuffer(got, "<i8").astype(np.int64)
