"""People as columns: one numpy array per comparable field, so pairs are compared in bulk.

Built once per run from the features the resolver keeps (``matching.PersonFeatures``).
Multi-valued fields (mail addresses, phones, local parts) are exploded to (row, value code)
arrays; a value several different names use (a team mailbox, a switchboard) is marked shared
here, from the data, so that it counts as workplace evidence and never as the person's.
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import numpy as np
from numpy.typing import NDArray

from warehouse.identity.keys.readings import _GENERIC_LOCAL, is_japanese
from warehouse.identity.linkage.contacts import (
    is_personal_phone,
    name_counts,
    role_mailboxes,
)

if TYPE_CHECKING:
    from warehouse.identity.keys.matching import PersonFeatures
    from warehouse.identity.linkage.features import Columns

K = TypeVar("K", bound=Hashable)
P = ParamSpec("P")
R = TypeVar("R")


def bulk(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with the cyclic collector off: a million-row pass allocates millions of
    tuples and strings that die by reference counting, and the collector walking them every
    700 allocations was a quarter of the pass. Nothing here makes cycles. What the pass
    freed is handed back to the system after it (``release``): the next pass's large arrays
    would otherwise come on top of pages the allocator keeps."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()
            release()

    return run


@functools.cache
def _libc() -> ctypes.CDLL | None:
    # The running program's own symbols (libc among them): ``find_library`` would start
    # ``ldconfig``, forking a process that holds a million rows.
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def release() -> None:
    """Hand freed heap back to the system between bulk passes. glibc keeps what a pass
    freed for later allocations of the same kind, so a million-row run's resident memory
    would be the sum of its passes' leftovers rather than their peak (a feature pass leaves
    ≈ 0.25 GB behind). A no-op where there is no ``malloc_trim``."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        trim(0)


Strs = NDArray[np.object_]
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]
# A column's codes: int32 halves the ≈ 25 coded columns of a million rows (0.27 → 0.13 GB).
# Products of codes (blocking keys, pairs of values) are formed in int64: cast first.
Codes = NDArray[np.int32]
Idx = NDArray[np.signedinteger[Any]]


def unique(a: Ints) -> Ints:
    """``np.unique(a)`` by one sort: numpy 2.4 counts a plain unique of integers with a hash
    table, ≈ 100× slower than sorting them (4.3 s against 0.05 s for 5 M pair codes)."""
    s = np.sort(a)
    keep = np.ones(s.shape[0], bool)
    keep[1:] = s[1:] != s[:-1]
    out: Ints = s[keep]
    return out


def runs(lo: Ints, n: Ints) -> Ints:
    """The positions ``lo[k] … lo[k] + n[k] - 1`` of every run ``k``, one after another."""
    out: Ints = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()), dtype=np.int64)
    return out


def first_seen(codes: Idx, size: int) -> tuple[Ints, Ints]:
    """``np.unique(codes, return_index=True)`` for codes in ``0 … size - 1``: the distinct
    codes ascending and where each first occurs, by one pass instead of a sort (1.5 M codes:
    0.2 s → 0.01 s, thirteen columns a run)."""
    n = codes.shape[0]
    first = np.full(size, n, np.int64)
    np.minimum.at(first, codes, np.arange(n, dtype=np.int64))
    seen = np.flatnonzero(first < n)
    return seen, first[seen]


def isin(a: Ints, b: Ints) -> Bools:
    """``np.isin(a, b)`` by one sort of ``b`` and a binary search per element (numpy's own
    went through its slow unique: 3.9 s against 0.2 s for 0.3 M in 5 M)."""
    if b.shape[0] == 0 or a.shape[0] == 0:
        return np.zeros(a.shape[0], bool)
    s = np.sort(b)
    pos = np.minimum(np.searchsorted(s, a), s.shape[0] - 1)
    out: Bools = s[pos] == a
    return out


