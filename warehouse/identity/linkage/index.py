"""Each person row's stored features and block keys, computed column by column.

A full run stores a million rows' features and about fourteen million block keys. Spelled out
row by row (a feature object, its JSON, each key's text and its hash) that was a fifth of the
run. Here each distinct value is serialised and hashed once, and rows are put together from
those pieces: a key of one field is the BLAKE2b of its text, a key of two fields mixes the two
fields' hashes, so a million rows' keys are integer arithmetic on their columns. The
incremental path and ``privacy erase`` use the same functions on the few rows they touch
(``Columns.of``), so a row's keys are the same whichever path wrote them.

Which keys a row gets (a pair is compared if the rows share one): its addresses, phones and
long mailbox local parts; its external id; its reading's first two tokens (``t``); its
reading with its company, birth date or postcode (``no``, ``nb``, ``nz``); a reading token's
prefix with its birth date or postcode (``b``, ``z``); its written name with its company
(``k``); its birth date with its postcode (``d``). A name combined with a second field keeps
a common name from making a block of thousands.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from hashlib import blake2b
from itertools import pairwise
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from warehouse.identity.keys.matching import PersonFeatures
from warehouse.identity.keys.readings import _GENERIC_LOCAL
from warehouse.identity.linkage.features import FIELDS, MULTI_FIELDS, Columns
from warehouse.identity.linkage.frame import bulk

Ints = NDArray[np.int64]
U64 = NDArray[np.uint64]
Bools = NDArray[np.bool_]
# (digest, record id, tag) per key, sorted by digest then record, each pair once.
Keys = tuple[Ints, Ints, NDArray[np.int8]]

TAGS = ("e", "p", "l", "x", "t", "no", "nb", "nz", "b", "z", "k", "d")
TAG = {name: k for k, name in enumerate(TAGS)}
# A stored row is the list of its fields in the order ``PersonFeatures`` declares them after
# the id (``PersonFeatures.loads`` reads them back by position).
_ORDER = tuple(f.name for f in dataclasses.fields(PersonFeatures))[1:]
_DEFAULTS = [f.default for f in dataclasses.fields(PersonFeatures)][1:]


def text_digests(texts: Sequence[str]) -> Ints:
    """Texts' stable 64-bit digests (the same on every run, process and machine)."""
    raw = b"".join([blake2b(k.encode(), digest_size=8).digest() for k in texts])
    return np.frombuffer(raw, dtype="<i8").astype(np.int64)


def _hashes(texts: Sequence[str]) -> U64:
    return text_digests(texts).view(np.uint64)


_C1, _C2, _C3 = (
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xBF58476D1CE4E5B9),
    np.uint64(0x94D049BB133111EB),
)


def _mix(tag: int, a: U64, b: U64) -> Ints:
    """One 64-bit digest of a two-field key from the fields' hashes (SplitMix64's
    finaliser over both, the tag folded in so ``nb`` and ``b`` keys never coincide)."""
    with np.errstate(over="ignore"):
        x = a * _C1 ^ ((b << np.uint64(29)) | (b >> np.uint64(35))) ^ np.uint64(tag + 1) * _C3
        x ^= x >> np.uint64(30)
        x *= _C2
        x ^= x >> np.uint64(27)
        x *= _C3
        x ^= x >> np.uint64(31)
    return x.view(np.int64)


# -- stored features -------------------------------------------------------------------------


def _json(value: Any) -> str:
    # As text: the bytes orjson returns keep its whole write buffer (about 1 kB) alive.
    return orjson.dumps(value).decode()


# A page of rows to be stored, field by field, without their values: the rows' ids and
# ``trusted``, each single-valued field's value index per row, and each multi-valued field's
# value indexes row after row with where each row's begin (rows + 1 offsets).
Page = tuple[Ints, Bools, dict[str, Ints], dict[str, tuple[Ints, Ints]]]
# A field's distinct values as JSON: their texts end to end, and where each begins (n + 1).
Table = tuple[bytes, Ints]


def page_of(cols: Columns, rows: Ints) -> Page:
    """The rows at positions ``rows``, as indexes into their columns' value tables."""
    single = {name: cols.source(name)[0][rows] for name in FIELDS}
    multi: dict[str, tuple[Ints, Ints]] = {}
    for name in MULTI_FIELDS:
        val = cols.exploded(name)[1]
        at = cols._offsets(name)
        lo, n = at[rows], at[rows + 1] - at[rows]
        ends = np.cumsum(n)
        # The positions of the rows' values, row after row: each row's run lo .. lo + n.
        pos = np.arange(int(ends[-1]) if len(rows) else 0) + np.repeat(lo - (ends - n), n)
        multi[name] = (val[pos], np.concatenate(([0], ends)).astype(np.int64))
    return cols.ids[rows], cols.trusted[rows], single, multi


