"""The distinct values one identity run has seen, kept from range to range.

A run reads its people in ranges; names, companies, addresses and contacts repeat across
them. ``Memo`` keeps each distinct value's index and what it gave (a dictionary reading costs
about half a millisecond), so no range computes a value an earlier one did, and company
names, the costliest, go to a second process in large runs. ``features`` turns a range's rows
into columns of these indexes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import weakref
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from itertools import islice
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warehouse.identity.keys import matching as mt
from warehouse.identity.keys.normalize import normalize_phone
from warehouse.identity.keys.readings import _DIGITS
from warehouse.identity.linkage.company_parts import Known, Parts
from warehouse.identity.linkage.contacts import strip_extension
from warehouse.memory import room

Ints = NDArray[np.int64]
# From this many rows in one run, company names are read by a second process while this one
# does the rest: a dictionary reading of a company name is the costliest value there is.
PARALLEL_ROWS = 100_000
HELPER_BATCH = 2_000  # fewer new company names than this are read here


def workers() -> int:
    """Processes for the feature pass: the machine's cores, at most two (``KIZUNA_IDENTITY_
    WORKERS`` overrides; 1 keeps everything in this process)."""
    env = os.environ.get("KIZUNA_IDENTITY_WORKERS", "")
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


class Memo:
    """Distinct values one run has seen and what they gave, kept from range to range.

    ``keys[kind]`` maps a raw value (a name as written and read, a company as written, an
    address; for mail and phones the canonical value) to its index; ``values[field]`` holds
    the computed
    fields, one entry per index, appended as new values arrive (earlier ranges' indexes stay
    valid, and their columns share the lists)."""

    def __init__(self, settings: mt.MatchSettings, helper: bool = True) -> None:
        self.settings = settings
        self.rows = 0
        self._may_help = helper  # False in a process that is itself the second one
        self._pool: Any = None
        self._pending: Any = None
        self.keys: dict[str, dict[Any, int]] = defaultdict(dict)
        self.values: dict[str, list[Any]] = defaultdict(list)
        self.trusted = array("b")
        self.mail_domain = array("q")  # per canonical address: its company domain's index
        self.read: list[tuple[str, Parts]] = []  # company names read, not found stored
        self.keys["domain"][""] = 0
        self.values["domain"].append("")

    def code(
        self, kind: str, raw: Iterable[Any], n: int, compute: Callable[[list[Any]], None]
    ) -> Ints:
        """Each raw value's index; ``compute`` is given the values not seen before, in
        index order, and appends their results."""
        table = self.keys[kind]
        old = len(table)
        put = table.setdefault
        codes = np.fromiter((put(v, len(table)) for v in raw), np.int64, n)
        if len(table) > old:
            compute(list(islice(table, old, None)))
        return codes

    def _names(self, new: list[Any]) -> None:
        for key in new:
            name, tokens, trusted = mt.name_part(*key)
            self.values["name"].append(name)
            self.values["tokens"].append(tokens)
            self.trusted.append(trusted)

    def orgs(self, new: list[Any], known: Known | None = None) -> None:
        """The parts of new company names: those ``known`` has stored are taken from it,
        the rest read (by the second process when there are many) and kept in ``read``."""
        got = known(new) if known is not None else {}
        missing = [n for n in new if n not in got]
        pool = self._helper() if len(missing) >= HELPER_BATCH else None
        if pool is not None and not room():
            self.close()  # no room left for it beside this process: read here from now on
            self._may_help, pool = False, None
        if pool is None:
            self._put_orgs(new, got, missing, mt.org_parts(missing))
        else:
            self._pending = (new, got, missing, pool.apply_async(mt.org_parts, (missing,)))

    def _put_orgs(
        self, new: list[Any], got: dict[str, Parts], missing: list[Any], parts: list[Parts]
    ) -> None:
        read = dict(zip(missing, parts, strict=True))
        self.read.extend((n, read[n]) for n in missing if n)
        for name in new:
            org, legal, sound = got[name] if name in got else read[name]
            self.values["org"].append(org)
            self.values["legal"].append(legal)
            self.values["org_sound"].append(sound)

    def take_read(self) -> list[tuple[str, Parts]]:
        """The company names read (not found stored) since the last call, with their parts."""
        out, self.read = self.read, []
        return out

    def _helper(self) -> Any:
        """The second process, started once a run is large enough to pay for it; it keeps
        its own reading caches from range to range."""
        if self._pool is None and self._may_help and self.rows >= PARALLEL_ROWS and workers() >= 2:
            if "fork" not in mp.get_all_start_methods():
                return None
            mt.reading_tokens("田中")  # the dictionary loaded once, shared with the fork
            self._pool = mp.get_context("fork").Pool(1)
            weakref.finalize(self, self._pool.terminate)
        return self._pool

    def finish(self) -> None:
        """Wait for what the second process is computing (the end of each range)."""
        if self._pending is not None:
            (new, got, missing, parts), self._pending = self._pending, None
            self._put_orgs(new, got, missing, parts.get())

    def close(self) -> None:
        """Stop the second process (the feature pass is over)."""
        self.finish()
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    def _dobs(self, new: list[Any]) -> None:
        """YYYYMMDD of a birth date column (a date, or the ISO text SQLite keeps and a
        range's rows bring as read), else the digits of a birth date attribute."""
        self.values["dob"].extend(
            _day(bd).strftime("%Y%m%d") if bd is not None else _DIGITS.sub("", text)
            for bd, text in new
        )

    def _mail(self, new: list[str], raw: dict[str, int]) -> None:
        """Canonical index of each address as typed (-1: not an address) into ``raw``."""
        table = self.keys["emails"]
        domains, dvalues = self.keys["domain"], self.values["domain"]
        values = self.values["emails"]
        aliases, free = self.settings.provider_aliases, self.settings.free_mail_domains
        for e in new:
            if "@" not in e:
                raw[e] = -1
                continue
            c = mt.canonical_email(e, aliases)
            k = table.get(c)
            if k is None:
                k = table[c] = len(values)
                values.append(c)
                d = mt.company_domain(c, free)
                dk = domains.get(d)
                if dk is None:
                    dk = domains[d] = len(dvalues)
                    dvalues.append(d)
                self.mail_domain.append(dk)
            raw[e] = k

    def _phone(self, new: list[str], raw: dict[str, int]) -> None:
        table = self.keys["phones"]
        values, region = self.values["phones"], self.settings.phone_region
        for x in new:
            p = _plain_jp(x) if region == "JP" else None
            if p is None:
                p = normalize_phone(strip_extension(x), region)
            if not p:
                raw[x] = -1
                continue
            k = table.get(p)
            if k is None:
                k = table[p] = len(values)
                values.append(p)
            raw[x] = k


_DASHLESS = str.maketrans("", "", "-")


def _plain_jp(x: str) -> str | None:
    """``normalize_phone(strip_extension(x))`` of the common form (ASCII digits and hyphens,
    0 then 9–10 digits) without the regular expressions; None for anything else."""
    t = x.translate(_DASHLESS)
    if len(t) in (10, 11) and t.isascii() and t.isdigit() and t[0] == "0" and t[1] != "0":
        return "+81" + t[1:]
    return None


def _day(value: date | str) -> date:
    # SQLAlchemy writes a date as YYYY-MM-DD; the first ten characters, as its reader takes.
    return date.fromisoformat(value[:10]) if isinstance(value, str) else value
