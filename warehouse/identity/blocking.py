"""The blocking index: each row's comparable features and its blocking keys (as digests).

Preparing it is the first step of resolution and the only one that reads the person tables;
an incremental run finds a changed row's neighbours through the keys and reads their
features back from here, so the index (and the SQLite tuning it needs) is kept apart from the
steps that use it. Organizations keep theirs in the same two tables under their own entity.

Features are stored in id order and keys in digest order (``renewal`` writes them: in
full into an empty index, else by difference; an incremental run notes the keys it renews
beside them, ``linkage.key_table``). Rows are never looked up by record in the key
table: a row's old keys are computed again from its stored features, which is what
``forget`` and the renewal delete by. Which keys a row gets and how they are hashed is
``linkage.index``, for every path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import (
    Connection,
    Text,
    and_,
    case,
    delete,
    func,
    select,
    type_coerce,
)

from warehouse import schema as t
from warehouse.identity import schema as ids
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.linkage import blocking_rules as br
from warehouse.identity.linkage import company_parts, index
from warehouse.identity.linkage import features as fe
from warehouse.identity.linkage.frame import bulk, isin, runs
from warehouse.identity.linkage.key_table import (
    DROP_DELTA,
    D,
    Digests,
    K,
    drop_keys,
    lookup,
    renewed,
)
from warehouse.identity.linkage.memo import Memo
from warehouse.write.bulk import (
    LIST_CHUNK,
    driver_rows,
    id_list,
    many,
    member,
    placeholder,
    put_rows,
)
from warehouse.write.upsert import chunks

ENTITY = "person"
RANGE = 20000
IN_CHUNK = 900

F = t.table(ids.IdentityFeature)
PERSON = t.table(t.Person)
ORG = t.table(t.Organization)
PE = t.table(t.PersonEmail)
PP = t.table(t.PersonPhone)


# Stored keys that stand for a blocking rule with its own smaller bound (``cap:N``): a
# name block (``t``, the rule ``fam:4, giv:4``) or a local part (``l``) larger than the
# rule allows pairs nobody in a full run, so an incremental run does not read it either.
_CAPPED_KEYS = {"t": ("fam", "giv"), "l": ("local",)}


def key_caps(settings: MatchSettings) -> list[int]:
    """Each key tag's block bound (``index.TAGS`` order): the configured rule's it stands
    for, else the largest block any rule compares."""
    out = [settings.max_block_size] * len(index.TAGS)
    for tag, cols in _CAPPED_KEYS.items():
        for rule in settings.link.rules:
            if br.columns(rule) == set(cols):
                out[index.TAG[tag]] = br.cap(rule, settings.max_block_size)
    return out


def shrink(conn: Connection) -> None:
    """Give back the pages SQLite cached for this connection and set its cache back to
    SQLite's default size: ``tune`` lets it keep 256 MB, which a pooled connection would
    otherwise hold on to through scoring, and fill again in whatever it writes next (the
    index, 0.3 GB left behind at a million people)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA cache_size=-2000")
        conn.exec_driver_sql("PRAGMA shrink_memory")


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


@bulk
def columns_where(
    conn: Connection, cond: Callable[[Any], Any], settings: MatchSettings, memo: Memo | None = None
) -> tuple[fe.Columns, list[str]]:
    """Features of the live rows whose id matches ``cond(id column)`` as columns, and each
    row's record key.

    Queries on ``cond`` rather than asked per id, and features computed once per distinct
    value. Mail and phones are read by their own person id, not joined to the person again
    (a deleted row's values come back too and are never looked up), and each company once
    by its id rather than joined to every row: at a million people that join was 2.3 of
    the 5 CPU-s the rows took to read."""
    p = PERSON.c
    live = and_(cond(p.id), p.deleted_at.is_(None))
    rows = driver_rows(
        conn,
        select(
            p.id,
            p.family_name,
            p.given_name,
            p.family_name_kana,
            p.given_name_kana,
            p.full_name,
            p.birth_date,
            type_coerce(p.attributes, Text),  # parsed below by orjson, 4x json's speed
            p.organization_id,
            p.record_key,
        )
        .where(live)
        .order_by(p.id),
    )
    if not rows:
        return fe.Columns.of([]), []
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    emails, phones = (
        _contacts(driver_rows(conn, select(tb.c.person_id, v).where(cond(tb.c.person_id))), ids)
        for tb, v in ((PE, PE.c.email), (PP, PP.c.phone))
    )
    orgs = _companies(conn, {r[8] for r in rows if r[8] is not None})
    blank = (None, None, None)
    org = [orgs.get(r[8], blank) for r in rows]  # (name, 法人番号, domain) per row
    named = _names_by_domain(conn, {o[2] for o in org if o[2] and o[0] in (None, o[2])})
    none: tuple[str, ...] = ()
    got: list[fe.Row] = [
        (
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            orjson.loads(r[7]) if isinstance(r[7], str) else r[7],
            o[0] if o[0] not in (None, o[2]) else named.get(o[2] or ""),
            o[1],
            none,  # mail and phones go to ``compute`` beside the rows, as (row, value)
            none,
        )
        for r, o in zip(rows, org, strict=True)
    ]
    keys = [str(r[9] or "") for r in rows]
    known = company_parts.stored(conn)
    return fe.compute(got, settings, memo, (emails, phones), known), keys