def table(values: Sequence[Any]) -> Table:
    """Values' JSON as a ``Table``."""
    texts = [orjson.dumps(v) for v in values]
    at = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)), out=at[1:])
    return b"".join(texts), at


def spell(page: Page, tables: dict[str, Table]) -> list[str]:
    """The stored text of a page's rows (the JSON list of their fields, as ``orjson``
    writes it) from each field's values' JSON (``tables``): each value is spelled once in
    its table, and a row is its fields' texts joined."""
    _, trusted, single, multi = page
    fields: dict[str, list[bytes]] = {}
    for name, codes in single.items():
        buf, at = tables[name]
        lo, hi = at[codes].tolist(), at[codes + 1].tolist()
        fields[name] = [buf[a:b] for a, b in zip(lo, hi, strict=True)]
    for name, (flat, starts) in multi.items():
        buf, at = tables[name]
        lo, hi = at[flat].tolist(), at[flat + 1].tolist()
        each = [buf[a:b] for a, b in zip(lo, hi, strict=True)]
        fields[name] = [b"[" + b",".join(each[a:b]) + b"]" for a, b in pairwise(starts.tolist())]
    fields["trusted"] = [b"1" if t else b"0" for t in trusted.tolist()]
    rows = zip(*(fields[name] for name in _ORDER), strict=True)
    return [(b"[" + b",".join(row) + b"]").decode() for row in rows]


def dumps(cols: Columns, size: int = 20_000) -> Iterator[tuple[Ints, list[str]]]:
    """The rows' features as stored, ``size`` rows at a time in id order (their ids, their
    JSON): the text ``orjson`` gives for the list of fields (``PersonFeatures.loads`` reads
    them), each distinct value spelled once."""
    tables = {name: table(cols.source(name)[1]) for name in FIELDS}
    tables.update({name: table(cols.exploded(name)[2]) for name in MULTI_FIELDS})
    order = np.argsort(cols.ids, kind="stable")
    for lo in range(0, len(cols), size):
        rows = order[lo : lo + size]
        yield cols.ids[rows], spell(page_of(cols, rows), tables)


@bulk
def loads(stored: Sequence[tuple[int, str]]) -> Columns:
    """Columns of stored rows, (record id, the text ``dumps`` gave): all of their JSON
    parsed in one call, no feature object per row. An incremental run reads its changed
    rows' neighbours this way (170,000 rows for a 1 % change of a million people: a feature
    object each cost 0.5 s more). A row stored before the last fields existed gets their
    defaults."""
    n = len(stored)
    rows: list[list[Any]] = orjson.loads("[" + ",".join([s for _, s in stored]) + "]")
    for row in rows:
        if len(row) < len(_ORDER):
            row.extend(_DEFAULTS[len(row) :])
    at = {name: k for k, name in enumerate(_ORDER)}

    def field(name: str) -> list[Any]:
        k = at[name]
        if name == "tokens":
            return [tuple(r[k]) for r in rows]
        return [r[k] for r in rows]

    ids = np.fromiter((rid for rid, _ in stored), np.int64, n)
    trusted = np.fromiter((bool(r[at["trusted"]]) for r in rows), bool, n)
    return Columns.gather(ids, trusted, field)


def fingerprints(cols: Columns, hashed: Hashed | None = None) -> Ints:
    """Each row's 64-bit fingerprint of the text ``dumps`` gives it: the hash of each
    field's JSON, mixed in the text's order (a list's items each with its position), so
    rows with equal text have equal fingerprints. A run compares these with the stored ones
    to find the rows whose features changed, without spelling out every row's text (a
    million rows' text was most of the index's renewal, and its memory).

    ``hashed``: the run's value hashes, kept from range to range (a range's columns share
    their value tables with the whole run); without it, only the values these rows use are
    hashed."""
    if hashed is None:
        cols, hashed = cols.compact(), Hashed()
    fp = np.zeros(len(cols), np.uint64)
    for k, name in enumerate(_ORDER):
        if name == "trusted":
            h = cols.trusted.astype(np.uint64)
        elif name in cols.multi:
            h = _list_hash(cols, name, hashed)
        else:
            codes, values = cols.source(name)
            h = hashed.of(values)[codes]
        fp = _mix(k, fp, h).view(np.uint64)
    return fp.view(np.int64)


def _list_hash(cols: Columns, name: str, hashed: Hashed) -> U64:
    """Each row's hash of its list of ``name``: its items' hashes, each mixed with its
    position, summed, then mixed with the list's length."""
    rec, val, values = cols.exploded(name)
    at = cols._offsets(name)
    pos = (np.arange(val.shape[0], dtype=np.int64) - at[rec]).view(np.uint64)
    each = _mix(0, hashed.of(values)[val], pos).view(np.uint64)
    out = np.zeros(len(cols), np.uint64)
    np.add.at(out, rec, each)
    return _mix(1, out, np.diff(at).view(np.uint64)).view(np.uint64)


