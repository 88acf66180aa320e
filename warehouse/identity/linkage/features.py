"""People's comparable features as columns, computed once per distinct value.

A million person rows hold far fewer distinct names, companies and addresses: readings
(pykakasi), company keys and address folding are computed once per distinct value here, and
the result is kept as each row's index into the distinct values (``Columns``) instead of a
million ``PersonFeatures`` objects. Mail addresses and phones are kept as (row, value) arrays,
never as a tuple per row. A run that reads its rows in ranges passes one ``Memo`` to every
range: a value the first range computed is not computed again, and the ranges share one
table of values, so joining them is joining integer arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warehouse.identity.keys import matching as mt
from warehouse.identity.keys.readings import _DIGITS, fold_text
from warehouse.identity.linkage.company_parts import Known
from warehouse.identity.linkage.frame import bulk, unique
from warehouse.identity.linkage.memo import Memo

# (id, family, given, family kana, given kana, full name, birth date, attributes,
#  organization name, 法人番号, emails, phones): one person row as the resolver reads it.
Row = tuple[
    int,
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    Any,
    dict[str, Any] | None,
    str | None,
    str | None,
    Sequence[str],
    Sequence[str],
]
Ints = NDArray[np.int64]
# A single-valued field: (row → index, the distinct values).
Group = tuple[Ints, list[Any]]
# A multi-valued field: (row of each value, value index, the values); rows ascending, each
# row's values distinct and in the order ``PersonFeatures`` keeps them (sorted).
Exploded = tuple[Ints, Ints, list[str]]
FIELDS = (
    "name",
    "tokens",
    "org",
    "domain",
    "dob",
    "address",
    "postcode",
    "ext",
    "corp",
    "legal",
    "org_sound",
)
MULTI_FIELDS = ("emails", "phones")


def starts(rec: Ints, n: int) -> Ints:
    """Offset of each row's first value in an exploded field (``n + 1`` entries)."""
    counts = np.bincount(rec, minlength=n)
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


