"""Identity resolution for organizations: the same company under several spellings.

Every source record that describes or names a company is its own ``organization`` row (the
store links nothing), so all linking happens here, with evidence. Rules:
- the same 法人番号 merges; two different 法人番号 are never the same company (the strongest
  key wins over any name or domain);
- the same company mail domain merges, unless the 法人番号 disagree;
- the same comparable name (``matching.org_key``) or the same phone with a near-identical
  name merges, unless the 法人番号 or the company domains disagree;
- a near-identical name alone goes to the review queue.

Exact keys (法人番号, domain, name) make blocks as large as a company's record count (every
contact row names its company), so those blocks are linked in one pass against a few anchors
(the first record of each distinct signature), not pairwise.

Features and blocking keys are kept in the identity tables like people's, so an incremental
run compares only the companies changed since the last one with their blocks; the result is
written to the same identity graph (entity ``organization``) with the same stable ids,
aliases, pins and review queue as people.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist
from sqlalchemy import Connection, select

from warehouse import schema as t
from warehouse.identity import blocking
from warehouse.identity import graph as graph
from warehouse.identity import schema as ids_
from warehouse.identity.evidence import merging_edges, save_matches
from warehouse.identity.keys.matching import Decision, forget_names, org_key
from warehouse.identity.keys.normalize import FREE_MAIL_DOMAINS, email_domain, normalize_phone
from warehouse.identity.linkage import company_parts, index, key_table
from warehouse.write.bulk import driver_rows, put_rows
from warehouse.write.upsert import chunks

ENTITY = "organization"
MAX_BLOCK = 200
F = t.table(ids_.IdentityFeature)


@dataclass(frozen=True, slots=True)
class OrgFeatures:
    id: int
    key: str
    domain: str
    corp: str
    phone: str


def org_features(
    conn: Connection, region: str = "JP", ids: Sequence[int] | None = None
) -> list[OrgFeatures]:
    """Comparable form of the live organizations (all, or the given ids).

    A record that names no domain borrows one from its own contacts' company addresses
    (the row ``株式会社ABC, 田中, t.tanaka@abc.co.jp`` says its company mails from
    ``abc.co.jp``): evidence read here, never written into the record.
    """
    o = t.Organization
    q = select(o.id, o.name, o.domain, o.corporate_number, o.phone).where(o.deleted_at.is_(None))
    rows: list[Any] = []
    if ids is None:
        rows = driver_rows(conn, q)
    else:
        for part in chunks(sorted(set(ids)), 900):
            rows.extend(conn.execute(q.where(o.id.in_(part))))
    borrowed = _contact_domains(conn, [int(r[0]) for r in rows if not r[2]], ids is None)
    # A name's key is the first of the parts people's features keep for it (read once).
    known = company_parts.stored(conn)([r[1] for r in rows if r[1] and r[1] != r[2]])
    feats = [
        OrgFeatures(
            int(oid),
            (known[name][0] if name in known else org_key(name)) if name and name != domain else "",
            domain or borrowed.get(int(oid), ""),
            corp or "",
            (normalize_phone(phone, region) or "") if phone else "",
        )
        for oid, name, domain, corp, phone in rows
    ]
    forget_names()  # each name was read once
    return feats


def _contact_domains(conn: Connection, org_ids: Sequence[int], everything: bool) -> dict[int, str]:
    """The company mail domain most of each organization's own contacts use (ties: smallest)."""
    if not org_ids:
        return {}
    p, pe = t.Person, t.PersonEmail
    q = (
        select(p.organization_id, pe.email)
        .join(pe, pe.person_id == p.id)
        .where(p.deleted_at.is_(None), p.organization_id.is_not(None))
    )
    pairs: list[Any] = []
    if everything:
        pairs = driver_rows(conn, q)
    else:
        for part in chunks(sorted(set(org_ids)), 900):
            pairs.extend(conn.execute(q.where(p.organization_id.in_(part))).all())
    wanted = set(org_ids)
    counts = Counter(
        (oid, d)
        for oid, d in ((int(o), _mail_domain(str(e))) for o, e in pairs if o is not None)
        if d and oid in wanted
    )
    best: dict[int, tuple[int, str]] = {}
    for (oid, d), n in counts.items():
        got = best.get(oid)
        if got is None or (-n, d) < got:
            best[oid] = (-n, d)
    return {oid: d for oid, (_, d) in best.items()}