@dataclass
class Multi:
    """A multi-valued field: row ``rec[k]`` holds value code ``val[k]`` (``rec`` ascending)."""

    rec: Ints
    val: Ints
    shared: Bools  # per value code
    values: list[str]
    _member: Ints | None = field(default=None, repr=False)
    _start: Ints | None = field(default=None, repr=False)
    _single: Ints | None = field(default=None, repr=False)

    def membership(self) -> Ints:
        """Sorted codes ``row * V + value`` for fast "does row j hold value v" checks
        (computed once: every comparison pass asks)."""
        if self._member is None:
            # Rows come in order, so the codes are sorted but for each row's few values: a
            # stable (merge) sort is then a linear pass, where a general unique sorts anew.
            key = np.sort(self.rec * len(self.values) + self.val, kind="stable")
            keep = np.ones(key.shape[0], bool)
            keep[1:] = key[1:] != key[:-1]
            self._member = key[keep]
        return self._member

    def holds(self, rows: Ints, vals: Ints) -> Bools:
        """Does row ``rows[k]`` hold value ``vals[k]``? (a binary search per pair)"""
        member = self.membership()
        key = rows * len(self.values) + vals
        if member.shape[0] == 0:
            return np.zeros(key.shape[0], bool)
        pos = np.minimum(np.searchsorted(member, key), member.shape[0] - 1)
        out: Bools = member[pos] == key
        return out

    def single(self, n: int) -> Ints:
        """Per row: its value when it holds exactly one, -1 when none, -2 when several."""
        if self._single is None or self._single.shape[0] != n:
            counts = np.bincount(self.rec, minlength=n)
            out = np.where(counts == 0, -1, -2).astype(np.int64)
            ones = counts[self.rec] == 1
            out[self.rec[ones]] = self.val[ones]
            self._single = out
        return self._single

    def starts(self, n: int) -> Ints:
        """Offset of each row's first value in ``val`` (``n + 1`` entries)."""
        if self._start is None or self._start.shape[0] != n + 1:
            counts = np.bincount(self.rec, minlength=n)
            self._start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return self._start


@dataclass
class Coded:
    """A column as integer codes: ``values[codes[row]]`` is the row's value; code 0 is empty.

    Comparisons work on codes (presence, equality, and similarity once per distinct pair of
    values), so a million rows of repeated names cost a dictionary pass, not a million
    string comparisons."""

    codes: Codes
    values: list[str]


def encode(col: Strs) -> Coded:
    table: dict[str, int] = {"": 0}
    put = table.setdefault
    codes = np.fromiter((put(v, len(table)) for v in col), np.int32, col.shape[0])
    return Coded(codes, list(table))


def encode_from(values: Sequence[str], src: Ints) -> Coded:
    """``encode`` of the column ``values[src]``, from its distinct values: the same codes
    (numbered as rows first show them, '' is 0) for a dictionary pass over the values
    only, not over a million rows."""
    table: dict[str, int] = {"": 0}
    put = table.setdefault
    loc = np.fromiter((put(v, len(table)) for v in values), np.int64, len(values))
    names = list(table)
    row = loc[src]
    seen, first = first_seen(row, len(names))
    keep = seen > 0
    order = seen[keep][np.argsort(first[keep], kind="stable")]
    remap = np.zeros(len(names), np.int32)
    remap[order] = np.arange(1, order.shape[0] + 1)
    return Coded(remap[row], ["", *(names[k] for k in order.tolist())])


JOINT = {
    "fam": ("fam", "giv"),
    "giv": ("fam", "giv"),
    "dob": ("dob", "dob_swap"),
    "dob_swap": ("dob", "dob_swap"),
}


