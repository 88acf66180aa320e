"""Finding and removing an erased customer's values wherever text is kept.

The tables that hold a customer by id are emptied by ``erase``; this is for the rest: a name
in another record's mail body, an address in a quarantined row's payload, a phone in a
reminder's facts, a 日報 draft, an audit line. Every text and JSON column of every table in
the database (reflected, so tables added later are covered too) is searched with one scan
per table, and each hit is replaced by ``[erased]`` (a hit in a key column deletes the row:
the row is keyed by the erased value).

Which values: the customer's addresses, its phone numbers in the forms people write them
(``03-1234-5678``, ``0312345678``, ``+81312345678``, ``+81 3-1234-5678``), and its names as
full names (family and given name in either order, with or without a space, in kanji and in
kana). A lone family or given name is not searched: "田中" alone would hit every other 田中.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy import (
    JSON,
    Connection,
    MetaData,
    String,
    Table,
    Text,
    cast,
    delete,
    func,
    or_,
    select,
    update,
)

from warehouse.write.upsert import chunks

MASK = "[erased]"
MAX_VALUES = 400
"""A bound on the search: far more than one customer's names, addresses and phones."""
SKIP_TABLES = frozenset(
    {"alembic_version", "suppression", "privacy_salt", "privacy_request", "erased_record"}
)
_SPACES = ("", " ", "\u3000")
_PER_QUERY = 300


@dataclass(frozen=True)
class Person:
    """What is searched for one record: its name parts and full name."""

    family: str | None = None
    given: str | None = None
    family_kana: str | None = None
    given_kana: str | None = None
    full: str | None = None


def _long_enough(v: str) -> bool:
    return len(re.sub(r"\s", "", v)) >= 3


def name_forms(p: Person) -> set[str]:
    out: set[str] = set()
    for a, b in ((p.family, p.given), (p.family_kana, p.given_kana)):
        if a and b:
            for sp in _SPACES:
                out.add(f"{a}{sp}{b}")
                out.add(f"{b}{sp}{a}")
    if p.full:
        out.add(p.full)
        out.add(re.sub(r"\s+", "", p.full))
    return {v.strip() for v in out if v and _long_enough(v)}


def phone_forms(e164: str) -> set[str]:
    out = {e164}
    try:
        num = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return out
    national = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.NATIONAL)
    out |= {
        national,
        re.sub(r"\D", "", national),
        phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    }
    return {v for v in out if len(re.sub(r"\D", "", v)) >= 6}


def values(people: Iterable[Person], emails: Iterable[str], phones: Iterable[str]) -> list[str]:
    """Every form to search for, longest first (so a full name goes before a part of it);
    non-ASCII ones also as JSON text stores them (``\\u7530\\u4e2d``)."""
    found: set[str] = {e for e in emails if e}
    for p in people:
        found |= name_forms(p)
    for ph in phones:
        found |= phone_forms(ph)
    found |= {json.dumps(v)[1:-1] for v in found}
    return sorted(found, key=lambda v: (-len(v), v))[:MAX_VALUES]


def pattern(vals: Iterable[str]) -> re.Pattern[str]:
    """One case-insensitive alternation of literals (linear: no repetition in it)."""
    return re.compile("|".join(re.escape(v) for v in vals), re.IGNORECASE)


def _like(v: str) -> str:
    esc = v.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{esc}%"


def scrub(value: Any, rx: re.Pattern[str]) -> Any:
    """``value`` with every hit masked (strings, and strings inside JSON)."""
    if isinstance(value, str):
        return rx.sub(MASK, value)
    if isinstance(value, list):
        return [scrub(v, rx) for v in value]
    if isinstance(value, dict):
        return {scrub(k, rx): scrub(v, rx) for k, v in value.items()}
    return value


def tables(conn: Connection) -> list[Table]:
    md = MetaData()
    md.reflect(bind=conn)
    return [tb for tb in md.sorted_tables if tb.name not in SKIP_TABLES]


def _text_columns(tb: Table) -> list[Any]:
    return [c for c in tb.columns if isinstance(c.type, String | Text | JSON)]


def hits(conn: Connection, vals: list[str]) -> Iterator[tuple[Table, dict[str, Any], set[str]]]:
    """(table, row, columns that hold a value) for every row anywhere that mentions one."""
    if not vals:
        return
    rx = pattern(vals)
    needles = [_like(v) for v in vals]
    for tb in tables(conn):
        cols = _text_columns(tb)
        pk = list(tb.primary_key.columns)
        if not cols or not pk:
            continue
        conds = [func.lower(cast(c, Text)).like(n, escape="\\") for c in cols for n in needles]
        wanted = sorted({c.name for c in pk} | {c.name for c in cols})
        seen: set[tuple[Any, ...]] = set()
        # A few hundred conditions per statement: SQLite bounds an expression's depth.
        for part in chunks(conds, _PER_QUERY):
            q = select(*[tb.c[n] for n in wanted]).where(or_(*part))
            for row in conn.execute(q).mappings():
                ident = tuple(row[c.name] for c in pk)
                if ident in seen:
                    continue
                seen.add(ident)
                where = {c.name for c in cols if scrub(row[c.name], rx) != row[c.name]}
                if where:
                    yield tb, dict(row), where


def redact(conn: Connection, vals: list[str]) -> dict[str, int]:
    """Mask every hit in place; returns rows changed (or deleted) per table."""
    rx = pattern(vals) if vals else None
    counts: dict[str, int] = {}
    found = list(hits(conn, vals))
    for tb, row, where in found:
        assert rx is not None
        pk = list(tb.primary_key.columns)
        match = [c == row[c.name] for c in pk]
        if any(c.name in where for c in pk):
            conn.execute(delete(tb).where(*match))
        else:
            conn.execute(update(tb).where(*match).values({n: scrub(row[n], rx) for n in where}))
        counts[tb.name] = counts.get(tb.name, 0) + 1
    return counts
