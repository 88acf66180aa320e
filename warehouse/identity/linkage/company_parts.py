"""Company names' comparable parts, kept from run to run.

A person's features carry their company's key, legal form and cross-script sound
(``matching.org_part``); the sound needs the name's dictionary reading, which makes a company
name the costliest value of the feature pass (≈ 60 µs a name). A million people name about
260,000 companies, and every run read each of them again: in a full run a second process
did nothing else for half a minute, and in an incremental run a 1 % change spent half of its
feature pass reading the changed people's companies. The parts depend on the name alone,
so each name's parts are stored once, by a digest of the name, and looked up before any
name is read.

A name's digest also covers ``VERSION`` and the dictionary's version: a change to how
parts are made (raise ``VERSION``) or a new dictionary finds nothing stored and reads the
names again. Two names colliding in 64 bits (≈ 10⁻⁹ for a million names) would give one of
them the other's parts: a weaker or a stronger company comparison for its people, never a
link by itself. Nothing personal is kept: a digest and the parts of a company name.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Sequence
from functools import cache

import orjson
from sqlalchemy import Connection

from warehouse import schema as t
from warehouse.identity import schema as ids
from warehouse.write.bulk import LIST_CHUNK, driver_rows, id_list, many, member
from warehouse.write.upsert import chunks

Parts = tuple[str, str, str]  # (key, legal form, sound) of one company name
Known = Callable[[Sequence[str | None]], dict[str, Parts]]

VERSION = 1
P = t.table(ids.IdentityCompanyName)
_ADD = (
    "INSERT INTO identity_company_name (digest, parts) VALUES (?, ?) "
    "ON CONFLICT (digest) DO NOTHING"
)


@cache
def _salt() -> str:
    return f"{VERSION}/pykakasi {importlib.metadata.version('pykakasi')}\0"


def _digests(names: Sequence[str]) -> list[int]:
    # Imported here: the feature columns this module serves import it while they load.
    from warehouse.identity.linkage import index

    salt = _salt()
    out: list[int] = index.text_digests([salt + n for n in names]).tolist()
    return out


def stored(conn: Connection) -> Known:
    """A lookup of the stored parts of company names, through ``conn``."""
    q = f"SELECT digest, parts FROM {P.name} WHERE {member(conn, 'digest', 'bigint')}"

    def look(names: Sequence[str | None]) -> dict[str, Parts]:
        named = [n for n in names if n]
        by = dict(zip(_digests(named), named, strict=True))
        out: dict[str, Parts] = {}
        for part in chunks(list(by), LIST_CHUNK):
            for d, parts in driver_rows(conn, q, (id_list(conn, part),)):
                key, legal, sound = orjson.loads(parts)
                out[by[d]] = (key, legal, sound)
        return out

    return look


def store(conn: Connection, fresh: Sequence[tuple[str, Parts]]) -> int:
    """Keep the parts of names read in this run (an overlapping run may have kept some
    already: the first stays). Returns how many were offered."""
    if not fresh:
        return 0
    names = [n for n, _ in fresh]
    rows = list(
        zip(_digests(names), (orjson.dumps(list(p)).decode() for _, p in fresh), strict=True)
    )
    many(conn, _ADD, rows)
    return len(rows)


def unread(conn: Connection, least: int = 1) -> list[str]:
    """The live companies' names whose parts are not stored, in name order, when there may
    be ``least`` of them; else none (counted first: a run over a stored index reads no
    name; the few names a rename leaves unread are read by the feature pass as it meets
    them)."""
    named = (
        f"FROM {t.table(t.Organization).name} WHERE deleted_at IS NULL "
        "AND name IS NOT NULL AND name <> '' AND (domain IS NULL OR name <> domain)"
    )
    kept = int(driver_rows(conn, f"SELECT count(*) FROM {P.name}")[0][0])
    if int(driver_rows(conn, f"SELECT count(*) {named}")[0][0]) - kept < least:
        return []
    names = [str(r[0]) for r in driver_rows(conn, f"SELECT DISTINCT name {named} ORDER BY name")]
    if len(names) - kept < least:
        return []
    known = stored(conn)(names) if kept else {}
    return [n for n in names if n not in known]
