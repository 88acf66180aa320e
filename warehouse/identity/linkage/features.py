"""People's comparable features as columns, computed once per distinct value.

A million person rows hold far fewer distinct names, companies and addresses: readings
(pykakasi), company keys and address folding are computed once per distinct value here, and
the result is kept as one list per field (``Columns``) instead of a million
``PersonFeatures`` objects. Large inputs are cut in two and computed by two processes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warehouse.identity.keys import matching as mt
from warehouse.identity.keys.normalize import normalize_phone
from warehouse.identity.keys.readings import is_japanese
from warehouse.identity.linkage.contacts import strip_extension
from warehouse.identity.linkage.frame import bulk

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
    # Fields computed once per distinct value: field → (row → index, the values). The frame
    # codes a column from its few distinct values instead of a million rows.
    groups: dict[str, tuple[NDArray[np.int64], list[Any]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def source(self, name: str) -> tuple[NDArray[np.int64], list[Any]]:
        """(row → index, distinct values) of the field ``name``: from the feature pass when
        it kept them, else counted here."""
        got = self.groups.get(name)
        if got is not None:
            return got
        table: dict[Any, int] = {}
        put = table.setdefault
        col = getattr(self, name)
        codes = np.fromiter((put(v, len(table)) for v in col), np.int64, len(col))
        return codes, list(table)

    @classmethod
    def of(cls, feats: Sequence[mt.PersonFeatures]) -> Columns:
        """Columns of feature objects (incremental runs and tests still build those)."""
        got: dict[str, Any] = {
            f.name: [getattr(x, f.name) for x in feats]
            for f in fields(cls)
            if f.name not in ("ids", "trusted", "groups")
        }
        got["ids"] = np.fromiter((x.id for x in feats), np.int64, len(feats))
        got["trusted"] = np.fromiter((x.trusted for x in feats), bool, len(feats))
        return cls(**got)

    @classmethod
    def concat(cls, parts: Sequence[Columns]) -> Columns:
        if not parts:
            return cls.of([])
        got: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("ids", "trusted"):
                got[f.name] = np.concatenate([getattr(p, f.name) for p in parts])
            elif f.name != "groups":
                got[f.name] = [v for p in parts for v in getattr(p, f.name)]
        groups: dict[str, tuple[NDArray[np.int64], list[Any]]] = {}
        for name in set.intersection(*(set(p.groups) for p in parts)):
            codes, values, base = [], [], 0
            for p in parts:
                c, v = p.groups[name]
                codes.append(c + base)
                values.extend(v)
                base += len(v)
            groups[name] = (np.concatenate(codes), values)
        return cls(**got, groups=groups)

    def take(self, rows: Sequence[int] | NDArray[np.int64]) -> Columns:
        """The given rows, in that order."""
        idx = np.asarray(rows, dtype=np.int64)
        got: dict[str, Any] = {}
        for f in fields(self):
            col = getattr(self, f.name)
            if f.name == "groups":
                got[f.name] = {k: (c[idx], v) for k, (c, v) in col.items()}
            else:
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


class _Work:
    """One pass's inputs, cut into distinct values: names, companies and attributes are
    computed once per distinct value, mail and phones per row."""

    def __init__(self, rows: Sequence[Row], settings: mt.MatchSettings) -> None:
        self.rows, self.settings = rows, settings
        adr, pcs, xs = (
            settings.address_attributes,
            settings.postcode_attributes,
            settings.id_attributes,
        )
        first = mt.first_attribute
        names: dict[tuple[Any, ...], int] = {}
        orgs: dict[str | None, int] = {}
        attrs: dict[tuple[Any, ...], int] = {}
        n = len(rows)
        self.ids = np.empty(n, np.int64)
        self.name_code = np.empty(n, np.int64)
        self.org_code = np.empty(n, np.int64)
        self.attr_code = np.empty(n, np.int64)
        self.corp: list[str] = []
        corps: dict[str, str] = {"": ""}  # one string per 法人番号, not one per row
        for k, (rid, fam, giv, fk, gk, full, bd, at, org, cn, _, _) in enumerate(rows):
            self.ids[k] = rid
            self.name_code[k] = names.setdefault((fam, giv, fk, gk, full), len(names))
            self.org_code[k] = orgs.setdefault(org or None, len(orgs))
            at = at or {}
            key = (
                bd,
                str(at.get("birth_date", "")) if bd is None else "",
                first(at, adr),
                first(at, pcs),
                first(at, xs),
            )
            self.attr_code[k] = attrs.setdefault(key, len(attrs))
            self.corp.append(corps.setdefault(cn or "", cn or ""))
        self.names, self.orgs, self.attrs = list(names), list(orgs), list(attrs)

    def sizes(self) -> dict[str, int]:
        return {
            "names": len(self.names),
            "orgs": len(self.orgs),
            "attrs": len(self.attrs),
            "contacts": len(self.rows),
        }

    def run(self, kind: str, lo: int, hi: int) -> list[Any]:
        s = self.settings
        if kind == "names":
            return [mt.name_part(*key) for key in self.names[lo:hi]]
        if kind == "orgs":
            return [mt.org_part(o) for o in self.orgs[lo:hi]]
        if kind == "attrs":
            return [mt.attribute_values(*key) for key in self.attrs[lo:hi]]
        return _contacts(self.rows[lo:hi], s)

    def columns(self, done: dict[str, list[Any]]) -> Columns:
        names = done["names"]
        nc, oc, ac = self.name_code, self.org_code, self.attr_code
        name = [names[c][0] for c in nc.tolist()]
        tokens = [names[c][1] for c in nc.tolist()]
        trusted = np.fromiter((x[2] for x in names), bool, len(names))[nc]
        orgs = [done["orgs"][c] for c in oc.tolist()]
        attrs = [done["attrs"][c] for c in ac.tolist()]
        contacts = done["contacts"]
        groups = {
            "name": (nc, [x[0] for x in names]),
            "tokens": (nc, [x[1] for x in names]),
            "org": (oc, [o[0] for o in done["orgs"]]),
            "legal": (oc, [o[1] for o in done["orgs"]]),
            "org_sound": (oc, [o[2] for o in done["orgs"]]),
            "dob": (ac, [a[0] for a in done["attrs"]]),
            "address": (ac, [a[1] for a in done["attrs"]]),
            "postcode": (ac, [a[2] for a in done["attrs"]]),
            "ext": (ac, [a[3] for a in done["attrs"]]),
        }
        return Columns(
            ids=self.ids,
            name=name,
            tokens=tokens,
            emails=[c[0][0] for c in contacts],
            phones=[c[1] for c in contacts],
            org=[o[0] for o in orgs],
            domain=[c[0][1] for c in contacts],
            dob=[a[0] for a in attrs],
            address=[a[1] for a in attrs],
            postcode=[a[2] for a in attrs],
            ext=[a[3] for a in attrs],
            trusted=trusted,
            corp=self.corp,
            legal=[o[1] for o in orgs],
            org_sound=[o[2] for o in orgs],
            groups=groups,
        )


def _contacts(rows: Sequence[Row], s: mt.MatchSettings) -> list[Any]:
    """``(mail_part, phone_part)`` of each row, each distinct address or number folded once
    (a switchboard or a person's mobile recurs on many rows)."""
    mails: dict[str, tuple[str, str] | None] = {}
    phones: dict[str, str | None] = {}
    domains: dict[str, str] = {}  # one string per company domain, not one per address
    free, aliases, region = s.free_mail_domains, s.provider_aliases, s.phone_region

    def mail(e: str) -> tuple[str, str] | None:
        got = mails.get(e, False)
        if got is False:
            got = None
            if "@" in e:
                c = mt.canonical_email(e, aliases)
                d = mt.company_domain(c, free)
                got = (c, domains.setdefault(d, d))
            mails[e] = got
        return got  # type: ignore[return-value]

    def phone(x: str) -> str | None:
        got = phones.get(x, False)
        if got is False:
            got = phones[x] = normalize_phone(strip_extension(x), region)
        return got  # type: ignore[return-value]

    out: list[Any] = []
    for row in rows:
        ems, phs = row[10], row[11]
        em: tuple[tuple[str, ...], str] = ((), "")
        if ems:
            found = {m for m in map(mail, ems) if m is not None}
            em = (
                tuple(sorted({c for c, _ in found})),
                min((d for _, d in found if d), default=""),
            )
        ph: tuple[str, ...] = ()
        if phs:
            ph = tuple(sorted({p for p in map(phone, phs) if p}))
        out.append((em, ph))
    return out


_WORK: _Work | None = None


def _run(task: tuple[str, int, int]) -> list[Any]:
    assert _WORK is not None
    return _WORK.run(*task)


def workers() -> int:
    """Processes for the feature pass: the machine's cores, at most two (``KIZUNA_IDENTITY_
    WORKERS`` overrides; 1 keeps everything in this process)."""
    env = os.environ.get("KIZUNA_IDENTITY_WORKERS", "")
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


@bulk
def compute(rows: Sequence[Row], settings: mt.MatchSettings) -> Columns:
    """Features of ``rows`` as columns (row k is ``rows[k]``); two processes when it pays.

    Each distinct name, company and attribute set is computed once (a dictionary reading
    costs about half a millisecond); the work is cut in halves that forked processes share,
    reading the input without copying it; only the results come back."""
    global _WORK
    work = _Work(rows, settings)
    procs = workers()
    parallel = procs >= 2 and len(rows) >= PARALLEL_ROWS and "fork" in mp.get_all_start_methods()
    tasks: list[tuple[str, int, int]] = []
    for kind, n in work.sizes().items():
        step = max(1, -(-n // (procs if parallel else 1)))
        tasks += [(kind, a, min(a + step, n)) for a in range(0, n, step)]
    if not parallel:
        got = [work.run(*t) for t in tasks]
    else:
        if any(is_japanese(o or "") for o in work.orgs[:1000]):
            mt.reading_tokens("田中")  # load the dictionary once, before the fork
        _WORK = work
        try:
            with mp.get_context("fork").Pool(procs) as pool:
                got = pool.map(_run, tasks, chunksize=1)
        finally:
            _WORK = None
    done: dict[str, list[Any]] = {k: [] for k in work.sizes()}
    for (kind, _, _), part in zip(tasks, got, strict=True):
        done[kind].extend(part)
    return work.columns(done)
