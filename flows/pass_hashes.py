"""The payload hashes a stream's stored rows had when a pass began, and what the pass did
with each: the engine's side of ``connectors.page.KnownHashes``.

Loaded in one scan of the stream's lineage, kept as two sorted ``uint64`` halves of each
128-bit hash (~19 bytes a stored row with the flags, so 1M rows hold ~19 MB), looked up a
block of digests at a time with a vectorised binary search. Each entry is one distinct hash
and is, during the pass:

- open: nothing in this pass matched it yet;
- hit: a record with exactly these bytes was read (skipped as unchanged, or found
  unchanged by the engine): its row is present;
- used: the row that had this hash was rewritten from a changed record this pass.

Only a live entry whose lineage rows all carry it and none is deleted (``ok``, the rule of
``store.unchanged_ids``) can be found by a connector. At the end of a snapshot, vanished rows
are the stored rows neither hit nor seen by id; when every live entry is hit or used, nothing
vanished and the stored ids are not scanned at all.

Equal raw bytes always name the same row (the key column is part of them), so a hash match
needs no id. A shared 64-bit first half of two distinct hashes (expected n²/2^65 pairs)
only makes the second one unfindable: that row is decoded and compared by id, never skipped
wrongly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from flows.seen_ids import SeenIds
from warehouse.state import StreamKey
from warehouse.write.store import joined_hashes, live_hashes, stored_hashes, stream_hashes

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Before numpy's first import in a syncing process (its later imports are lazy): its BLAS
# starts a worker thread per core that spins after the import, ~0.05 CPU s a pass (0.09
# -> 0.045 s for the import alone, 2 cores), and nothing here or in the warehouse does
# linear algebra. An operator's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

OPEN, HIT, USED = 0, 1, 2
_HASH_HEX = 32


class PassHashes:
    """Stored hashes of one stream at the start of a pass, with per-entry state."""

    def __init__(
        self,
        joined: Callable[[], Iterable[tuple[str, int, bool]]],
        rows: Callable[[], Iterable[Sequence[Any]]],
    ) -> None:
        """``joined()`` gives the stored hashes as (hex digits of ``n`` hashes joined, n,
        live) batches; ``rows()`` gives (hash, live) rows, read instead when a joined batch
        holds a hash this class cannot (not 32 hex digits). Both are called on first use,
        so a pass that reads nothing (an unchanged file) never scans."""
        self._source: (
            tuple[
                Callable[[], Iterable[tuple[str, int, bool]]], Callable[[], Iterable[Sequence[Any]]]
            ]
            | None
        ) = (joined, rows)
        self.scan = False
        """A stored hash this class cannot hold (not 32 hex digits): vanished rows must be
        found by scanning the stored ids."""

    def _ensure(self) -> None:
        if self._source is not None:
            (joined, rows), self._source = self._source, None
            if not self._build(joined()):
                self._build_rows(rows())

    def _build(self, batches: Iterable[tuple[str, int, bool]]) -> bool:
        """From joined batches; False (nothing built) at the first hash that is not one."""
        import numpy as np

        highs: list[npt.NDArray[np.uint64]] = []
        lows: list[npt.NDArray[np.uint64]] = []
        lives: list[npt.NDArray[np.bool_]] = []
        for hexes, n, live in batches:
            if len(hexes) != n * _HASH_HEX:
                return False
            try:
                raw = bytes.fromhex(hexes)
            except ValueError:
                return False
            if len(raw) != n * _HASH_HEX // 2:  # fromhex skips spaces
                return False
            del hexes
            hi, lo = _distinct(*_halves(raw))
            highs.append(hi)
            lows.append(lo)
            lives.append(np.full(len(hi), live, dtype=bool))
        self._index(highs, lows, lives)
        return True

    def _build_rows(self, batches: Iterable[Sequence[Any]]) -> None:
        """From (hash, live) rows, leaving out what is not a hash (``scan`` then)."""
        import numpy as np

        highs: list[npt.NDArray[np.uint64]] = []
        lows: list[npt.NDArray[np.uint64]] = []
        lives: list[npt.NDArray[np.bool_]] = []
        for batch in batches:
            keep = [(h, x) for h, x in batch if _is_hash(h)]
            self.scan = self.scan or len(keep) < len(batch)
            hi, lo = _halves(bytes.fromhex("".join(h for h, _ in keep)))
            highs.append(hi)
            lows.append(lo)
            lives.append(np.fromiter((x for _, x in keep), dtype=bool, count=len(keep)))
        self._index(highs, lows, lives)

    def _index(
        self,
        highs: list[npt.NDArray[np.uint64]],
        lows: list[npt.NDArray[np.uint64]],
        lives: list[npt.NDArray[np.bool_]],
    ) -> None:
        """Entries sorted by hash, one per distinct hash: ``ok`` when every stored row of it
        is live, ``live`` when any is."""
        import numpy as np

        if highs:
            hi, lo, lv = np.concatenate(highs), np.concatenate(lows), np.concatenate(lives)
        else:
            hi = lo = np.zeros(0, dtype=np.uint64)
            lv = np.zeros(0, dtype=bool)
        del highs, lows, lives
        order = np.argsort(hi)
        hi, lo, lv = hi[order], lo[order], lv[order]
        same_hi = hi[1:] == hi[:-1]
        if bool((same_hi & (lo[1:] != lo[:-1])).any()):  # two hashes share a first half
            order = np.lexsort((lo, hi))
            hi, lo, lv = hi[order], lo[order], lv[order]
            same_hi = hi[1:] == hi[:-1]
        del order
        n = len(hi)
        starts = (
            np.flatnonzero(np.concatenate(([True], ~same_hi | (lo[1:] != lo[:-1]))))
            if n
            else np.zeros(0, dtype=np.intp)
        )
        self.hi: npt.NDArray[np.uint64] = hi[starts]
        self.lo: npt.NDArray[np.uint64] = lo[starts]
        self.ok: npt.NDArray[np.bool_] = (
            np.logical_and.reduceat(lv, starts) if n else np.zeros(0, dtype=bool)
        )
        self.live: npt.NDArray[np.bool_] = (
            np.logical_or.reduceat(lv, starts) if n else np.zeros(0, dtype=bool)
        )
        self.state: npt.NDArray[np.uint8] = np.zeros(len(starts), dtype=np.uint8)

    def __len__(self) -> int:
        self._ensure()
        return len(self.hi)

    def _lookup(self, raw: bytes) -> npt.NDArray[np.intp]:
        """Entry index of each 16-byte digest in ``raw``, or -1."""
        import numpy as np

        q = np.frombuffer(raw, dtype=">u8").reshape(-1, 2).astype(np.uint64)
        n = len(self.hi)
        if not n or not len(q):
            return np.full(len(q), -1, dtype=np.intp)
        idx = np.searchsorted(self.hi, q[:, 0])
        np.minimum(idx, n - 1, out=idx)
        match = (self.hi[idx] == q[:, 0]) & (self.lo[idx] == q[:, 1])
        return np.where(match, idx, -1)

    def find(self, digests: Sequence[bytes]) -> list[int]:
        """For a connector: the open, consistent, live entry of each digest, or -1."""
        self._ensure()
        if not len(self.hi) or not digests:
            return [-1] * len(digests)
        import numpy as np

        idx = self._lookup(b"".join(digests))
        safe = np.maximum(idx, 0)
        usable = (idx >= 0) & self.ok[safe] & (self.state[safe] == OPEN)
        return [int(x) for x in np.where(usable, idx, -1).tolist()]

    def take(self, entries: Sequence[int]) -> None:
        """The records of these entries were read unchanged in this pass."""
        if entries:
            self.state[list(entries)] = HIT

    def entries(self, hexes: Sequence[str]) -> list[int]:
        """The entry of each stored hash (hex), whatever its state, or -1."""
        self._ensure()
        good = [h if _is_hash(h) else "0" * _HASH_HEX for h in hexes]
        if not len(self.hi) or not good:
            return [-1] * len(hexes)
        idx = self._lookup(bytes.fromhex("".join(good)))
        return [int(x) if _is_hash(h) else -1 for x, h in zip(idx.tolist(), hexes, strict=True)]

    def is_hit(self, entry: int) -> bool:
        return entry >= 0 and int(self.state[entry]) == HIT

    def use(self, entries: Iterable[int]) -> None:
        """The row of these entries is rewritten from a changed record in this pass."""
        for e in entries:
            if e >= 0 and int(self.state[e]) == OPEN:
                self.state[e] = USED

    def all_accounted(self) -> bool:
        """Every stored live row was read or rewritten in this pass: nothing vanished."""
        self._ensure()
        if self.scan:
            return False
        return not bool((self.live & (self.state == OPEN)).any())


def load(engine: Engine, key: StreamKey) -> PassHashes:
    """The stream's stored hashes, scanned once on first use."""

    def joined() -> Iterator[tuple[str, int, bool]]:
        with _one_snapshot(engine.connect()) as conn:
            for live, n, dead, n_dead in joined_hashes(conn, key):
                yield live, n, True
                yield dead, n_dead, False

    def rows() -> Iterator[Sequence[Any]]:
        with engine.connect() as conn:
            yield from stream_hashes(conn, key)

    return PassHashes(joined, rows)