@dataclass
class Columns:
    """The fields of ``PersonFeatures`` as columns: row k of each is one person."""

    ids: Ints
    trusted: NDArray[np.bool_]
    groups: dict[str, Group]
    multi: dict[str, Exploded]
    _starts: dict[str, Ints] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def source(self, name: str) -> Group:
        """(row → index, distinct values) of the single-valued field ``name``."""
        return self.groups[name]

    def exploded(self, name: str) -> Exploded:
        return self.multi[name]

    def column(self, name: str) -> list[Any]:
        """The field ``name``, one value per row (built on each call)."""
        codes, values = self.groups[name]
        return [values[c] for c in codes.tolist()]

    def _offsets(self, name: str) -> Ints:
        got = self._starts.get(name)
        if got is None:
            got = self._starts[name] = starts(self.multi[name][0], len(self))
        return got

    def row_values(self, name: str, k: int) -> tuple[str, ...]:
        _, val, values = self.multi[name]
        at = self._offsets(name)
        return tuple(values[v] for v in val[at[k] : at[k + 1]].tolist())

    @classmethod
    def of(cls, feats: Sequence[mt.PersonFeatures]) -> Columns:
        """Columns of feature objects (``privacy erase`` and tests build those)."""
        return cls.gather(
            np.fromiter((x.id for x in feats), np.int64, len(feats)),
            np.fromiter((x.trusted for x in feats), bool, len(feats)),
            lambda name: [getattr(x, name) for x in feats],
        )

    @classmethod
    def gather(
        cls, ids: Ints, trusted: NDArray[np.bool_], field: Callable[[str], Sequence[Any]]
    ) -> Columns:
        """Columns of rows given field by field: ``field(name)`` is that field's value per
        row (a tuple or list of strings for ``emails`` and ``phones``)."""
        groups: dict[str, Group] = {}
        n = int(ids.shape[0])
        for name in FIELDS:
            table: dict[Any, int] = {}
            put = table.setdefault
            codes = np.fromiter((put(v, len(table)) for v in field(name)), np.int64, n)
            groups[name] = (codes, list(table))
        multi: dict[str, Exploded] = {}
        for name in MULTI_FIELDS:
            per_row = field(name)
            vals: dict[str, int] = {}
            put_v = vals.setdefault
            counts = np.fromiter((len(v) for v in per_row), np.int64, n)
            rec = np.repeat(np.arange(n, dtype=np.int64), counts)
            val = np.fromiter(
                (put_v(v, len(vals)) for row in per_row for v in row), np.int64, int(counts.sum())
            )
            multi[name] = (rec, val, list(vals))
        return cls(ids=ids, trusted=trusted, groups=groups, multi=multi)

    @classmethod
    def concat(cls, parts: Sequence[Columns]) -> Columns:
        """One set of columns from ranges. Ranges computed with one ``Memo`` share their
        value tables, so only the integer arrays are joined; each table of another memo
        (ranges a second process read) is added once. A multi-valued field's values are
        then made distinct again: rows share an address by its index."""
        if not parts:
            return cls.of([])
        groups: dict[str, Group] = {}
        for name in FIELDS:
            got = [p.groups[name] for p in parts]
            at: dict[int, int] = {}
            values: list[Any] = got[0][1]
            if any(v is not values for _, v in got):
                values = []
                for _, v in got:
                    if id(v) not in at:
                        at[id(v)] = len(values)
                        values.extend(v)
            groups[name] = (np.concatenate([c + at.get(id(v), 0) for c, v in got]), values)
        multi: dict[str, Exploded] = {}
        for name in MULTI_FIELDS:
            ms = [p.multi[name] for p in parts]
            texts: list[str] = ms[0][2]
            remap: dict[int, Ints] = {}
            if any(v is not texts for _, _, v in ms):
                table: dict[str, int] = {}
                put = table.setdefault
                for _, _, v in ms:
                    if id(v) not in remap:
                        remap[id(v)] = np.fromiter(
                            (put(x, len(table)) for x in v), np.int64, len(v)
                        )
                texts = list(table)
            recs: list[Ints] = []
            base = 0
            for p, (rec, _, _) in zip(parts, ms, strict=True):
                recs.append(rec + base)
                base += len(p)
            vals = [remap[id(v)][val] if remap else val for _, val, v in ms]
            multi[name] = (np.concatenate(recs), np.concatenate(vals), texts)
        return cls(
            ids=np.concatenate([p.ids for p in parts]),
            trusted=np.concatenate([p.trusted for p in parts]),
            groups=groups,
            multi=multi,
        )

    def take(self, rows: Sequence[int] | Ints) -> Columns:
        """The given rows, in that order."""
        idx = np.asarray(rows, dtype=np.int64)
        multi: dict[str, Exploded] = {}
        for name, (_, val, values) in self.multi.items():
            at = self._offsets(name)
            cnt = np.diff(at)[idx]
            rec = np.repeat(np.arange(idx.shape[0], dtype=np.int64), cnt)
            off = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            multi[name] = (rec, val[np.repeat(at[idx], cnt) + off], values)
        return Columns(
            ids=self.ids[idx],
            trusted=self.trusted[idx],
            groups={k: (c[idx], v) for k, (c, v) in self.groups.items()},
            multi=multi,
        )

    def compact(self) -> Columns:
        """The same rows with only the values they use: a few rows taken from a run's
        columns otherwise carry every distinct value of the run, which keys would hash."""
        groups: dict[str, Group] = {}
        for name, (codes, values) in self.groups.items():
            used, inv = np.unique(codes, return_inverse=True)
            groups[name] = (inv.astype(np.int64).ravel(), [values[k] for k in used.tolist()])
        multi: dict[str, Exploded] = {}
        for name, (rec, val, texts) in self.multi.items():
            used, inv = np.unique(val, return_inverse=True)
            multi[name] = (rec, inv.astype(np.int64).ravel(), [texts[k] for k in used.tolist()])
        return Columns(ids=self.ids, trusted=self.trusted, groups=groups, multi=multi)

    def feature(self, k: int) -> mt.PersonFeatures:
        """Row ``k`` as one feature object (for an incremental run)."""
        g = {name: values[int(codes[k])] for name, (codes, values) in self.groups.items()}
        return mt.PersonFeatures(
            int(self.ids[k]),
            g["name"],
            g["tokens"],
            self.row_values("emails", k),
            self.row_values("phones", k),
            g["org"],
            g["domain"],
            g["dob"],
            g["address"],
            g["postcode"],
            g["ext"],
            bool(self.trusted[k]),
            g["corp"],
            g["legal"],
            g["org_sound"],
        )

    def features(self) -> list[mt.PersonFeatures]:
        """Every row as a feature object (to store them): each column spelled out once."""
        n = len(self)
        cols = {name: self.column(name) for name in FIELDS}
        multi: dict[str, list[tuple[str, ...]]] = {}
        for name in MULTI_FIELDS:
            _, val, values = self.multi[name]
            at = self._offsets(name).tolist()
            flat = [values[v] for v in val.tolist()]
            multi[name] = [tuple(flat[at[k] : at[k + 1]]) for k in range(n)]
        return [
            mt.PersonFeatures(*row)
            for row in zip(
                self.ids.tolist(),
                cols["name"],
                cols["tokens"],
                multi["emails"],
                multi["phones"],
                cols["org"],
                cols["domain"],
                cols["dob"],
                cols["address"],
                cols["postcode"],
                cols["ext"],
                self.trusted.tolist(),
                cols["corp"],
                cols["legal"],
                cols["org_sound"],
                strict=True,
            )
        ]