# An address already in its own normal form: lower-case ASCII, one ``@``, nothing quoted, no
# blank, a dotted host of non-empty labels. ``email_domain`` gives its host (or None for
# free mail) without parsing it again; the store writes nearly every address this way.
_PLAIN_ADDRESS = re.compile(r"[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+")


def _mail_domain(address: str) -> str | None:
    """``email_domain``, with the plain addresses a contact list is made of taken directly."""
    if _PLAIN_ADDRESS.fullmatch(address):
        host = address.partition("@")[2]
        return None if host in FREE_MAIL_DOMAINS else host
    return email_domain(address)


_ADD_FEATURE = "INSERT INTO identity_feature (entity, record_id, data) VALUES (?, ?, ?)"


def _store(conn: Connection, feats: Sequence[OrgFeatures], ids: Sequence[int] | None) -> None:
    """Keep features and keys in the identity tables, so later runs only read them: all of
    them afresh, or (``ids``) those rows' features again and the keys that changed noted
    beside the others (``key_table.note``)."""
    if ids is None:
        blocking.clear(conn, ENTITY)
    else:
        was = _stored_keys(sorted(blocking.stored(conn, ENTITY, ids).items()))
        blocking.drop_features(conn, ENTITY, ids)
    # One prepared statement (COPY on PostgreSQL when the index was just emptied): a full
    # run stores a row per company, and a compiled insert of dicts cost a quarter of it.
    frows = [(ENTITY, f.id, json.dumps([f.key, f.domain, f.corp, f.phone])) for f in feats]
    put_rows(conn, F, ("entity", "record_id", "data"), _ADD_FEATURE, frows, fresh=ids is None)
    if ids is None:
        key_table.add_keys(conn, ENTITY, _digests(feats), True)
    else:
        key_table.note(conn, ENTITY, *key_table.difference(was, _digests(feats)))


def _digests(feats: Iterable[OrgFeatures]) -> key_table.Digests:
    """The companies' keys as (digest, record id)."""
    keys = [(k, f.id) for f in feats for k in set(_keys(f))]
    rows = np.asarray([r for _, r in keys], dtype=np.int64)
    return index.text_digests([k for k, _ in keys]), rows


def _stored_keys(old: Sequence[tuple[int, str]]) -> key_table.Digests:
    return _digests(OrgFeatures(rid, *orjson.loads(data)) for rid, data in old)


def _load(conn: Connection, ids: Iterable[int]) -> dict[int, OrgFeatures]:
    out: dict[int, OrgFeatures] = {}
    for rid, data in blocking.stored(conn, ENTITY, ids).items():
        k, d, c, ph = orjson.loads(data)
        out[int(rid)] = OrgFeatures(int(rid), k, d, c, ph)
    return out


def org_decide(a: OrgFeatures, b: OrgFeatures) -> Decision | None:
    lo, hi = (a, b) if a.id < b.id else (b, a)
    if lo.corp and hi.corp:
        if lo.corp == hi.corp:
            return Decision(lo.id, hi.id, "rule:corporate_number", 1.0, {"corp": 1.0}, "merge")
        return None
    if lo.domain and hi.domain:
        if lo.domain != hi.domain:
            return None
        return Decision(lo.id, hi.id, "rule:domain", 1.0, {"domain": 1.0}, "merge")
    if not (lo.key and hi.key):
        return None
    if lo.key == hi.key:
        return Decision(lo.id, hi.id, "rule:name", 1.0, {"name": 1.0}, "merge")
    # Edit similarity, not Jaro-Winkler: a shared prefix (みどり物産 / みどり物産販売) is
    # often a different company of one group.
    sim = Levenshtein.normalized_similarity(lo.key, hi.key)
    if lo.phone and lo.phone == hi.phone and sim >= 0.9:
        fields = {"phone": 1.0, "name": round(sim, 3)}
        return Decision(lo.id, hi.id, "rule:phone+name", 1.0, fields, "merge")
    if sim >= 0.85 and min(len(lo.key), len(hi.key)) >= 4:
        return Decision(lo.id, hi.id, "score", round(sim, 4), {"name": round(sim, 3)}, "review")
    return None


def _keys(f: OrgFeatures) -> Iterable[str]:
    if f.key:
        yield f"n|{f.key}"
        yield f"p|{f.key[:3]}"
    if f.phone:
        yield f"t|{f.phone}"
    if f.corp:
        yield f"c|{f.corp}"
    if f.domain:
        yield f"d|{f.domain}"


EXACT = ("n|", "c|", "d|", "t|")
MAX_ANCHORS = 50
SCREEN_FROM = 32  # blocks this large have their pairs screened in one array pass
SCREEN = 0.84  # name similarity below which org_decide turns every pair down (0.85, 0.9)


