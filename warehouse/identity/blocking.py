"""The blocking index of people: each row's comparable features and its blocking keys.

Preparing it is the first step of resolution and the only one that reads the person tables;
scoring and clustering read features and keys back from here, by record or by partition, so
the index (and the SQLite tuning it needs) is kept apart from the steps that use it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select

from warehouse import schema as t
from warehouse.identity import schema as ids
from warehouse.identity.matching import (
    MatchSettings,
    PersonFeatures,
    block_keys,
    key_part,
    person_features,
)
from warehouse.upsert import chunks, insert_ignore, upsert

ENTITY = "person"
RANGE = 20000
IN_CHUNK = 900

B = t.table(ids.IdentityBlock)
F = t.table(ids.IdentityFeature)
PERSON = t.table(t.Person)
ORG = t.table(t.Organization)
PE = t.table(t.PersonEmail)
PP = t.table(t.PersonPhone)


def tune(conn: Connection) -> None:
    """A larger page cache for this connection on SQLite: the blocking index is written and
    read in key order, and 256 MB of cache keeps it off the disk for a million rows."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA cache_size=-262144")


# -- prepare ---------------------------------------------------------------------------------


def id_ranges(conn: Connection, size: int = RANGE) -> list[tuple[int, int]]:
    lo, hi = conn.execute(select(func.min(PERSON.c.id), func.max(PERSON.c.id))).one()
    if lo is None:
        return []
    return [(a, min(a + size, int(hi) + 1)) for a in range(int(lo), int(hi) + 1, size)]


def _features_where(conn: Connection, cond: Any, settings: MatchSettings) -> list[PersonFeatures]:
    p = PERSON.c
    rows = conn.execute(
        select(
            p.id,
            p.family_name,
            p.given_name,
            p.family_name_kana,
            p.given_name_kana,
            p.full_name,
            p.birth_date,
            p.attributes,
            ORG.c.name,
            ORG.c.corporate_number,
            ORG.c.domain,
        )
        .select_from(PERSON.outerjoin(ORG, ORG.c.id == p.organization_id))
        .where(cond, p.deleted_at.is_(None))
    ).all()
    if not rows:
        return []
    wanted = [int(r[0]) for r in rows]
    emails: dict[int, list[str]] = defaultdict(list)
    phones: dict[int, list[str]] = defaultdict(list)
    for part in chunks(wanted, IN_CHUNK):
        for pid, e in conn.execute(
            select(PE.c.person_id, PE.c.email).where(PE.c.person_id.in_(part))
        ):
            emails[int(pid)].append(e)
        for pid, ph in conn.execute(
            select(PP.c.person_id, PP.c.phone).where(PP.c.person_id.in_(part))
        ):
            phones[int(pid)].append(ph)
    named = _names_by_domain(conn, {r[10] for r in rows if r[10] and r[8] in (None, r[10])})
    out = []
    for r in rows:
        pid = int(r[0])
        row = {
            "family_name": r[1],
            "given_name": r[2],
            "family_name_kana": r[3],
            "given_name_kana": r[4],
            "full_name": r[5],
            "birth_date": r[6],
            "attributes": r[7],
        }
        org_name = r[8] if r[8] not in (None, r[10]) else named.get(r[10] or "")
        out.append(person_features(pid, row, emails[pid], phones[pid], org_name, settings, r[9]))
    return out


def _names_by_domain(conn: Connection, domains: set[str]) -> dict[str, str]:
    """A company's name for records that know it only by its domain (a mail participant's
    reference): the name most records with that domain give (ties: the smallest)."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for part in chunks(sorted(domains), IN_CHUNK):
        q = (
            select(ORG.c.domain, ORG.c.name, func.count())
            .where(ORG.c.domain.in_(part), ORG.c.name != ORG.c.domain, ORG.c.deleted_at.is_(None))
            .group_by(ORG.c.domain, ORG.c.name)
        )
        for d, name, n in conn.execute(q):
            counts[str(d)][str(name)] = int(n)
    return {d: min(c, key=lambda x: (-c[x], x)) for d, c in counts.items()}


def _write_features(
    conn: Connection, feats: Sequence[PersonFeatures], settings: MatchSettings
) -> int:
    frows = [{"entity": ENTITY, "record_id": f.id, "data": f.dumps()} for f in feats]
    brows = [
        {"entity": ENTITY, "key": k, "record_id": f.id, "part": key_part(k, settings.partitions)}
        for f in feats
        for k in block_keys(f)
    ]
    # Idempotent: two preparations of the same rows (overlapping runs) converge on one row.
    for part in chunks(frows, 5000):
        upsert(conn, F, part, ["entity", "record_id"])
    for part in chunks(brows, 5000):
        insert_ignore(conn, B, part, ["entity", "key", "record_id"])
    return len(brows)


def prepare_range(conn: Connection, settings: MatchSettings, lo: int, hi: int) -> tuple[int, int]:
    """Features and keys for rows with ``lo <= id < hi``; returns (rows, keys)."""
    tune(conn)
    conn.execute(delete(F).where(F.c.entity == ENTITY, F.c.record_id >= lo, F.c.record_id < hi))
    conn.execute(delete(B).where(B.c.entity == ENTITY, B.c.record_id >= lo, B.c.record_id < hi))
    feats = _features_where(conn, and_(PERSON.c.id >= lo, PERSON.c.id < hi), settings)
    return len(feats), _write_features(conn, feats, settings)


def prepare_ids(
    conn: Connection, settings: MatchSettings, record_ids: Sequence[int]
) -> tuple[list[PersonFeatures], int]:
    """Recompute features and keys of the given rows (deleted rows lose theirs)."""
    feats: list[PersonFeatures] = []
    for part in chunks(sorted(set(record_ids)), IN_CHUNK):
        conn.execute(delete(F).where(F.c.entity == ENTITY, F.c.record_id.in_(part)))
        conn.execute(delete(B).where(B.c.entity == ENTITY, B.c.record_id.in_(part)))
        feats.extend(_features_where(conn, PERSON.c.id.in_(part), settings))
    return feats, _write_features(conn, feats, settings)


def load_features(conn: Connection, record_ids: Iterable[int]) -> dict[int, PersonFeatures]:
    out: dict[int, PersonFeatures] = {}
    for part in chunks(sorted(set(record_ids)), IN_CHUNK):
        for rid, data in conn.execute(
            select(F.c.record_id, F.c.data).where(F.c.entity == ENTITY, F.c.record_id.in_(part))
        ):
            out[int(rid)] = PersonFeatures.loads(int(rid), data)
    return out
