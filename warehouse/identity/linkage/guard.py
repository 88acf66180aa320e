"""Clustering that does not chain: a link may not join two clusters that strongly disagree.

Links are applied strongest first. Before two clusters join, their members are checked
against each other: the same kanji name read differently by trusted readings, two birth
dates that are not a typo apart, two different external ids. Such a link is refused and goes
to review with the reason, so A–B and B–C never make A–C when A and C are two people.

A link made by name and workplace alone (no mailbox, mobile, birth date or external id in
common) is weak: it may attach a row to a person, never join two people who differ on what
is their own. It is refused when the two sides hold different 法人番号 or company domains
(namesakes at two companies of one trade name, met through a row that names only the trade
name), or different mobiles or private mailboxes (two namesakes at one company). A job
changer still links: their two employments are joined by their own mobile or private mail.
"""

from __future__ import annotations

from collections.abc import Set

import numpy as np
from numpy.typing import NDArray
from rapidfuzz.distance import JaroWinkler, Levenshtein

from warehouse.identity.keys.normalize import FREE_MAIL_DOMAINS
from warehouse.identity.linkage import comparisons as cmp
from warehouse.identity.linkage.contacts import is_personal_phone
from warehouse.identity.linkage.frame import Frame, Idx, Ints, bulk, isin, unique

_NONE: frozenset[str] = frozenset()


class _Profile:
    """What a cluster's members say about who it is. A row's profile is built for every row
    a link touches, so empty fields share one frozen empty set until something is absorbed."""

    __slots__ = ("corps", "dobs", "domains", "exts", "own", "readings")

    def __init__(self) -> None:
        # kanji name → trusted readings (family, given)
        self.readings: dict[str, set[tuple[str, str]]] = {}
        self.dobs: Set[str] = _NONE
        self.exts: Set[str] = _NONE
        self.corps: Set[str] = _NONE
        self.domains: Set[str] = _NONE
        self.own: Set[str] = _NONE  # mobiles and private mailboxes (not shared)

    def absorb(self, other: _Profile) -> None:
        for k, v in other.readings.items():
            self.readings.setdefault(k, set()).update(v)
        for name in ("dobs", "exts", "corps", "domains", "own"):
            theirs = getattr(other, name)
            if theirs:
                setattr(self, name, getattr(self, name) | theirs)


def weak_conflict(a: _Profile, b: _Profile) -> str | None:
    """Why a link by name and workplace alone cannot join these two clusters, or None.

    Such a link cannot bridge two trusted readings of one kanji name that differ at all
    (博: ヒロシ and ヒロム are one kana apart, like a typo): only the person's own contact can.
    """
    for name, ra in a.readings.items():
        rb = b.readings.get(name)
        if rb and not (ra & rb):
            return "weak_link:reading"
    for what, x, y in (
        ("corporate_number", a.corps, b.corps),
        ("company_domain", a.domains, b.domains),
        ("own_contact", a.own, b.own),
    ):
        if x and y and not (x & y):
            return f"weak_link:{what}"
    return None


def _dob_compatible(a: Set[str], b: Set[str]) -> bool:
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


def _own_values(fr: Frame, rows: Ints) -> tuple[Ints, Ints, list[str]]:
    """(row, value code, values) of the mobiles and private (free-mail) mailboxes of
    ``rows`` (those links touch) that no other name uses; each distinct value is judged once.
    Phone and mail values share one code space (mail codes follow the phones')."""
    recs: list[Ints] = []
    vals: list[Ints] = []
    names: list[str] = []
    for m, mine in ((fr.phone, is_personal_phone), (fr.email, _private_mailbox)):
        keep = isin(m.rec, rows) & ~m.shared[m.val]
        rec, val = m.rec[keep], m.val[keep]
        distinct = unique(val)
        own = np.zeros(len(m.values), bool)
        own[distinct] = np.fromiter(
            (mine(m.values[v]) for v in distinct.tolist()), bool, distinct.shape[0]
        )
        hit = own[val]
        recs.append(rec[hit])
        vals.append(val[hit] + len(names))
        names.extend(m.values)
    return np.concatenate(recs), np.concatenate(vals), names


def _own_contacts(
    own: tuple[Ints, Ints, list[str]], rows: NDArray[np.bool_] | None = None
) -> dict[int, list[str]]:
    """Per row (of those ``rows`` marks): its own contacts as ``_own_values`` found them."""
    rec, val, names = own
    if rows is not None:
        keep = rows[rec]
        rec, val = rec[keep], val[keep]
    out: dict[int, list[str]] = {}
    for r, v in zip(rec.tolist(), val.tolist(), strict=True):
        out.setdefault(r, []).append(names[v])
    return out


def _private_mailbox(address: str) -> bool:
    return address.rpartition("@")[2] in FREE_MAIL_DOMAINS