def _exact_block(
    members: Sequence[int], feats: dict[int, OrgFeatures], pins: set[tuple[int, int]]
) -> tuple[list[Decision], int]:
    """A block on an exact key: each record against the anchors so far (linear, not n²).

    The first record of each (法人番号, domain, phone) signature that no anchor takes becomes
    an anchor; a record merging with an anchor is linked to it, and the graph makes the
    cluster. Records that match no anchor (twins with another 法人番号) stay apart.
    """
    anchors: list[OrgFeatures] = []
    out: list[Decision] = []
    pairs = 0
    for rid in sorted(members):
        f = feats.get(rid)
        if f is None:
            continue
        linked = False
        for a in anchors:
            pairs += 1
            if (a.id, f.id) in pins:
                continue
            d = org_decide(a, f)
            if d is not None:
                out.append(d)
                linked = linked or d.decision == "merge"
                if linked:
                    break
        if not linked and len(anchors) < MAX_ANCHORS:
            anchors.append(f)
    return out, pairs


def _exact(key: str, members: Sequence[int]) -> bool:
    """A block on an exact key too large to compare pairwise: linked through anchors."""
    return key.startswith(EXACT) and len(members) > MAX_BLOCK // 4


def _compare(
    conn: Connection,
    blocks: dict[str, list[int]],
    only: set[int] | None,
    known: dict[int, OrgFeatures] | None = None,
) -> tuple[list[Decision], int]:
    """Decisions for the pairs the blocks propose, and how many pairs were looked at.

    Blocks past ``MAX_BLOCK`` on a prefix are skipped, so their members' features are not
    read for them; ``known``: the features of every block member when the caller already
    holds them (a full run has just computed them all), so none are read back. Pairs seen
    are kept as one int each (``a << 64 | b``): no tuple per pair for the collector to walk.
    """
    used = [(k, m) for k, m in blocks.items() if _exact(k, m) or len(m) <= MAX_BLOCK]
    feats = known if known is not None else _load(conn, {r for _, m in used for r in m})
    pins = set(graph.all_pins(conn, ENTITY))
    pinned = {a << 64 | b for a, b in pins}
    seen: set[int] = set()
    found: list[Decision] = []
    exact_pairs = 0
    for key, members in used:
        if _exact(key, members):
            got, n = _exact_block(members, feats, pins)
            found.extend(d for d in got if (d.a << 64 | d.b) not in seen)
            seen.update(d.a << 64 | d.b for d in got)
            exact_pairs += n
        else:
            ids = sorted(r for r in members if r in feats)
            _pairwise(ids, feats, pinned, only, seen, found)
    return found, len(seen) + exact_pairs


def _pairwise(
    ids: list[int],
    feats: dict[int, OrgFeatures],
    pinned: set[int],
    only: set[int] | None,
    seen: set[int],
    found: list[Decision],
) -> None:
    """Every pair of a small block not looked at before (with ``only``: those touching it).

    From ``SCREEN_FROM`` members, only the pairs ``_may_link`` lets through are put to
    ``org_decide``; the others are counted as looked at without asking it.
    """
    dirty = only if only is not None else set()
    pairs = combinations(ids, 2) if len(ids) < SCREEN_FROM else _may_link(ids, feats)
    for a, b in pairs:
        if only is not None and a not in dirty and b not in dirty:
            continue
        pair = a << 64 | b
        if pair not in seen and pair not in pinned:
            seen.add(pair)
            d = org_decide(feats[a], feats[b])
            if d is not None:
                found.append(d)
    if len(ids) >= SCREEN_FROM:
        every = combinations(ids, 2)
        codes = (a << 64 | b for a, b in every if only is None or a in dirty or b in dirty)
        seen.update(codes if not pinned else (c for c in codes if c not in pinned))


