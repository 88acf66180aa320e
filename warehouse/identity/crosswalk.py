"""Ids that survive rebuilds, and the crosswalk of every source record to them.

A record's key is a digest of its own (connector, stream, source id), so rebuilding the
warehouse from the same files, in any order, gives every record the same key. A customer
(or company) is named by the smallest key among its live records: the same members give the
same id whatever order they arrived in, and an id that stops naming a cluster (a merge)
still leads to it through the record that bears it. The crosswalk lists every source record
with those ids and where it sits: a spreadsheet's file and 1-based data row, a mail
participant's message file (the first message it was seen in); admins audit merges with it
and load the ids elsewhere, and the golden exports (``golden_export``) use the same ids.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from warehouse import schema as t
from warehouse.identity import schema as ids_

PREFIX = {"person": "P-", "organization": "O-"}


def record_key(entity: str, connector: str, stream: str, source_id: str) -> str:
    """``P-``/``O-`` + 14 base32 characters (70 bits) of the record's own source key."""
    raw = "\x1f".join((connector, stream, source_id)).encode()
    digest = hashlib.blake2b(raw, digest_size=10).digest()
    return PREFIX[entity] + base64.b32encode(digest).decode().lower()[:14]


def entity_of(key: str) -> str | None:
    """Which entity a public id names (by its prefix), or None when it is not one."""
    for entity, prefix in PREFIX.items():
        if key.upper().startswith(prefix) and len(key) == 16:
            return entity
    return None


FIELDS = (
    "connector",
    "stream",
    "source_id",
    "file",
    "row",
    "person_id",
    "organization_id",
)
"""Crosswalk columns, in order (``file``/``row`` only where the source is a file)."""


def public_ids(conn: Connection, entity: str) -> dict[int, str]:
    """Row id → public cluster id, for every live row of ``entity``."""
    table = t.table(t.Person if entity == "person" else t.Organization)
    m = t.table(ids_.IdentityMember)
    cluster: dict[int, int] = {
        int(r): int(c)
        for r, c in conn.execute(select(m.c.record_id, m.c.cluster_id).where(m.c.entity == entity))
    }
    keys: dict[int, str] = {}
    for rid, key in conn.execute(
        select(table.c.id, table.c.record_key).where(table.c.deleted_at.is_(None))
    ):
        keys[int(rid)] = key or f"{entity[0].upper()}-row{int(rid)}"
    best: dict[int, str] = {}
    for rid, key in keys.items():
        c = cluster.get(rid, rid)
        if c not in best or key < best[c]:
            best[c] = key
    return {rid: best[cluster.get(rid, rid)] for rid in keys}


def find_record(conn: Connection, public_id: str) -> tuple[str, int] | None:
    """The record bearing a public id (a cluster's id, or one it had before a merge)."""
    key = public_id.strip()
    entity = "person" if key.upper().startswith("P-") else "organization"
    table = t.table(t.Person if entity == "person" else t.Organization)
    rid = conn.execute(
        select(table.c.id).where(table.c.record_key == key[:2].upper() + key[2:].lower())
    ).scalar()
    return None if rid is None else (entity, int(rid))


def split_locator(locator: str | None) -> tuple[str | None, int | None]:
    """``sales.csv:12`` → (``sales.csv``, 12); a message file (a Maildir name keeps its
    ``:2,S`` flags, an mbox its ``#offset``) → (the whole locator, None)."""
    if not locator:
        return None, None
    file, _, row = locator.rpartition(":")
    if file and row.isdigit():
        return file, int(row)
    return locator, None


def rows(conn: Connection) -> Iterator[dict[str, Any]]:
    """One line per live source record (rows and mail participants; not references)."""
    people = public_ids(conn, "person")
    orgs = public_ids(conn, "organization")
    p = t.Person
    org_of = {
        int(i): int(o)
        for i, o in conn.execute(select(p.id, p.organization_id).where(p.deleted_at.is_(None)))
        if o is not None
    }
    sr = t.SourceRecord
    line: dict[str, Any] | None = None
    q = (
        select(sr.connector, sr.stream, sr.source_id, sr.entity, sr.entity_id, sr.locator)
        .where(sr.deleted_at.is_(None), sr.entity.in_(("person", "organization")))
        .order_by(sr.connector, sr.stream, sr.source_id)
    )
    for connector, stream, sid, entity, eid, locator in conn.execute(q):
        if eid is None or str(sid).startswith("ref:"):
            continue
        k = (str(connector), str(stream), str(sid))
        if line is None or (line["connector"], line["stream"], line["source_id"]) != k:
            if line is not None:  # the query is ordered by source key: that record is whole
                yield line
            file, row = split_locator(locator)
            line = {
                "connector": k[0],
                "stream": k[1],
                "source_id": k[2],
                "file": file,
                "row": row,
                "person_id": None,
                "organization_id": None,
            }
        if entity == "person":
            line["person_id"] = people.get(int(eid))
            if line["organization_id"] is None and int(eid) in org_of:
                line["organization_id"] = orgs.get(org_of[int(eid)])
        else:
            line["organization_id"] = orgs.get(int(eid))
    if line is not None:
        yield line
