"""Writing the people's blocking index: by difference over a stored one, in full into none.

Every run but the first finds an index in place, and most rows' features come out of a run
as they are stored: a run changes a few rows in a million. So a full run and an incremental
run both renew the index by difference: a row whose features are stored as they are keeps
them and its keys; a changed row gets its new features, keeps its unchanged keys and loses
its stale ones; a row that is gone loses both. A row's features are compared by their
fingerprint (``linkage.index.fingerprints``: one integer per row), which a full run
computes and compares range by range as it reads them, in whichever process reads the
range; what is left to write once every range is read is only what changed. Comparing in a
forked writer instead meant a second copy of most of the run's memory (1 GB at a million
people: the child's reads and writes land in pages it shares with the run).

An empty index (the first run, or after a migration that changed how keys are made deleted
them) is written in full, each table in its own key order, from the rows the ranges spooled
(``upkeep.spool``), by a process forked as the run began. A row's keys are a function of its
stored features alone (``linkage.index``), which is what lets a row with unchanged features
keep them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, or_, select

from warehouse.db import write_transaction
from warehouse.identity import learned
from warehouse.identity.blocking import (
    ENTITY,
    IN_CHUNK,
    RANGE,
    F,
    Stored,
    columns_where,
    drop_features,
    key_caps,
    load_features,
    neighbours,
    person_digests,
    prepare_columns,
    shrink,
    stored,
    stored_digests,
    stored_fingerprints,
    write_features,
)
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.linkage import company_parts, index
from warehouse.identity.linkage import features as fe
from warehouse.identity.linkage.company_parts import Parts
from warehouse.identity.linkage.key_table import (
    Digests,
    K,
    add_keys,
    difference,
    drop_keys,
    fold,
    note,
)
from warehouse.identity.linkage.memo import Memo
from warehouse.identity.upkeep.spool import Spool, Spooled
from warehouse.write.upsert import chunks

Ints = NDArray[np.int64]
_NONE = np.zeros(0, np.int64)


def indexed(conn: Connection) -> bool:
    """Whether the people have an index to renew: stored features and keys. A migration that
    changes how keys are made deletes the keys, and the next full run writes them all."""
    return all(
        conn.execute(select(tb.c.entity).where(tb.c.entity == ENTITY).limit(1)).first() is not None
        for tb in (F, K)
    )


@dataclass
class Found:
    """Rows' features as a run read them, with what changed against the stored index:
    ``fps`` each row's fingerprint, ``moved`` the ids of rows whose features are not stored
    as they are now, ``gone`` the ids of stored rows that are no longer live, ``names`` the
    company names read (none stored yet) with their parts."""

    cols: fe.Columns
    keys: list[str]  # each row's record key
    fps: Ints
    moved: Ints
    gone: Ints
    names: list[tuple[str, Parts]] = field(default_factory=list)
    spooled: list[Spooled] = field(default_factory=list)  # where an empty index's rows wait

    @classmethod
    def concat(cls, parts: Sequence[Found]) -> Found:
        """Ranges read one after the other, as one."""

        def joined(name: str) -> Ints:
            return np.concatenate([_NONE, *(getattr(f, name) for f in parts)])

        cols = fe.Columns.concat([f.cols for f in parts])
        keys = [k for f in parts for k in f.keys]
        names = [n for f in parts for n in f.names]
        spooled = [s for f in parts for s in f.spooled]
        return cls(cols, keys, joined("fps"), joined("moved"), joined("gone"), names, spooled)


def prepare_range(
    conn: Connection,
    settings: MatchSettings,
    lo: int,
    hi: int,
    memo: Memo,
    spool: Spool | None,
    hashed: index.Hashed,
) -> Found:
    """A full run's rows with ``lo <= id < hi``, compared with the stored index; with a
    ``spool`` (the index is empty) every row is new and its text goes to the spool. Give a
    process's ranges one ``memo`` and one ``hashed``: each distinct value is then computed
    and hashed once."""
    cols, keys = prepare_columns(conn, settings, lo, hi, memo)
    fps = index.fingerprints(cols, hashed)
    if spool is not None:
        return Found(cols, keys, fps, cols.ids, _NONE, memo.take_read(), [spool.put(cols, fps)])
    was = stored_fingerprints(conn, ENTITY, F.c.record_id >= lo, F.c.record_id < hi)
    return Found(cols, keys, fps, *_changes(cols, fps, was), memo.take_read())


def _changes(cols: fe.Columns, fps: Ints, was: Stored) -> tuple[Ints, Ints]:
    """(ids of the rows of ``cols`` not stored as they are, ids of the stored rows ``was``
    not among them)."""
    was_ids, was_fp, has = was
    same = np.zeros(len(cols), bool)
    if was_ids.shape[0]:
        at = np.minimum(np.searchsorted(was_ids, cols.ids), was_ids.shape[0] - 1)
        same = (was_ids[at] == cols.ids) & has[at] & (was_fp[at] == fps)
    return np.sort(cols.ids[~same]), np.setdiff1d(was_ids, cols.ids)


def store_index(
    engine: Engine, found: Found, bounds: tuple[int, int] | None, spool: Spool | None
) -> Callable[[], int]:
    """Bring a full run's index to ``found`` (every live row, as read); returns ``wait``,
    which gives the number of keys written once they are committed (or raises what stopped
    the writer). The caller writes nothing else before calling it. ``bounds``: the ids the
    run's ranges covered, renewing a stored index; else the index was empty and ``spool``
    holds the rows and their keys, which are written from there.

    Renewing, only what changed is written, here and now."""
    if found.names:
        with write_transaction(engine) as conn:
            company_parts.store(conn, found.names)
        found.names = []
    if bounds is None:
        if spool is None:
            raise ValueError("an empty index is written from a spool")
        return spool.write(engine, found.spooled)
    cols, fps = found.cols, found.fps
    with write_transaction(engine) as conn:
        shrink(conn)
        fold(conn, ENTITY)  # written straight into identity_key from here on
        outside = or_(F.c.record_id < bounds[0], F.c.record_id >= bounds[1])
        gone = np.union1d(found.gone, stored_fingerprints(conn, ENTITY, outside)[0])
        added = _write_changes(conn, cols, fps, found.moved, gone)
    return lambda: added


@dataclass
class Change:
    """An incremental run's rows as read, and what renewing the index for them writes:
    ``moved`` the ids of live rows whose features changed, ``gone`` the ids of stored rows
    no longer live, ``stale`` the (digest, record) keys to drop and ``fresh`` the ones to
    add. Nothing is written yet, so the index as stored and this change together say what
    it will be: a second process can find the rows' neighbours in the stored index while
    this one writes the change."""

    cols: fe.Columns
    fps: Ints
    moved: Ints
    gone: Ints
    stale: Digests
    fresh: Digests
    names: list[tuple[str, Parts]] = field(default_factory=list)  # read, none stored yet
    seconds: float = 0.0  # preparing it took

    def shift(self, keys: Ints) -> tuple[Ints, Ints]:
        """Per key of ``keys`` (ascending): (rows leaving its block, rows joining it)."""
        return _count(np.sort(self.stale[0]), keys), _count(np.sort(self.fresh[0]), keys)


def _count(held: Ints, keys: Ints) -> Ints:
    """How many times each of ``keys`` is in ``held`` (ascending)."""
    return np.searchsorted(held, keys, "right") - np.searchsorted(held, keys, "left")


def read_change(conn: Connection, settings: MatchSettings, record_ids: Sequence[int]) -> Change:
    """Recompute the given rows' features and what renewing their index takes (deleted rows
    lose theirs), writing nothing: the company names read are kept for ``write_change``.

    The rows are read in chunks with one ``Memo``, so a company or name several changed
    rows share is read once. Most updates (a title, a deal stage) change nothing the
    resolver compares, and then nothing is to be written."""
    t0 = time.monotonic()
    ids = sorted(set(record_ids))
    memo = Memo(settings)
    try:
        parts = [columns_where(conn, _among(p), settings, memo)[0] for p in chunks(ids, IN_CHUNK)]
    finally:
        memo.close()
    names = memo.take_read()
    cols = fe.Columns.concat(parts)
    fps = index.fingerprints(cols)
    # Chunks of ascending ids, each read back in id order: joined, still in id order.
    got = [stored_fingerprints(conn, ENTITY, F.c.record_id.in_(p)) for p in chunks(ids, IN_CHUNK)]
    got.append((_NONE, _NONE, np.zeros(0, bool)))  # none asked: nothing stored either
    was = tuple(np.concatenate([g[k] for g in got]) for k in range(3))
    moved, gone = _changes(cols, fps, (was[0], was[1], was[2]))
    change = _plan(conn, cols, fps, moved, gone)
    change.names, change.seconds = names, round(time.monotonic() - t0, 2)
    return change


def around(
    conn: Connection, settings: MatchSettings, change: Change
) -> tuple[fe.Columns, int, learned.Stored]:
    """What scoring a change (not written yet) reads: its live rows (their features just
    prepared, not read back) with every row sharing a block with them as the index will be
    once it is written, in id order; how many blocks were skipped as too large; the
    weights the last full run learned.

    Reads only the index as stored, so it can run in a second process while this one
    writes the change: the run holds the writer (and the lease), so what it writes cannot
    be seen before it commits, and it commits only once these reads are done."""
    cols = change.cols
    # A key more rows share than its rule's block may hold (a common name, an office) is
    # skipped, as blocking skips it: the neighbourhood follows the change, not the size of
    # the store.
    d, _, tags = index.keys(cols)
    keys, first = np.unique(d, return_index=True)
    caps = np.asarray(key_caps(settings), np.int64)[tags[first]]
    near, skipped = neighbours(conn, ENTITY, keys, caps, *change.shift(keys))
    others = near.difference(cols.ids.tolist(), change.gone.tolist())
    every = fe.Columns.concat([cols, load_features(conn, others)])
    every = every.take(np.argsort(every.ids, kind="stable"))  # id order, as stored
    return every, skipped, learned.load_model(conn)


def write_change(conn: Connection, change: Change, delta: bool = True) -> int:
    """Write what ``read_change`` found: the company names read, stale keys dropped, the
    rows that are gone deleted, the moved rows' features written over theirs, their new
    keys added (returns how many). ``delta``: the keys are noted in ``identity_key_delta`` (an incremental run),
    else written into ``identity_key`` (a full run, which folded the delta in first)."""
    company_parts.store(conn, change.names)
    if delta:
        note(conn, ENTITY, change.stale, change.fresh)
    else:
        drop_keys(conn, ENTITY, change.stale)
    drop_features(conn, ENTITY, change.gone.tolist())
    for rows, _ in _moved_ranges(change.cols, change.moved):
        write_features(conn, change.cols.take(rows).compact(), change.fps[rows])
    if not delta:
        return add_keys(conn, ENTITY, change.fresh) if change.fresh[0].shape[0] else 0
    return int(change.fresh[0].shape[0])


def _moved_ranges(cols: fe.Columns, moved: Ints) -> Iterator[tuple[Ints, list[int]]]:
    """The rows of ``cols`` whose ids are ``moved``, a range at a time: (rows, their ids)."""
    order = np.argsort(cols.ids, kind="stable")
    by_id = cols.ids[order]
    for lo in range(0, moved.shape[0], RANGE):
        part = moved[lo : lo + RANGE]
        yield order[np.searchsorted(by_id, part)], part.tolist()


def _write_changes(conn: Connection, cols: fe.Columns, fps: Ints, moved: Ints, gone: Ints) -> int:
    """A full run's changed rows written over a stored index (``moved``: ids of rows of
    ``cols`` whose features changed; ``gone``: stored rows no longer live), a range at a
    time so that a run changing most rows never holds all their keys; returns how many
    keys were added."""
    added = 0
    for lo in range(0, moved.shape[0], RANGE):
        added += write_change(conn, _plan(conn, cols, fps, moved[lo : lo + RANGE], _NONE), False)
    return added + write_change(conn, _plan(conn, cols, fps, _NONE, gone), False)


def _plan(conn: Connection, cols: fe.Columns, fps: Ints, moved: Ints, gone: Ints) -> Change:
    """The change that brings the stored index to ``cols`` for the rows ``moved`` and
    ``gone``: their keys as stored (computed again from their stored features) against
    their keys now."""
    stale, fresh = [(_NONE, _NONE)], [(_NONE, _NONE)]
    for rows, ids_of in _moved_ranges(cols, moved):
        s, f = _difference(conn, cols.take(rows).compact(), ids_of)
        stale.append(s)
        fresh.append(f)
    if gone.shape[0]:
        stale.append(_difference(conn, cols.take(_NONE).compact(), gone.tolist())[0])
    return Change(cols, fps, moved, gone, _joined(stale), _joined(fresh))


def _joined(parts: Sequence[Digests]) -> Digests:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _difference(conn: Connection, rows: fe.Columns, ids: Sequence[int]) -> tuple[Digests, Digests]:
    """Keys to drop and keys to add for ``ids`` (the rows ``rows``, with their features as
    they are now, and rows that are gone): their keys as stored against their keys now."""
    old = stored(conn, ENTITY, ids)
    was = stored_digests(sorted(old.items())) if old else (_NONE, _NONE)
    return difference(was, person_digests(rows) if len(rows) else (_NONE, _NONE))


def _among(ids: Sequence[int]) -> Callable[[Any], Any]:
    return lambda column: column.in_(ids)
