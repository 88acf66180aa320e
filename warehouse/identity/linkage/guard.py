"""Clustering that does not chain: a link may not join two clusters that strongly disagree.

Links are applied strongest first. Before two clusters join, their members are checked
against each other: the same kanji name read differently by trusted readings, two birth
dates that are not a typo apart, two different external ids. Such a link is refused and goes
to review with the reason, so A–B and B–C never make A–C when A and C are two people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from rapidfuzz.distance import JaroWinkler, Levenshtein

from warehouse.identity.linkage.frame import Frame, Ints


@dataclass
class _Profile:
    # kanji name → trusted readings (family, given)
    readings: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    dobs: set[str] = field(default_factory=set)
    exts: set[str] = field(default_factory=set)

    def absorb(self, other: _Profile) -> None:
        for k, v in other.readings.items():
            self.readings.setdefault(k, set()).update(v)
        self.dobs |= other.dobs
        self.exts |= other.exts


def _dob_compatible(a: set[str], b: set[str]) -> bool:
    if not a or not b:
        return True
    return any(
        x == y or Levenshtein.distance(x, y) <= 2 or x[:4] + x[6:] + x[4:6] == y
        for x in a
        for y in b
    )


STRONG_BITS = -5.0


def _same_reading(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """One reading, maybe with a typo: each part close (a changed given name is another)."""
    return all(JaroWinkler.similarity(x, y) >= 0.8 for x, y in zip(a, b, strict=True))


def conflict(
    a: _Profile, b: _Profile, checks: frozenset[str] = frozenset({"reading", "dob", "ext"})
) -> str | None:
    """Why two clusters cannot be one person, or None (only the ``checks`` that apply)."""
    for name, ra in a.readings.items():
        rb = b.readings.get(name)
        if rb and not any(_same_reading(x, y) for x in ra for y in rb):
            show = "/".join(" ".join(r) for r in sorted(ra))
            return f"reading:{name}:{show}≠{'/'.join(' '.join(r) for r in sorted(rb))}"
    if "dob" in checks and not _dob_compatible(a.dobs, b.dobs):
        return f"birth_date:{'/'.join(sorted(a.dobs))}≠{'/'.join(sorted(b.dobs))}"
    if "ext" in checks and a.exts and b.exts and not (a.exts & b.exts):
        return "external_id"
    return None


def _profile(fr: Frame, row: int) -> _Profile:
    p = _Profile()
    if fr.japanese[row] and fr.trusted[row] and fr.full[row]:
        p.readings[str(fr.name[row])] = {(str(fr.fam[row]), str(fr.giv[row]))}
    if fr.dob[row]:
        p.dobs.add(str(fr.dob[row]))
    if fr.ext[row]:
        p.exts.add(str(fr.ext[row]))
    return p


def strong_checks(weights: dict[str, float]) -> frozenset[str]:
    """Which disagreements the data says are strong: the learned weight of a birth date or
    external id that differs is at most ``STRONG_BITS`` (in FEBRL, where duplicates often
    carry another birth date, it is not; in a CRM it is). Trusted readings always are."""
    out = {"reading"}
    if weights.get("dob", 0.0) <= STRONG_BITS:
        out.add("dob")
    if weights.get("ext", 0.0) <= STRONG_BITS:
        out.add("ext")
    return frozenset(out)


def cluster(
    fr: Frame,
    i: Ints,
    j: Ints,
    bits: NDArray[np.float64],
    links: NDArray[np.bool_],
    checks: frozenset[str] = frozenset({"reading", "dob", "ext"}),
) -> tuple[Ints, dict[int, str]]:
    """(cluster label per row = smallest row in it, refused link index → reason)."""
    n = len(fr)
    parent = np.arange(n, dtype=np.int64)
    parent_size = np.ones(n, dtype=np.int64)
    profiles: dict[int, _Profile] = {}

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = int(parent[root])
        while parent[x] != root:
            parent[x], x = root, int(parent[x])
        return root

    refused: dict[int, str] = {}
    idx = np.nonzero(links)[0]
    order = idx[np.lexsort((j[idx], i[idx], -bits[idx]))]
    for e in order:
        a, b = find(int(i[e])), find(int(j[e]))
        if a == b:
            continue
        pa = profiles.get(a) or profiles.setdefault(a, _profile(fr, a))
        pb = profiles.get(b) or profiles.setdefault(b, _profile(fr, b))
        # Two single rows: their own score already weighed every disagreement between them.
        single = parent_size[a] == 1 and parent_size[b] == 1
        why = None if single else conflict(pa, pb, checks)
        if why is not None:
            refused[int(e)] = why
            continue
        keep, gone = (a, b) if a < b else (b, a)
        parent[gone] = keep
        parent_size[keep] += parent_size[gone]
        pk, pg = (pa, pb) if keep == a else (pb, pa)
        pk.absorb(pg)
        profiles[keep] = pk
        profiles.pop(gone, None)
    labels = np.fromiter((find(x) for x in range(n)), np.int64, n)
    return labels, refused