def _profile(fr: Frame, row: int, own: dict[int, list[str]] | None = None) -> _Profile:
    p = _Profile()
    if own is not None:
        if row in own:
            p.own = frozenset(own[row])
        corp, domain = fr.value("corp", row), fr.value("domain", row)
        if corp:
            p.corps = frozenset((corp,))
        if domain:
            p.domains = frozenset((domain,))
    if fr.japanese[row] and fr.trusted[row] and fr.value("full", row):
        p.readings[fr.value("name", row)] = {(fr.value("fam", row), fr.value("giv", row))}
    dob, ext = fr.value("dob", row), fr.value("ext", row)
    if dob:
        p.dobs = frozenset((dob,))
    if ext:
        p.exts = frozenset((ext,))
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


def _personal_link(fr: Frame, i: Ints, j: Ints) -> NDArray[np.bool_]:
    """Per link: do the two rows share something of the person's own (a mailbox or number
    that is not shared, a birth date, an external id)?"""
    out: NDArray[np.bool_] = (
        (cmp.email(fr, i, j) == cmp.EMAIL_OWN)
        | (cmp.phone(fr, i, j) == cmp.PHONE_OWN)
        | (cmp.dob(fr, i, j) == cmp.DOB_EXACT)
    )
    ext = fr.coded("ext").codes
    out |= (ext[i] > 0) & (ext[i] == ext[j])
    return out


AMBIGUOUS_BITS = 1.0


@bulk
def cluster(
    fr: Frame,
    i: Ints,
    j: Ints,
    bits: NDArray[np.float64],
    links: NDArray[np.bool_],
    checks: frozenset[str] = frozenset({"reading", "dob", "ext"}),
) -> tuple[Ints, dict[int, str]]:
    """(cluster label per row = smallest row in it, refused link index → reason).

    A row that fits two people who cannot be one nearly equally well (its refused link is
    within ``AMBIGUOUS_BITS`` of its best accepted one) is attached to neither: which one
    it would join otherwise depends on the order rows arrived in, and a rebuild from the
    same rows in another order must give the same people. Its links go to review.
    """
    idx = np.nonzero(links)[0]
    touched = unique(np.concatenate([i[idx], j[idx]])) if idx.size else idx
    own_found = _own_values(fr, touched)
    strong = np.zeros(i.shape[0], bool)
    strong[idx] = _personal_link(fr, i[idx], j[idx])
    # Most people's rows agree on everything the guard looks at: their links are all taken
    # whatever the order, so their clusters are the connected components. Only components
    # whose rows disagree somewhere are walked link by link.
    comp = components(len(fr), i[idx], j[idx])
    walk = _disagreeing(fr, comp, touched, own_found)
    own = _own_contacts(own_found, walk[comp])
    labels, refused = _run(fr, i, j, bits, idx[walk[comp[i[idx]]]], checks, own, strong)
    labels = np.where(walk[comp], labels, comp)
    if not refused:
        return labels, refused
    accepted = idx[~isin(idx, np.fromiter(refused, np.int64, len(refused)))]
    best = np.full(len(fr), -np.inf)
    np.maximum.at(best, i[accepted], bits[accepted])
    np.maximum.at(best, j[accepted], bits[accepted])
    why_of: dict[int, str] = {}
    for e, why in refused.items():
        for r in (int(i[e]), int(j[e])):
            if np.isfinite(best[r]) and bits[e] >= best[r] - AMBIGUOUS_BITS:
                why_of.setdefault(r, why)
    if not why_of:
        return labels, refused
    rows = np.fromiter(why_of, np.int64, len(why_of))
    drop = np.zeros(i.shape[0], bool)
    for side in (i, j):
        hit = isin(side[idx], rows)
        near = bits[idx] >= best[side[idx]] - AMBIGUOUS_BITS
        drop[idx[hit & near]] = True
    # Only the clusters a dropped link touches, and those refused links tie to them, can
    # come out differently: the second pass runs over their links alone.
    area = _area(labels, i, j, refused, rows)
    inside = area[labels[i[idx]]]
    redo = idx[inside & ~drop[idx]]
    sub, again = _run(fr, i, j, bits, redo, checks, own, strong)
    mine = area[labels]  # per row, by its first-pass cluster
    labels = np.where(mine, sub, labels)
    out = {e: why for e, why in refused.items() if not mine[i[e]]}
    out.update(again)
    for e in np.nonzero(drop)[0].tolist():
        r = int(i[e]) if int(i[e]) in why_of else int(j[e])
        out[e] = refused.get(e) or f"ambiguous:{why_of[r]}"
    return labels, out


def components(n: int, i: Ints, j: Ints) -> Ints:
    """Per row, the smallest row connected to it by the links (i, j): labels spread along
    links and jump to their label's label until nothing changes (a few rounds)."""
    labels = np.arange(n, dtype=np.int64)
    if i.shape[0] == 0:
        return labels
    while True:
        low = np.minimum(labels[i], labels[j])
        before = labels.copy()
        np.minimum.at(labels, i, low)
        np.minimum.at(labels, j, low)
        while True:
            up = labels[labels]
            if np.array_equal(up, labels):
                break
            labels = up
        if np.array_equal(labels, before):
            return labels