@dataclass
class Frame:
    """People as columns. The text columns (``fam``, ``giv``, ``full``, ``nameset`` (reading
    tokens sorted: TANAKA Taro and Taro Tanaka alike), ``name``, ``dob``, ``dob_swap``,
    ``address``, ``postcode``, ``ext``, ``org``, ``org_sound``, ``legal``, ``corp``,
    ``domain``) are kept as their distinct values and each row's index into them, never as a
    million strings: ``coded`` numbers them, ``column`` and ``value`` spell them out."""

    ids: Ints
    japanese: Bools
    trusted: Bools
    email: Multi
    phone: Multi
    local: Multi
    # column → (distinct values, row → index)
    _sources: dict[str, tuple[Sequence[str], Ints]] = field(default_factory=dict, repr=False)
    _coded: dict[str, Coded] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def column(self, name: str) -> Strs:
        """The text column ``name``, one string per row (built on each call)."""
        values, codes = self._sources[name]
        out: Strs = _arr(values)[codes]
        return out

    def value(self, name: str, row: int) -> str:
        values, codes = self._sources[name]
        return values[int(codes[row])]

    def code_all(self) -> None:
        """Every column as codes (``coded`` of each)."""
        for name in self._sources:
            self.coded(name)

    def coded(self, name: str) -> Coded:
        """The column ``name`` (``fam``, or ``fam:4`` for its first four characters) as codes,
        computed once per frame."""
        got = self._coded.get(name)
        if got is None:
            col, _, cut = name.partition(":")
            if cut:
                whole = self.coded(col)
                n = int(cut)
                got = encode(np.asarray([v[:n] for v in whole.values], dtype=object))
                got = Coded(got.codes[whole.codes], got.values)
            elif col in JOINT:
                # Columns compared with each other (family with given when names come in
                # either order; a birth date with its day–month swap) share one code table.
                group = JOINT[col]
                values: list[str] = []
                rows: list[Ints] = []
                for vals, codes in (self._sources[g] for g in group):
                    rows.append(codes + len(values))
                    values.extend(vals)
                whole = encode_from(values, np.concatenate(rows))
                n = len(self)
                for k, g in enumerate(group):
                    self._coded[g] = Coded(whole.codes[k * n : (k + 1) * n], whole.values)
                got = self._coded[col]
            else:
                got = encode_from(*self._sources[col])
            self._coded[name] = got
        return got


def _arr(values: Sequence[object]) -> Strs:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _distinct(values: Sequence[K]) -> tuple[list[K], Ints]:
    """(distinct values in first-seen order, code of each row): per-value work is then done
    once per distinct value and spread back with one array index."""
    table: dict[K, int] = {}
    put = table.setdefault
    codes = np.fromiter((put(v, len(table)) for v in values), np.int64, len(values))
    return list(table), codes


def _name_key(tokens: tuple[str, ...], trusted: bool, name: str) -> tuple[str, ...]:
    """Who uses a value: the name's reading tokens (or its written form). A given name read
    only by the dictionary is left out: its guess (学 = gaku) may not be the person's."""
    if not trusted and tokens and is_japanese(name):
        return (tokens[0], "*")
    return tokens or ((name,) if name else ())


def _codes(rec: Ints, val: Ints, values: list[str]) -> tuple[Ints, Ints, list[str]]:
    """(row, value code) of every value of a multi-valued column, and the values, numbered
    as rows first show them (rows in order, each row's values in its order)."""
    if val.shape[0] == 0:
        return rec, val, []
    seen, first = first_seen(val, len(values))
    order = seen[np.argsort(first, kind="stable")]
    remap = np.empty(len(values), np.int64)
    remap[order] = np.arange(order.shape[0], dtype=np.int64)
    return rec, remap[val], [values[k] for k in order.tolist()]


def _repeated(
    rec: Ints,
    val: Ints,
    values: list[str],
    keys: tuple[Sequence[tuple[str, ...]], Ints],
) -> list[tuple[str, tuple[str, ...]]]:
    """(value, name key) where a value is held under two or more different name keys: the
    first row of each (value, name) in row order. Only those can be shared, so the name
    comparisons that decide it never see the million values one person holds (a row's
    second source, a typo of the same name): counting them is arithmetic on codes.
    ``keys`` are the distinct name keys and each row's index into them."""
    key_d, who = keys
    canon: dict[tuple[str, ...], int] = {}
    put = canon.setdefault
    name = np.fromiter((put(k, len(canon)) if k else -1 for k in key_d), np.int64, len(key_d))
    blank = np.fromiter((not v for v in values), bool, len(values))
    row_name = name[who[rec]]
    at = np.flatnonzero((row_name >= 0) & ~blank[val])
    if at.shape[0] == 0:
        return []
    pair = val[at] * max(len(canon), 1) + row_name[at]
    order = np.argsort(pair, kind="stable")
    first = np.ones(order.shape[0], bool)
    first[1:] = pair[order][1:] != pair[order][:-1]
    at = np.sort(at[order[first]])  # each (value, name) once, where rows first show it
    names = np.bincount(val[at], minlength=len(values))
    pick = at[names[val[at]] >= 2]
    return [
        (values[v], key_d[k])
        for k, v in zip(who[rec[pick]].tolist(), val[pick].tolist(), strict=True)
    ]


