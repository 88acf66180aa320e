"""Writing the people's blocking index: by difference over a stored one, in full into none.

Every run but the first finds an index in place, and most rows' features come out of a run
as they are stored: a run changes a few rows in a million. So a full run and an incremental
run both renew the index by difference: a row whose features are stored as they are keeps
them and its keys; a changed row gets its new features, keeps its unchanged keys and loses
its stale ones; a row that is gone loses both. A full run used to empty the index (14 M
deletes at a million people) and write every feature and key again: two thirds of its
writing, and the keys' computation on the run's critical path.

An empty index (the first run, or after a migration that changed how keys are made deleted
them) is written in full, each table in its own key order, from a second process on a large
run while this one scores. A row's keys are a function of its stored features alone
(``linkage.index``), which is what lets a row with unchanged features keep them.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, delete, select

from warehouse.db import write_transaction
from warehouse.identity.apart import forkable, large, room, run_apart
from warehouse.identity.blocking import (
    DROP_KEY,
    ENTITY,
    IN_CHUNK,
    RANGE,
    SAVE_FEATURE,
    Digests,
    F,
    K,
    add_keys,
    clear,
    columns_where,
    person_digests,
    shrink,
    stored,
    stored_digests,
    stored_where,
    write_features,
)
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.linkage import features as fe
from warehouse.identity.linkage import index
from warehouse.identity.linkage.frame import release
from warehouse.identity.linkage.memo import Memo
from warehouse.write.bulk import many, put_rows
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


def store_index(engine: Engine, cols: fe.Columns) -> Callable[[], int]:
    """Bring a full run's index to ``cols`` (every live row); returns ``wait``, which gives
    the number of keys written once they are committed (or raises what stopped the writer).
    The caller writes nothing else before calling it.

    A large run on two cores does this from a forked process on its own connection while
    this one scores. Renewing, the writer finds what changed itself. Writing an empty index
    in full, the writer starts with the features while this process computes the keys and
    hands them over through a pipe, so neither waits for the other."""
    what = "writing the identity index"
    apart = large(len(cols)) and room() and forkable(engine)
    with engine.connect() as conn:
        renew = indexed(conn)
    if renew:
        return run_apart(what, engine, lambda e: _renew_all(e, cols), apart)
    if not apart:
        return run_apart(what, engine, lambda e: _write_index(e, cols), False)
    recv, send = mp.get_context("fork").Pipe(duplex=False)

    def writer(e: Engine) -> int:
        send.close()  # this end is the parent's: the writer sees its end of file if it stops
        return _write_index(e, cols, lambda: _received(recv))

    wait = run_apart(what, engine, writer, True)
    recv.close()
    try:
        d, r = person_digests(cols)
    except BaseException:
        send.close()
        with contextlib.suppress(Exception):
            wait()
        raise

    def hand_over() -> None:
        try:
            send.send_bytes(np.ascontiguousarray(d).data)
            send.send_bytes(np.ascontiguousarray(r).data)
        except OSError:
            pass  # the writer has stopped: ``wait`` says why
        finally:
            send.close()

    threading.Thread(target=hand_over, name="identity-keys", daemon=True).start()
    return wait


def _received(recv: Any) -> Digests:
    d = np.frombuffer(recv.recv_bytes(), np.int64)
    r = np.frombuffer(recv.recv_bytes(), np.int64)
    recv.close()
    return d, r


def _write_index(
    engine: Engine, cols: fe.Columns, keys: Callable[[], Digests] | None = None
) -> int:
    """The whole index into an empty one (keys a migration left without features are
    emptied too). ``keys``: where the keys come from when another process computes them.
    Computed here, they come first: their sort's working memory is then the only thing
    beside the columns, not the features' text as well. SQLite keeps its default page
    cache: both tables are filled in their own key order (appends)."""
    take = keys
    if take is None:
        held = [person_digests(cols)]
        take = held.pop  # handed over, not kept here once written
    with write_transaction(engine) as conn:
        shrink(conn)  # a pooled connection may still have the feature pass's cache size
        clear(conn, ENTITY)
        write_features(conn, cols, fresh=True)
        n = add_keys(conn, ENTITY, take(), fresh=True)
    release()  # the features' text and the keys, before the run scores
    return n


def _renew_all(engine: Engine, cols: fe.Columns) -> int:
    """Renew the stored index to ``cols``, a range of ids at a time: each range's stored
    features are read in one scan of the primary key and compared as text."""
    order = np.argsort(cols.ids, kind="stable")
    by_id = cols.ids[order]

    def pick(moved: Ints) -> fe.Columns:
        return cols.take(order[np.searchsorted(by_id, moved)]).compact()

    added = 0
    with write_transaction(engine) as conn:
        shrink(conn)
        after: int | None = None
        for rids, data in index.dumps(cols, RANGE):
            upto = int(rids[-1])
            old = _stored_between(conn, after, upto)
            added += _replace(conn, dict(zip(rids.tolist(), data, strict=True)), old, pick)
            after = upto
        added += _replace(conn, {}, _stored_between(conn, after, None), pick)
    release()
    return added


def _stored_between(conn: Connection, after: int | None, upto: int | None) -> dict[int, str]:
    """Stored features of the rows with ``after < id <= upto`` (either end open if None)."""
    conds = [] if after is None else [F.c.record_id > after]
    if upto is not None:
        conds.append(F.c.record_id <= upto)
    return stored_where(conn, ENTITY, *conds)


def prepare_ids(
    conn: Connection, settings: MatchSettings, record_ids: Sequence[int]
) -> tuple[fe.Columns, int]:
    """Recompute the given rows' features and renew their index (deleted rows lose theirs);
    returns the live rows' features and how many keys were added.

    The rows are read in chunks with one ``Memo``, so a company or name several changed
    rows share is read once. Most updates (a title, a deal stage) change nothing the
    resolver compares, and then nothing is written."""
    ids = sorted(set(record_ids))
    memo = Memo(settings)
    try:
        parts = [columns_where(conn, _among(p), settings, memo)[0] for p in chunks(ids, IN_CHUNK)]
    finally:
        memo.close()
    cols = fe.Columns.concat(parts)
    old: dict[int, str] = {}
    for part in chunks(ids, IN_CHUNK):
        old.update(stored(conn, ENTITY, part))
    new = {
        rid: text
        for rids, data in index.dumps(cols, RANGE)
        for rid, text in zip(rids.tolist(), data, strict=True)
    }
    return cols, _replace(
        conn, new, old, lambda moved: cols.take(np.flatnonzero(np.isin(cols.ids, moved)))
    )


def _replace(
    conn: Connection,
    new: dict[int, str],
    old: dict[int, str],
    pick: Callable[[Ints], fe.Columns],
) -> int:
    """Bring the stored rows ``old`` (record id → stored features) to ``new`` (the same
    rows' features now; a row missing is gone). ``pick`` gives the features of the rows
    whose text changed. Returns how many keys were added."""
    moved = sorted(rid for rid, text in new.items() if old.get(rid) != text)
    gone = sorted(old.keys() - new.keys())
    if not moved and not gone:
        return 0
    was_d, was_r = stored_digests([(rid, old[rid]) for rid in sorted({*moved, *gone} & old.keys())])
    now_d, now_r = person_digests(pick(np.asarray(moved, np.int64))) if moved else (_NONE, _NONE)
    was, now = _pairs(was_d, was_r), _pairs(now_d, now_r)
    stale, fresh = ~np.isin(was, now), ~np.isin(now, was)
    many(conn, DROP_KEY, list(zip(repeat(ENTITY), was_d[stale].tolist(), was_r[stale].tolist())))
    for part in chunks(gone, IN_CHUNK):
        conn.execute(delete(F).where(F.c.entity == ENTITY, F.c.record_id.in_(part)))
    rows = [(ENTITY, rid, new[rid]) for rid in moved]
    put_rows(conn, F, ("entity", "record_id", "data"), SAVE_FEATURE, rows, False)
    return add_keys(conn, ENTITY, (now_d[fresh], now_r[fresh])) if fresh.any() else 0


def _pairs(d: Ints, r: Ints) -> Any:
    """(digest, record) pairs as single 16-byte values, for set operations in numpy."""
    return np.ascontiguousarray(np.stack([d, r], axis=1)).view(np.dtype((np.void, 16))).ravel()


def _among(ids: Sequence[int]) -> Callable[[Any], Any]:
    return lambda column: column.in_(ids)