def _may_link(ids: list[int], feats: dict[int, OrgFeatures]) -> list[tuple[int, int]]:
    """The pairs of a block (``combinations`` order) ``org_decide`` may not turn down, found
    for all of them at once: one 法人番号, one domain, or names at least ``SCREEN`` alike
    (below every threshold it applies, so float rounding cannot hide a pair)."""
    fs = [feats[r] for r in ids]
    corp, dom = _codes([f.corp for f in fs]), _codes([f.domain for f in fs])
    keys = [f.key for f in fs]
    named = np.array([bool(k) for k in keys])
    sim = cdist(keys, keys, scorer=Levenshtein.normalized_similarity, score_cutoff=SCREEN)
    both_corp = (corp > 0)[:, None] & (corp > 0)[None, :]
    both_dom = (dom > 0)[:, None] & (dom > 0)[None, :]
    near = named[:, None] & named[None, :] & (sim >= SCREEN)
    maybe = np.where(
        both_corp,
        corp[:, None] == corp[None, :],
        np.where(both_dom, dom[:, None] == dom[None, :], near),
    )
    i, j = np.triu_indices(len(ids), 1)
    keep = maybe[i, j]
    rid = np.asarray(ids, dtype=np.int64)
    return list(zip(rid[i[keep]].tolist(), rid[j[keep]].tolist(), strict=True))


def _codes(values: list[str]) -> NDArray[np.int64]:
    """Each value's number in order of appearance; 0 for none."""
    seen: dict[str, int] = {"": 0}
    return np.array([seen.setdefault(v, len(seen)) for v in values], dtype=np.int64)


def resolve_orgs(
    conn: Connection, ts: datetime, region: str = "JP", since: datetime | None = None
) -> dict[str, int]:
    """Resolve companies: all of them, or (with ``since``) only around those changed since."""
    o = t.Organization
    if since is None:
        feats = org_features(conn, region)
        _store(conn, feats, None)
        blocks: dict[str, list[int]] = defaultdict(list)
        for f in feats:
            for k in set(_keys(f)):
                blocks[k[:200]].append(f.id)
        blocks = {k: m for k, m in blocks.items() if len(m) > 1}
        found, pairs = _compare(conn, blocks, None, {f.id: f for f in feats})
        save_matches(conn, found, ts, entity=ENTITY)
        x = graph.X
        conn.execute(
            x.delete().where(
                x.c.entity == ENTITY,
                (x.c.decision == "merge") | (x.c.decision == "review"),
                x.c.updated_at < ts,
            )
        )
        changed = _cluster_all(conn, {f.id for f in feats}, found, ts)
        n = len(feats)
    else:
        dirty = [int(i) for (i,) in conn.execute(select(o.id).where(o.updated_at > since))]
        feats = org_features(conn, region, dirty)
        _store(conn, feats, dirty)
        keys = {k for f in feats for k in _keys(f)}
        by_digest = {blocking.digest(k): k for k in keys}
        blocks = defaultdict(list)
        held_d, held_r = key_table.lookup(conn, ENTITY, np.array(sorted(by_digest), np.int64))
        for digest, rid in zip(held_d.tolist(), held_r.tolist(), strict=True):
            blocks[by_digest[digest]].append(rid)
        added, dropped = key_table.renewed(conn, ENTITY, sorted(by_digest))
        for d in added.keys() | dropped.keys():  # as if folded in: in id order
            held = set(blocks.get(by_digest[d], [])) - dropped.get(d, set())
            blocks[by_digest[d]] = sorted(held.union(added.get(d, [])))
        blocks = {k: m for k, m in blocks.items() if len(m) > 1}
        found, pairs = _compare(conn, blocks, {f.id for f in feats})
        save_matches(conn, found, ts, entity=ENTITY)
        seeds = {d.a for d in found if d.decision == "merge"} | {
            d.b for d in found if d.decision == "merge"
        }
        changed = graph.recluster(conn, ENTITY, seeds) if seeds else set()
        n = len(feats)
    return {
        "organizations": n,
        "pairs": pairs,
        "merges": sum(1 for d in found if d.decision == "merge"),
        "reviews": sum(1 for d in found if d.decision == "review"),
        "clusters_changed": len(changed),
    }


def _cluster_all(
    conn: Connection, live: set[int], found: Sequence[Decision], ts: datetime
) -> set[int]:
    """Every company cluster again, from this run's merges (held here, not read back: the
    evidence as it stands after ``save_matches`` and the stale delete) and the pairs people
    accepted whose rows are still live."""
    edges, accepted = merging_edges(conn, found, ENTITY)
    edges += [e for e in accepted if e[0] in live and e[1] in live]
    nodes = {e[0] for e in edges} | {e[1] for e in edges}
    new = graph.cluster_edges(nodes, edges, graph.all_pins(conn, ENTITY))
    m = graph.M
    old = {
        int(r): int(c)
        for r, c in conn.execute(select(m.c.record_id, m.c.cluster_id).where(m.c.entity == ENTITY))
    }
    for r in old:
        new.setdefault(r, r)
    return graph.write_membership(conn, ENTITY, old, new, edges, ts)