def _flagged(rec: Ints, val: Ints, values: list[str], shared: set[str]) -> Multi:
    flag = np.zeros(len(values), bool)
    if shared:
        flag = np.fromiter((v in shared for v in values), bool, len(values))
    return Multi(rec, val, flag, values)


def _locals(mail: tuple[Ints, Ints, list[str]], role: set[str]) -> Multi:
    """Each row's personal local parts (four characters or more, not generic, not a role
    mailbox's): one pass over the distinct addresses, then arrays."""
    rec, val, addresses = mail
    table: dict[str, int] = {"": 0}
    put = table.setdefault
    generic = _GENERIC_LOCAL

    heads = [a.partition("@")[0] for a in addresses]
    code = np.fromiter(
        (
            put(h if len(h) >= 4 and h not in generic and a not in role else "", len(table))
            for h, a in zip(heads, addresses, strict=True)
        ),
        np.int64,
        len(addresses),
    )
    hc = code[val]
    keep = hc > 0
    span = len(table)
    both = unique(rec[keep] * span + hc[keep])  # one value once per row, rows ascending
    values = list(table)[1:]
    return Multi(both // span, both % span - 1, np.zeros(len(values), bool), values)


def build(feats: Sequence[PersonFeatures]) -> Frame:
    """The columnar form of ``feats`` (row k is ``feats[k]``)."""
    from warehouse.identity.linkage.features import Columns

    return build_columns(Columns.of(feats))


@bulk
def build_columns(cols: Columns) -> Frame:
    """The frame of feature columns: per-name work once per distinct reading."""
    tcode, toks = cols.source("tokens")
    fam_d = [t[0] if t else "" for t in toks]
    giv_d = ["".join(t[1:]) for t in toks]
    full_d = [a + b for a, b in zip(fam_d, giv_d, strict=True)]
    set_d = ["".join(sorted(t)) for t in toks]
    ncode, names = cols.source("name")
    jap_d = np.fromiter((is_japanese(x) for x in names), bool, len(names))
    japanese = jap_d[ncode]
    trusted = np.asarray(cols.trusted, bool)
    # Who uses a value, per distinct (reading, trusted, written name).
    combo = (tcode * 2 + trusted) * max(len(names), 1) + ncode
    first, who = np.unique(combo, return_index=True, return_inverse=True)[1:]
    key_d = [
        _name_key(toks[t], tr, names[nm])
        for t, tr, nm in zip(
            tcode[first].tolist(), trusted[first].tolist(), ncode[first].tolist(), strict=True
        )
    ]
    keys = (key_d, who.reshape(-1))
    mail = _codes(*cols.exploded("emails"))
    mail_users = set(name_counts(_repeated(*mail, keys), 2))
    # A mobile shared by two names may be a company phone; a landline shared is a switchboard.
    phone = _codes(*cols.exploded("phones"))
    phone_names = name_counts(_repeated(*phone, keys), 3)
    phone_users = {p for p, n in phone_names.items() if n >= 2}
    mobile_users = {p for p, n in phone_names.items() if n >= 3}
    # Each distinct address is checked once (most rows have one or two of their own).
    role = role_mailboxes(mail[2])
    phone_shared = {p for p in phone_users if not is_personal_phone(p)} | mobile_users
    dcode, dobs = cols.source("dob")
    swap_d = [d[:4] + d[6:] + d[4:6] if len(d) == 8 else "" for d in dobs]
    sources: dict[str, tuple[Sequence[str], Ints]] = {
        "fam": (fam_d, tcode),
        "giv": (giv_d, tcode),
        "full": (full_d, tcode),
        "nameset": (set_d, tcode),
        "name": (names, ncode),
        "dob": (dobs, dcode),
        "dob_swap": (swap_d, dcode),
    }
    for col in ("address", "postcode", "ext", "org", "org_sound", "legal", "corp", "domain"):
        code, values = cols.source(col)
        sources[col] = (values, code)
    return Frame(
        ids=cols.ids,
        japanese=japanese,
        trusted=trusted,
        email=_flagged(*mail, mail_users | role),
        phone=_flagged(*phone, phone_shared),
        local=_locals(mail, role),
        _sources=sources,
    )
