"""The set of source ids seen during one pass of a stream, in ~8 bytes an id.

A snapshot pass must remember every id it saw: to quarantine an id repeated within the pass
(``unique_ids``) and, at ``snapshot_end``, to find the stored rows the source no longer has.
A ``set[str]`` costs ~95 bytes an id, so memory grew with the file (305 MB at 1M rows). Here
an id is kept as an 8-byte keyed BLAKE2b digest: the newest ids in a small ``set[int]``,
older ones in sorted ``uint64`` numpy runs merged like an LSM tree (each run at least twice
the next, so O(log n) runs and every digest is re-copied O(log n) times). Lookups are
batched per page (a vectorised binary search per run), so the per-row cost stays around a
microsecond. numpy is imported only when a pass outgrows the first chunk (65,536 ids), so
small streams do not pay its ~11 MB.

Digests can collide. The expected number of colliding pairs among n ids is about
n²/2^65 (~3e-8 at 1M ids, ~7e-7 at 5M). The key is random per pass, so a collision is a
one-pass event, never a property of two particular ids. What a collision can do:

- at ``snapshot_end``, a row that vanished from the source shares a digest with an id seen
  in the pass, so it is not marked deleted in this pass; the next pass (new key) deletes it;
- with ``unique_ids``, a row whose digest equals an earlier row's of the same pass is
  quarantined as a duplicate in this pass; the next pass applies it and closes the entry.

Nothing is ever deleted or overwritten because of a collision: it can only delay a deletion
or an update by one pass.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Runs = npt.NDArray[np.uint64]


class SeenIds:
    """A set of strings with a small false-positive rate (see module docstring)."""

    def __init__(self, recent_limit: int = 1 << 16) -> None:
        self._recent_limit = recent_limit
        self._key = secrets.token_bytes(16)
        self._recent: set[int] = set()
        self._runs: list[Runs] = []

    def clear(self) -> None:
        """Forget everything and draw a new key, so collisions do not repeat across passes."""
        self._key = secrets.token_bytes(16)
        self._recent = set()
        self._runs = []

    def __len__(self) -> int:
        """Distinct digests held (an id count, up to collisions)."""
        return len(self._recent) + sum(len(run) for run in self._runs)

    def __contains__(self, sid: object) -> bool:
        if not isinstance(sid, str):
            return False
        return self._present(self._digests([sid]))[0]

    def add(self, sid: str) -> None:
        self.update([sid])

    def update(self, sids: Iterable[str]) -> None:
        self._insert(self._digests(sids))

    def add_new(self, sids: Sequence[str]) -> list[bool]:
        """Add ids in order; for each, whether it was new (False: seen before, in this batch
        or an earlier one)."""
        digests = self._digests(sids)
        fresh: list[bool] = []
        batch: set[int] = set()
        for d, old in zip(digests, self._present(digests), strict=True):
            if old or d in batch:
                fresh.append(False)
            else:
                batch.add(d)
                fresh.append(True)
        self._insert(batch)
        return fresh

    def missing(self, sids: Iterable[str], batch: int = 5000) -> Iterator[str]:
        """The ids of ``sids`` not in the set, streamed in batches (``sids`` may be huge)."""
        chunk: list[str] = []
        for sid in sids:
            chunk.append(sid)
            if len(chunk) >= batch:
                yield from self._missing(chunk)
                chunk = []
        if chunk:
            yield from self._missing(chunk)

    def _missing(self, chunk: list[str]) -> list[str]:
        present = self._present(self._digests(chunk))
        return [sid for sid, p in zip(chunk, present, strict=True) if not p]

    def _digests(self, sids: Iterable[str]) -> list[int]:
        key = self._key
        return [
            int.from_bytes(
                hashlib.blake2b(
                    s.encode("utf-8", "surrogatepass"), digest_size=8, key=key
                ).digest(),
                "little",
            )
            for s in sids
        ]

    def _present(self, digests: list[int]) -> list[bool]:
        recent = self._recent
        if not self._runs:
            return [d in recent for d in digests]
        import numpy as np  # only once a pass outgrows the first chunk

        arr = np.array(digests, dtype=np.uint64)
        found = np.fromiter((d in recent for d in digests), bool, len(digests))
        for run in self._runs:
            idx = np.searchsorted(run, arr)
            np.minimum(idx, len(run) - 1, out=idx)
            found |= run[idx] == arr
        return [bool(x) for x in found.tolist()]

    def _insert(self, digests: Iterable[int]) -> None:
        self._recent.update(digests)
        if len(self._recent) >= self._recent_limit:
            import numpy as np  # only once a pass outgrows the first chunk

            run = np.fromiter(self._recent, np.uint64, len(self._recent))
            run.sort()
            self._recent = set()
            self._runs.append(run)
            self._compact()

    def _compact(self) -> None:
        import numpy as np

        runs = self._runs
        while len(runs) >= 2 and len(runs[-2]) <= 2 * len(runs[-1]):
            top = runs.pop()
            merged = np.concatenate((runs.pop(), top))
            del top
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in O(n)
            keep = np.empty(len(merged), dtype=bool)
            keep[0] = True
            np.not_equal(merged[1:], merged[:-1], out=keep[1:])
            runs.append(merged if keep.all() else merged[keep])


__all__ = ["SeenIds"]