def _one_snapshot(conn: Connection) -> Connection:
    """All of a scan's batches in one snapshot. SQLite's read transaction already is one; on
    PostgreSQL each statement of a READ COMMITTED transaction sees its own, and a batch
    read in physical order (``store_scan``) could then miss a row another session updated
    between two batches (its new version in a block already read), so the stored hash
    would be missing and a vanished row could go unnoticed for a pass."""
    if conn.dialect.name == "postgresql":
        return conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def compare(
    conn: Connection, key: StreamKey, known: PassHashes, hashes: Mapping[str, str]
) -> tuple[set[str], set[str]]:
    """For records a connector emitted (source id → payload hash): the ids unchanged (skip
    them) and the ids whose unchanged copy was already read in this pass (a repeated id:
    quarantine the later copy). Every other stored row these ids had counts as rewritten."""
    stored = stored_hashes(conn, key, list(hashes))
    if not stored:
        return set(), set()
    sids = list(stored)
    highs = known.entries([stored[s][0] for s in sids])
    lows = known.entries([stored[s][1] for s in sids])
    same: set[str] = set()
    repeated: set[str] = set()
    for sid, hi, lo in zip(sids, highs, lows, strict=True):
        top, _, ok = stored[sid]
        if known.is_hit(hi):
            repeated.add(sid)
        elif ok and top == hashes[sid]:
            same.add(sid)
            if hi >= 0:
                known.take([hi])
        else:
            known.use((hi, lo))
    return same, repeated