def _contacts(pairs: Sequence[Any], ids: NDArray[np.int64]) -> fe.Flat:
    """(person id, value) pairs as (row, value), the row found among ``ids`` (ascending);
    a value of a row not there (a deleted person) is dropped."""
    if not pairs:
        return np.zeros(0, np.int64), []
    pid = np.fromiter((p[0] for p in pairs), np.int64, len(pairs))
    at = np.minimum(np.searchsorted(ids, pid), ids.shape[0] - 1)
    ok = ids[at] == pid
    if ok.all():
        return at, [p[1] for p in pairs]
    keep = np.flatnonzero(ok)
    return at[keep], [pairs[k][1] for k in keep.tolist()]


def _companies(conn: Connection, ids: set[int]) -> dict[int, tuple[Any, Any, Any]]:
    """(name, 法人番号, domain) of each organization ``ids`` names (one statement per
    50,000: a range names about 15,000 companies)."""
    q = (
        f"SELECT id, name, corporate_number, domain FROM {ORG.name} "
        f"WHERE {member(conn, 'id', 'bigint')}"
    )
    return {
        int(oid): (name, corp, domain)
        for part in chunks(sorted(ids), LIST_CHUNK)
        for oid, name, corp, domain in driver_rows(conn, q, (id_list(conn, part),))
    }


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


SAVE_FEATURE = (
    "INSERT INTO identity_feature (entity, record_id, data, fingerprint) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (entity, record_id) DO UPDATE "
    "SET data = excluded.data, fingerprint = excluded.fingerprint"
)


def digest(key: str) -> int:
    return int(index.text_digests([key])[0])


def person_digests(cols: fe.Columns) -> Digests:
    """The rows' block keys as (digest, record id), in that order."""
    d, r, _ = index.keys(cols)
    return d, r


def stored_digests(old: Sequence[tuple[int, str]]) -> Digests:
    """The keys rows were written with, from their stored (record id, features)."""
    return person_digests(index.loads(old))


def clear(conn: Connection, entity: str) -> None:
    """Empty an entity's index (a full run rebuilds it)."""
    for tb in (F, K, D):
        conn.execute(delete(tb).where(tb.c.entity == entity))


def forget(
    conn: Connection,
    entity: str,
    record_ids: Iterable[int],
    keys_of: Callable[[Sequence[tuple[int, str]]], Digests] = stored_digests,
) -> int:
    """Delete the given rows' features and keys (returns how many rows had features);
    ``keys_of`` gives the (digest, record id) keys rows were written with, from their
    stored (record id, features): a change to how keys are made comes with a migration
    that deletes the keys (the next full run writes them all again)."""
    n = 0
    for part in chunks(sorted(set(record_ids)), IN_CHUNK):
        old = sorted(stored(conn, entity, part).items())
        d, r = keys_of(old) if old else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        drop_keys(conn, entity, (d, r))
        drop = sorted(set(zip(repeat(entity), d.tolist(), r.tolist())))
        many(conn, DROP_DELTA, drop)  # renewed since the last full run: gone as well
        drop_features(conn, entity, part)
        n += len(old)
    return n


def drop_features(conn: Connection, entity: str, record_ids: Iterable[int]) -> None:
    """Delete the given rows' stored features (their keys are the caller's)."""
    for part in chunks(sorted(set(record_ids)), IN_CHUNK):
        conn.execute(delete(F).where(F.c.entity == entity, F.c.record_id.in_(part)))


def stored(conn: Connection, entity: str, ids: Iterable[int]) -> dict[int, str]:
    """The stored features (their JSON) of those of ``ids`` that have them: the ids bound
    as one list per statement, any number of them."""
    q = (
        f"SELECT record_id, data FROM {F.name} "
        f"WHERE entity = {placeholder(conn)} AND {member(conn, 'record_id', 'bigint')}"
    )
    out: dict[int, str] = {}
    for part in chunks(sorted(set(ids)), LIST_CHUNK):
        out.update(driver_rows(conn, q, (entity, id_list(conn, part))))
    return out