class Hashed:
    """Each value's hash (of its JSON) in lists that only grow, such as a ``Memo``'s value
    tables: a value is hashed once however many ranges use it."""

    def __init__(self) -> None:
        self._got: dict[int, tuple[list[Any], U64, int]] = {}  # id → (list, hashes, count)

    def of(self, values: list[Any]) -> U64:
        held = self._got.get(id(values))
        if held is None or held[0] is not values:
            held = (values, np.zeros(0, np.uint64), 0)
        _, out, n = held
        if n < len(values):
            if out.shape[0] < len(values):  # room to grow into, not a copy per range
                out = np.concatenate([out[:n], np.zeros(len(values) + n, np.uint64)])
            out[n : len(values)] = _hashes([_json(v) for v in values[n:]])
            n = len(values)
        self._got[id(values)] = (values, out, n)
        return out[:n]


# -- block keys ------------------------------------------------------------------------------


_CHUNK = 100_000


def _hashed(
    values: Sequence[Any], fn: Callable[[Any], str], distinct: bool = False
) -> tuple[U64, Bools]:
    """Each value's hash of ``fn(value)`` (one BLAKE2b per distinct text) and whether it is
    a key (not empty); ``distinct``: the texts (nearly) all differ, so looking each up first
    to hash it once would save nothing (a repeat is hashed again, to the same digest).

    A chunk of values at a time: a million texts held at once stay in the heap once freed
    (0.3 GB at a million people), under the keys' sort, whose arrays are too large to reuse
    that memory."""
    n = len(values)
    h = np.empty(n, np.uint64)
    ok = np.empty(n, bool)
    for lo in range(0, n, _CHUNK):
        texts = [fn(v) for v in values[lo : lo + _CHUNK]]
        hi = lo + len(texts)
        if distinct:
            h[lo:hi] = _hashes(texts)
            ok[lo:hi] = np.fromiter(map(bool, texts), bool, len(texts))
            continue
        seen: dict[str, int] = {}
        codes = np.fromiter((seen.setdefault(x, len(seen)) for x in texts), np.int64, len(texts))
        del texts
        h[lo:hi] = _hashes(list(seen))[codes]
        ok[lo:hi] = np.fromiter(map(bool, seen), bool, len(seen))[codes]
    return h, ok


class Keyed:
    """Each value's key hash, per way of making its key, in lists that only grow (a
    ``Memo``'s value tables): the ranges of one process hash a value once, however many of
    them use it, when each computes its own rows' keys."""

    def __init__(self) -> None:
        # (id of the list, how its keys are made) → (list, hashes, is a key, count)
        self._got: dict[tuple[int, str], tuple[list[Any], U64, Bools, int]] = {}

    def of(
        self, values: list[Any], how: str, fn: Callable[[Any], str], distinct: bool = False
    ) -> tuple[U64, Bools]:
        held = self._got.get((id(values), how))
        if held is None or held[0] is not values:
            held = (values, np.zeros(0, np.uint64), np.zeros(0, bool), 0)
        _, h, ok, n = held
        if n < len(values):
            # Grown to size, a copy per range (a few MB): room to grow into held 0.1 GB
            # more in each of the two processes reading ranges at a million people.
            more, more_ok = _hashed(values[n:], fn, distinct)
            h, ok, n = np.concatenate([h, more]), np.concatenate([ok, more_ok]), len(values)
        self._got[(id(values), how)] = (values, h, ok, n)
        return h, ok


def _field(
    cols: Columns, name: str, keyed: Keyed, fn: Callable[[Any], str] = str, how: str = ""
) -> tuple[U64, Bools]:
    """Each row's hash of ``fn`` of its value of ``name``, and whether it gives a key."""
    codes, values = cols.source(name)
    h, ok = keyed.of(values, how or name, fn)
    return h[codes], ok[codes]


def _token(k: int, width: int) -> Callable[[tuple[str, ...]], str]:
    def pick(tokens: tuple[str, ...]) -> str:
        toks = sorted(tokens)
        return toks[k][:width] if len(toks) > k else ""

    return pick


def _reading(tokens: tuple[str, ...]) -> str:
    return " ".join(sorted(tokens))


def _pair_key(tokens: tuple[str, ...]) -> str:
    toks = sorted(tokens)
    return f"t|{toks[0][:4]}|{toks[-1][:4]}" if len(toks) >= 2 else ""


def _local_key(email: str) -> str:
    local = email.split("@", 1)[0]
    return f"l|{local}" if len(local) >= 5 and local not in _GENERIC_LOCAL else ""


