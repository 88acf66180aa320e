"""People's comparable features as columns, computed once per distinct value.

A million person rows hold far fewer distinct names, companies and addresses: readings
(pykakasi), company keys and address folding are computed once per distinct value here, and
the result is kept as one list per field (``Columns``) instead of a million
``PersonFeatures`` objects. Large inputs are cut in two and computed by two processes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from warehouse.identity import matching as mt

K = TypeVar("K")
V = TypeVar("V")

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
PARALLEL_ROWS = 200_000  # below this a second process costs more than it saves


@dataclass
class Columns:
    """The fields of ``PersonFeatures``, one list per field, row k of each is one person."""

    ids: NDArray[np.int64]
    name: list[str]
    tokens: list[tuple[str, ...]]
    emails: list[tuple[str, ...]]
    phones: list[tuple[str, ...]]
    org: list[str]
    domain: list[str]
    dob: list[str]
    address: list[str]
    postcode: list[str]
    ext: list[str]
    trusted: NDArray[np.bool_]
    corp: list[str]
    legal: list[str]
    org_sound: list[str]

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def of(cls, feats: Sequence[mt.PersonFeatures]) -> Columns:
        """Columns of feature objects (incremental runs and tests still build those)."""
        got: dict[str, Any] = {
            f.name: [getattr(x, f.name) for x in feats]
            for f in fields(cls)
            if f.name not in ("ids", "trusted")
        }
        got["ids"] = np.fromiter((x.id for x in feats), np.int64, len(feats))
        got["trusted"] = np.fromiter((x.trusted for x in feats), bool, len(feats))
        return cls(**got)

    @classmethod
    def concat(cls, parts: Sequence[Columns]) -> Columns:
        got: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("ids", "trusted"):
                got[f.name] = np.concatenate([getattr(p, f.name) for p in parts])
            else:
                got[f.name] = [v for p in parts for v in getattr(p, f.name)]
        return cls(**got)

    def take(self, rows: Sequence[int] | NDArray[np.int64]) -> Columns:
        """The given rows, in that order."""
        idx = np.asarray(rows, dtype=np.int64)
        got: dict[str, Any] = {}
        for f in fields(self):
            col = getattr(self, f.name)
            got[f.name] = col[idx] if isinstance(col, np.ndarray) else [col[k] for k in idx]
        return Columns(**got)

    def feature(self, k: int) -> mt.PersonFeatures:
        """Row ``k`` as one feature object (to store it, or for an incremental run)."""
        return mt.PersonFeatures(
            int(self.ids[k]),
            self.name[k],
            self.tokens[k],
            self.emails[k],
            self.phones[k],
            self.org[k],
            self.domain[k],
            self.dob[k],
            self.address[k],
            self.postcode[k],
            self.ext[k],
            bool(self.trusted[k]),
            self.corp[k],
            self.legal[k],
            self.org_sound[k],
        )


def _memo(fn: Callable[..., V]) -> Callable[..., V]:
    """``fn`` computed once per distinct argument tuple within one pass."""
    seen: dict[Any, V] = {}

    def call(*args: Any) -> V:
        got = seen.get(args)
        if got is None:
            got = seen[args] = fn(*args)
        return got

    return call


def _compute(rows: Sequence[Row], settings: mt.MatchSettings) -> Columns:
    name_of = _memo(mt.name_part)
    org_of = _memo(mt.org_part)
    attr_of = _memo(mt.attribute_values)
    adr, pcs, xs = settings.address_attributes, settings.postcode_attributes, settings.id_attributes
    first = mt.first_attribute
    n = len(rows)
    ids = np.empty(n, np.int64)
    trusted = np.empty(n, bool)
    cols: dict[str, list[Any]] = {f.name: [] for f in fields(Columns)}
    name, tokens, emails, phones = cols["name"], cols["tokens"], cols["emails"], cols["phones"]
    org, domain, dob, address = cols["org"], cols["domain"], cols["dob"], cols["address"]
    postcode, ext, corp, legal = cols["postcode"], cols["ext"], cols["corp"], cols["legal"]
    sound = cols["org_sound"]
    for k, (rid, fam, giv, fk, gk, full, bd, attrs, org_name, cn, ems, phs) in enumerate(rows):
        ids[k] = rid
        nm, tk, tr = name_of(fam, giv, fk, gk, full)
        name.append(nm)
        tokens.append(tk)
        trusted[k] = tr
        e, d = mt.mail_part(ems, settings) if ems else ((), "")
        emails.append(e)
        domain.append(d)
        phones.append(mt.phone_part(phs, settings) if phs else ())
        o, lg, sd = org_of(org_name or None)
        org.append(o)
        legal.append(lg)
        sound.append(sd)
        at = attrs or {}
        b, a, p, x = attr_of(
            bd,
            str(at.get("birth_date", "")) if bd is None else "",
            first(at, adr),
            first(at, pcs),
            first(at, xs),
        )
        dob.append(b)
        address.append(a)
        postcode.append(p)
        ext.append(x)
        corp.append(cn or "")
    got: dict[str, Any] = dict(cols)
    got["ids"], got["trusted"] = ids, trusted
    return Columns(**got)


_SHARED: tuple[Sequence[Row], mt.MatchSettings] | None = None


def _compute_slice(bounds: tuple[int, int]) -> Columns:
    assert _SHARED is not None
    rows, settings = _SHARED
    return _compute(rows[bounds[0] : bounds[1]], settings)


def workers() -> int:
    """Processes for the feature pass: the machine's cores, at most two (``KIZUNA_IDENTITY_
    WORKERS`` overrides; 1 keeps everything in this process)."""
    env = os.environ.get("KIZUNA_IDENTITY_WORKERS", "")
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


def compute(rows: Sequence[Row], settings: mt.MatchSettings) -> Columns:
    """Features of ``rows`` as columns (row k is ``rows[k]``); two processes when it pays.

    The children are forked, so they read ``rows`` without copying them; only the columns
    come back."""
    procs = workers()
    if procs < 2 or len(rows) < PARALLEL_ROWS or "fork" not in mp.get_all_start_methods():
        return _compute(rows, settings)
    global _SHARED
    _SHARED = (rows, settings)
    step = -(-len(rows) // procs)
    bounds = [(a, min(a + step, len(rows))) for a in range(0, len(rows), step)]
    try:
        with mp.get_context("fork").Pool(procs - 1) as pool:
            rest = pool.map_async(_compute_slice, bounds[1:])
            first = _compute_slice(bounds[0])
            parts = [first, *rest.get()]
    finally:
        _SHARED = None
    return Columns.concat(parts)