def neighbours(
    conn: Connection,
    entity: str,
    keys: NDArray[np.int64],
    caps: NDArray[np.int64],
    leaving: NDArray[np.int64] | None = None,
    joining: NDArray[np.int64] | None = None,
) -> tuple[set[int], int]:
    """Rows sharing a key with ``keys`` (distinct, ascending), skipping a key more rows
    share than its bound in ``caps`` allows; and how many were skipped. ``leaving`` and
    ``joining``: per key, the rows a change not written yet takes out of its block and
    puts in, so that a block is sized as it will be once written (the rows leaving are
    among those returned: the caller drops them).

    A key's block is its rows in the bucket read for it, its first ``cap + 1`` in record
    order counted (plus those a change takes out, and those the delta dropped): a change
    touching a common surname counts 101 rows of its block, not the thousands it holds. The
    bounds are worked out for all keys at once: a 1 % change of a million people asks for
    133 k keys.

    The keys renewed since the last full run (``identity_key_delta``) are applied as each
    block is read: a block is read up to as many more rows as it has keys dropped."""
    none = np.zeros(keys.shape[0], np.int64)
    out = none if leaving is None else leaving
    into = none if joining is None else joining
    added, dropped = renewed(conn, entity, keys.tolist())
    limit = caps + 1 + out
    if dropped:
        held = np.array(sorted(dropped), np.int64)
        limit[np.searchsorted(keys, held)] += [len(dropped[int(d)]) for d in held]
    d, r = lookup(conn, entity, keys)
    lo = np.searchsorted(d, keys, "left")
    hi = np.minimum(np.searchsorted(d, keys, "right"), lo + limit)
    size = hi - lo
    renewed_at = np.flatnonzero(
        isin(keys, np.array(sorted(added.keys() | dropped.keys()), np.int64))
    )
    near: set[int] = set()
    for k in renewed_at.tolist():  # as if folded in: its rows less those dropped, with those added
        key = int(keys[k])
        kept = [m for m in r[lo[k] : hi[k]].tolist() if m not in dropped.get(key, set())]
        members = list(dict.fromkeys([*kept, *added.get(key, [])]))
        size[k] = len(members)
        if len(members) - out[k] + into[k] <= caps[k]:
            near.update(members)
    fits = size - out + into <= caps
    plain = fits & (size > 0)
    plain[renewed_at] = False
    at = np.flatnonzero(plain)
    near.update(r[runs(lo[at], size[at])].tolist())
    return near, int((~fits).sum())


@bulk
def write_features(conn: Connection, cols: fe.Columns, fps: NDArray[np.int64]) -> None:
    """Store the rows' features with their fingerprints ``fps``."""
    by_id = fps[np.argsort(cols.ids, kind="stable")]  # ``dumps``' order
    done = 0
    for rids, data in index.dumps(cols, RANGE):
        put_features(conn, rids, data, by_id[done : done + len(data)], False)
        done += len(data)


def put_features(
    conn: Connection, ids: NDArray[np.int64], texts: list[str], fps: NDArray[np.int64], fresh: bool
) -> None:
    """Rows of ``identity_feature``: each id's stored text and fingerprint (``fresh``: an
    emptied index, COPY on PostgreSQL)."""
    rows = list(zip(repeat(ENTITY), ids.tolist(), texts, fps.tolist()))
    put_rows(conn, F, ("entity", "record_id", "data", "fingerprint"), SAVE_FEATURE, rows, fresh)


Stored = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]


def stored_fingerprints(conn: Connection, entity: str, *conds: Any) -> Stored:
    """The stored rows matching ``conds`` (a range of ids, or some ids): (record ids in
    order, their fingerprints, whether each has one)."""
    fp = F.c.fingerprint
    has = case((fp.is_(None), 0), else_=1)
    q = select(F.c.record_id, func.coalesce(fp, 0), has).where(F.c.entity == entity, *conds)
    got = np.array(driver_rows(conn, q), np.int64).reshape(-1, 3)
    got = got[np.argsort(got[:, 0], kind="stable")]
    return got[:, 0].copy(), got[:, 1].copy(), got[:, 2] > 0


def prepare_columns(
    conn: Connection, settings: MatchSettings, lo: int, hi: int, memo: Memo | None = None
) -> tuple[fe.Columns, list[str]]:
    """Features of the rows with ``lo <= id < hi`` for a full run, as columns with each
    row's record key; the run stores them and their keys once every range is read (give
    its ranges one ``memo``: a value is then computed once).

    The pass reads each page about once, so the connection's page cache is set to 8 MB:
    the 64 MB every connection starts with filled up in each of the two processes reading
    ranges (0.16 GB of a first run's 2.0 GB peak at a million people) for no measurable
    gain, and ``tune``'s 256 MB held 0.25 GB more in each."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA cache_size=-8192")  # a pooled connection may be shrunk
    return columns_where(conn, lambda c: and_(c >= lo, c < hi), settings, memo)


def load_features(conn: Connection, record_ids: Iterable[int]) -> fe.Columns:
    """The stored features of those of ``record_ids`` that have them, as columns in id
    order."""
    return index.loads(sorted(stored(conn, ENTITY, record_ids).items()))