Flat = tuple[Ints, list[str]]  # a multi-valued field as typed: (row of each value, the value)


def flatten(per_row: list[Sequence[str]]) -> Flat:
    """Each row's values as (row, value) of every value."""
    counts = np.fromiter((len(v) for v in per_row), np.int64, len(per_row))
    rec = np.repeat(np.arange(len(per_row), dtype=np.int64), counts)
    return rec, [v for row in per_row for v in row]


def _exploded(
    memo: Memo, kind: str, typed: Flat, fill: Callable[[list[str], dict[str, int]], None]
) -> Exploded:
    """Each row's distinct canonical values, in text order, as (row, index) arrays (the
    values as typed may come in any order). They are looked up in one range only: they are
    nearly all distinct (a person's own address), and keeping them from range to range
    would keep every input string alive."""
    rec, flat = typed
    raw: dict[str, int] = {}
    fill(list(dict.fromkeys(flat)), raw)
    code = np.fromiter(map(raw.__getitem__, flat), np.int64, len(flat))
    values = memo.values[kind]
    ok = code >= 0
    rec, code = rec[ok], code[ok]
    if code.shape[0] == 0:
        return rec, code, values
    uniq, inv = np.unique(code, return_inverse=True)
    text = [values[c] for c in uniq.tolist()]
    order = np.asarray(sorted(range(len(text)), key=text.__getitem__), np.int64)
    rank = np.empty(uniq.shape[0], np.int64)
    rank[order] = np.arange(uniq.shape[0], dtype=np.int64)
    span = int(uniq.shape[0])
    both = unique(rec * span + rank[inv.reshape(-1)])  # rows ascending, text order within
    return both // span, uniq[order][both % span], values


def _row_domain(memo: Memo, n: int, mail: Exploded) -> Ints:
    """Each row's company domain: the first in text order among its addresses' ('' none)."""
    rec, val, _ = mail
    dom = np.frombuffer(memo.mail_domain, np.int64)[val] if val.shape[0] else val
    keep = dom > 0
    rec, dom = rec[keep], dom[keep]
    out = np.zeros(n, np.int64)
    if dom.shape[0] == 0:
        return out
    uniq, inv = np.unique(dom, return_inverse=True)
    dvalues = memo.values["domain"]
    text = [dvalues[c] for c in uniq.tolist()]
    order = np.asarray(sorted(range(len(text)), key=text.__getitem__), np.int64)
    rank = np.empty(uniq.shape[0], np.int64)
    rank[order] = np.arange(uniq.shape[0], dtype=np.int64)
    best = np.full(n, uniq.shape[0], np.int64)
    np.minimum.at(best, rec, rank[inv.reshape(-1)])
    has = best < uniq.shape[0]
    out[has] = uniq[order][best[has]]
    return out