@bulk
def keys(cols: Columns, ordered: bool = True, keyed: Keyed | None = None) -> Keys:
    """Every row's block keys as (digest, record id, tag), sorted, each pair once (not
    ``ordered``: as made, kind by kind, a pair perhaps twice). ``keyed``: the process's
    value hashes, kept from range to range (give a process's ranges one)."""
    keyed = keyed if keyed is not None else Keyed()
    rows = cols.ids
    out_d: list[Ints] = []
    out_r: list[Ints] = []
    tags: list[int] = []
    counts: list[int] = []

    def put(tag: str, d: Ints, r: Ints) -> None:
        out_d.append(d)
        out_r.append(r)
        tags.append(TAG[tag])
        counts.append(len(d))

    # A run's canonical addresses and phones are its distinct values, and ``e|``/``p|``
    # keep them distinct; local parts repeat.
    for field, tag, make, distinct in (
        ("emails", "e", lambda v: f"e|{v}", True),
        ("emails", "l", _local_key, False),
        ("phones", "p", lambda v: f"p|{v}", True),
    ):
        rec, val, values = cols.exploded(field)
        h, ok = keyed.of(values, tag, make, distinct)
        put(tag, h.view(np.int64)[val][ok[val]], rows[rec[ok[val]]])
    for field, tag, make in (
        ("ext", "x", lambda v: f"x|{v}" if v else ""),
        ("tokens", "t", _pair_key),
    ):
        h, ok = _field(cols, field, keyed, make, tag)
        put(tag, h.view(np.int64)[ok], rows[ok])
    reading, has_reading = _field(cols, "tokens", keyed, _reading, "reading")
    org, has_org = _field(cols, "org", keyed)
    dom, has_dom = _field(cols, "domain", keyed)
    other = np.where(has_org, org, dom)
    has_other = has_org | has_dom
    dob, has_dob = _field(cols, "dob", keyed)
    pc, has_pc = _field(cols, "postcode", keyed)
    name, has_name = _field(cols, "name", keyed)
    combos: list[tuple[str, tuple[U64, Bools], tuple[U64, Bools]]] = [
        ("no", (reading, has_reading), (other, has_other)),
        ("nb", (reading, has_reading), (dob, has_dob)),
        ("nz", (reading, has_reading), (pc, has_pc)),
        ("k", (name, has_name), (other, has_other)),
        ("d", (dob, has_dob), (pc, has_pc)),
    ]
    for k in (0, 1):
        combos.append(("b", (dob, has_dob), _field(cols, "tokens", keyed, _token(k, 2), f"b{k}")))
        combos.append(("z", (pc, has_pc), _field(cols, "tokens", keyed, _token(k, 3), f"z{k}")))
    for tag, (a, has_a), (b, has_b) in combos:
        ok = has_a & has_b
        put(tag, _mix(TAG[tag], a[ok], b[ok]), rows[ok])
    del combos, reading, org, dom, other, dob, pc, name
    d = np.concatenate(out_d) if out_d else np.zeros(0, np.int64)
    out_d.clear()  # each array let go as soon as it is copied: 14 M keys are 0.1 GB a column
    r = np.concatenate(out_r) if out_r else np.zeros(0, np.int64)
    out_r.clear()
    t = np.repeat(np.asarray(tags, np.int8), counts)
    if not ordered:
        return d, r, t
    held: list[Any] = [d, r, t]
    del d, r, t
    return _distinct(held)


def distinct(d: Ints, r: Ints, t: NDArray[np.int8]) -> Keys:
    """Keys sorted by (digest, record), a pair given twice kept once (two tokens sharing a
    prefix give one ``b`` key)."""
    return _distinct([d, r, t])


def _distinct(held: list[Any]) -> Keys:
    """``distinct`` of the columns in ``held``, which it empties: each column is replaced by
    its sorted copy as it goes, so no column is held twice (the caller keeps no reference)."""
    order = np.lexsort((held[1], held[0]))
    if order.shape[0] < 2**31:  # half the index array held beside each sorted copy
        order = order.astype(np.int32)
    for i in range(3):
        held[i] = held[i][order]
    del order
    d, r, t = held
    held.clear()
    if d.shape[0] > 1:
        keep = np.ones(d.shape[0], bool)
        keep[1:] = d[1:] != d[:-1]
        keep[1:] |= r[1:] != r[:-1]
        d = d[keep]
        r = r[keep]
        t = t[keep]
    return d, r, t


def in_order(d: Ints, r: Ints) -> bool:
    """Whether keys are already as ``distinct`` leaves them (sorted, each pair once)."""
    if d.shape[0] < 2:
        return True
    up = d[1:] > d[:-1]
    return bool(np.all(up | ((d[1:] == d[:-1]) & (r[1:] > r[:-1]))))