def vanished(conn: Connection, key: StreamKey, known: PassHashes, seen: SeenIds) -> list[str]:
    """Stored live ids that this pass neither read unchanged (by hash) nor saw by id."""
    if known.all_accounted():
        return []
    absent = (
        sid
        for sid, group in groupby(_hit_rows(conn, key, known), key=itemgetter(0))
        if not any(hit for _, hit in group)
    )
    return list(seen.missing(absent))


def _hit_rows(
    conn: Connection, key: StreamKey, known: PassHashes, batch: int = 5000
) -> Iterator[tuple[str, bool]]:
    chunk: list[tuple[str, str]] = []

    def flags() -> list[tuple[str, bool]]:
        entries = known.entries([h for _, h in chunk])
        return [(sid, known.is_hit(e)) for (sid, _), e in zip(chunk, entries, strict=True)]

    for row in live_hashes(conn, key):
        chunk.append(row)
        if len(chunk) >= batch:
            yield from flags()
            chunk = []
    if chunk:
        yield from flags()


def _halves(raw: bytes) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """The first and second 64-bit halves of each 16-byte digest in ``raw``."""
    import numpy as np

    pairs = np.frombuffer(raw, dtype=">u8").reshape(-1, 2).astype(np.uint64)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def _distinct(
    hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """One batch's hashes with repeats dropped: a source row's lineage rows (its company,
    person and deal) carry one hash. Adjacent repeats go first (a walk by key brings them
    together, at no sorting cost); the rest are sorted and dropped, so a batch read in
    physical order (repeats pages apart) holds ~1 entry per source row, not ~2.3, and the
    pass's peak memory stays what it was."""
    import numpy as np

    for sort in (False, True):
        if len(hi) < 2:
            break
        if sort:
            order = np.argsort(hi)
            hi, lo = hi[order], lo[order]
        keep = np.empty(len(hi), dtype=bool)
        keep[0] = True
        keep[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
        hi, lo = hi[keep], lo[keep]
    return hi, lo


def _is_hash(h: str) -> bool:
    if len(h) != _HASH_HEX:
        return False
    try:
        bytes.fromhex(h)
    except ValueError:
        return False
    return True


__all__ = ["HIT", "OPEN", "USED", "PassHashes", "compare", "load", "vanished"]