@bulk
def compute(
    rows: Sequence[Row],
    settings: mt.MatchSettings,
    memo: Memo | None = None,
    contacts: tuple[Flat, Flat] | None = None,
    known: Known | None = None,
) -> Columns:
    """Features of ``rows`` as columns (row k is ``rows[k]``).

    Each distinct name, company, address and contact is computed once per run (a
    dictionary reading costs about half a millisecond): give every range of one run the
    same ``memo``. ``contacts``: the rows' mail addresses and phones as read, (row, value)
    pairs in any order, in place of the rows' own lists (a range's are never grouped by
    row). ``known``: company names' parts stored by earlier runs (``company_parts``)."""
    own = memo is None
    memo = memo if memo is not None else Memo(settings)
    n = len(rows)
    memo.rows += n
    ids = np.fromiter((r[0] for r in rows), np.int64, n)
    # Companies first: in a large run a second process reads them while this one goes on.
    org_code = memo.code("orgs", (r[8] or None for r in rows), n, lambda x: memo.orgs(x, known))
    name_code = memo.code("names", (r[1:6] for r in rows), n, memo._names)
    corp_code = memo.code("corp", (r[9] or "" for r in rows), n, memo.values["corp"].extend)
    adr, pcs, xs = (
        settings.address_attributes,
        settings.postcode_attributes,
        settings.id_attributes,
    )
    first = mt.first_attribute
    dobs: list[tuple[Any, str]] = []
    addresses: list[str] = []
    postcodes: list[str] = []
    exts: list[str] = []
    for r in rows:
        bd, at = r[6], r[7] or {}
        dobs.append((bd, str(at.get("birth_date", "")) if bd is None else ""))
        addresses.append(first(at, adr))
        postcodes.append(first(at, pcs))
        exts.append(first(at, xs))
    dob_code = memo.code("dob", dobs, n, memo._dobs)
    address_values, postcode_values, ext_values = (
        memo.values["address"],
        memo.values["postcode"],
        memo.values["ext"],
    )
    address_code = memo.code(
        "address", addresses, n, lambda new: address_values.extend(map(fold_text, new))
    )
    postcode_code = memo.code(
        "postcode",
        postcodes,
        n,
        lambda new: postcode_values.extend(_DIGITS.sub("", p) for p in new),
    )
    ext_code = memo.code(
        "ext",
        exts,
        n,
        lambda new: ext_values.extend(fold_text(x).replace(" ", "") for x in new),
    )
    del dobs, addresses, postcodes, exts
    if contacts is None:
        contacts = flatten([r[10] or () for r in rows]), flatten([r[11] or () for r in rows])
    mail = _exploded(memo, "emails", contacts[0], memo._mail)
    phone = _exploded(memo, "phones", contacts[1], memo._phone)
    v = memo.values
    groups: dict[str, Group] = {
        "name": (name_code, v["name"]),
        "tokens": (name_code, v["tokens"]),
        "org": (org_code, v["org"]),
        "legal": (org_code, v["legal"]),
        "org_sound": (org_code, v["org_sound"]),
        "corp": (corp_code, v["corp"]),
        "domain": (_row_domain(memo, n, mail), v["domain"]),
        "dob": (dob_code, v["dob"]),
        "address": (address_code, address_values),
        "postcode": (postcode_code, postcode_values),
        "ext": (ext_code, ext_values),
    }
    trusted = np.frombuffer(memo.trusted, np.int8)[name_code] > 0 if n else np.zeros(0, bool)
    memo.finish()
    if own:
        memo.close()
    return Columns(ids, trusted, groups, {"emails": mail, "phones": phone})