def _varied(group: Ints, value: Idx) -> Ints:
    """The groups in which ``value`` takes more than one distinct value."""
    if group.shape[0] == 0:
        return group
    order = np.lexsort((value, group))
    g, v = group[order], value[order]
    new = np.ones(g.shape[0], bool)
    new[1:] = (g[1:] != g[:-1]) | (v[1:] != v[:-1])
    distinct = g[new]
    again = np.zeros(distinct.shape[0], bool)
    again[1:] = distinct[1:] == distinct[:-1]
    return unique(distinct[again])


def _disagreeing(
    fr: Frame, comp: Ints, rows: Ints, own: tuple[Ints, Ints, list[str]]
) -> NDArray[np.bool_]:
    """Per component label: could its rows disagree on anything ``conflict`` or
    ``weak_conflict`` checks (two readings of one kanji name, birth dates, external ids,
    法人番号, company domains, or own contacts that not all of them share)? Everything else
    merges whole."""
    out = np.zeros(comp.shape[0], bool)
    c = comp[rows]
    for col in ("dob", "ext", "corp", "domain"):
        code = fr.coded(col).codes[rows]
        has = code > 0
        out[_varied(c[has], code[has])] = True
    # Trusted readings per kanji name: (component, name) groups with two readings.
    r = rows[fr.japanese[rows] & fr.trusted[rows] & (fr.coded("full").codes[rows] > 0)]
    fam, giv, name = fr.coded("fam"), fr.coded("giv"), fr.coded("name")
    reading = fam.codes[r].astype(np.int64) * (len(fam.values) + 1) + giv.codes[r]
    _, pair = np.unique(np.stack([comp[r], name.codes[r]]), axis=1, return_inverse=True)
    pair = pair.reshape(-1)
    out[comp[r][isin(pair, _varied(pair, reading))]] = True
    # Own contacts: safe only when one value is held by every row of the component that
    # holds any (then any two parts of it share that value).
    rec, val, _ = own
    if rec.shape[0]:
        rc = comp[rec]
        _, inv, counts = np.unique(
            np.stack([rc, val]), axis=1, return_inverse=True, return_counts=True
        )
        most = np.zeros(comp.shape[0], np.int64)
        np.maximum.at(most, rc, counts[inv.reshape(-1)])
        holders = np.bincount(comp[unique(rec)], minlength=comp.shape[0])
        out[most < holders] = True
    return out


def _area(labels: Ints, i: Ints, j: Ints, refused: dict[int, str], rows: Ints) -> NDArray[np.bool_]:
    """Per cluster label: is it one of ``rows``' clusters, or tied to one by refused links?"""
    tie: dict[int, int] = {}

    def find(x: int) -> int:
        while tie.get(x, x) != x:
            x = tie[x]
        return x

    for e in refused:
        a, b = find(int(labels[i[e]])), find(int(labels[j[e]]))
        if a != b:
            tie[max(a, b)] = min(a, b)
    seeds = {find(int(labels[r])) for r in rows.tolist()}
    out = np.zeros(labels.shape[0], bool)
    # A label outside every tie is in the area only if it is a seed itself.
    for lab in seeds | set(tie) | set(tie.values()):
        if find(lab) in seeds:
            out[lab] = True
    return out


def _run(
    fr: Frame,
    i: Ints,
    j: Ints,
    bits: NDArray[np.float64],
    idx: Ints,
    checks: frozenset[str],
    own: dict[int, list[str]],
    strong: NDArray[np.bool_],
) -> tuple[Ints, dict[int, str]]:
    """Union–find over the links ``idx``, strongest first, refusing the ones that conflict."""
    n = len(fr)
    # Python lists, not arrays: the loop below reads one element at a time.
    parent = list(range(n))
    parent_size = [1] * n
    profiles: dict[int, _Profile] = {}

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    refused: dict[int, str] = {}
    order = idx[np.lexsort((j[idx], i[idx], -bits[idx]))]
    weak = (~strong).tolist()
    for e, x, y in zip(order.tolist(), i[order].tolist(), j[order].tolist(), strict=True):
        a, b = find(x), find(y)
        if a == b:
            continue
        pa = profiles.get(a) or profiles.setdefault(a, _profile(fr, a, own))
        pb = profiles.get(b) or profiles.setdefault(b, _profile(fr, b, own))
        # Two single rows: their own score already weighed every disagreement between them.
        single = parent_size[a] == 1 and parent_size[b] == 1
        why = None if single else conflict(pa, pb, checks)
        if why is None and weak[e]:
            why = weak_conflict(pa, pb)
        if why is not None:
            refused[e] = why
            continue
        keep, gone = (a, b) if a < b else (b, a)
        parent[gone] = keep
        parent_size[keep] += parent_size[gone]
        pk, pg = (pa, pb) if keep == a else (pb, pa)
        pk.absorb(pg)
        profiles[keep] = pk
        profiles.pop(gone, None)
    labels = np.asarray(parent, dtype=np.int64)
    while True:  # every row to its root at once (roots point to themselves)
        up = labels[labels]
        if np.array_equal(up, labels):
            return labels, refused
        labels = up
