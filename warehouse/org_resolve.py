"""Identity resolution for organizations: the same company under several spellings.

The store already joins companies at write time by 法人番号, domain and normalised name;
what is left are spellings its normaliser does not fold (合同会社 as (同), hiragana and
katakana, 法人格 abbreviations) and companies known once by name and once by phone. Rules:
- two different 法人番号 are never the same company (the strongest key wins over any name);
- the same comparable name (``matching.org_key``) or the same phone with a near-identical
  name merges, unless the 法人番号 or the company domains disagree;
- a near-identical name alone goes to the review queue.

Companies are far fewer than people, so each run compares every block afresh in memory; the
result is written to the same identity graph (entity ``organization``) with the same stable
ids, aliases, pins and review queue as people.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

from rapidfuzz.distance import Levenshtein
from sqlalchemy import Connection, select

from warehouse import identity_graph as graph
from warehouse import schema as t
from warehouse.matching import Decision, org_key
from warehouse.normalize import normalize_phone
from warehouse.resolve import save_matches

ENTITY = "organization"
MAX_BLOCK = 200


@dataclass(frozen=True, slots=True)
class OrgFeatures:
    id: int
    key: str
    domain: str
    corp: str
    phone: str


def org_features(conn: Connection, region: str = "JP") -> list[OrgFeatures]:
    o = t.Organization
    rows = conn.execute(
        select(o.id, o.name, o.domain, o.corporate_number, o.phone).where(o.deleted_at.is_(None))
    )
    out = []
    for oid, name, domain, corp, phone in rows:
        out.append(
            OrgFeatures(
                int(oid),
                org_key(name) if name and name != domain else "",
                domain or "",
                corp or "",
                (normalize_phone(phone, region) or "") if phone else "",
            )
        )
    return out


def org_decide(a: OrgFeatures, b: OrgFeatures) -> Decision | None:
    lo, hi = (a, b) if a.id < b.id else (b, a)
    if lo.corp and hi.corp:
        if lo.corp == hi.corp:
            return Decision(lo.id, hi.id, "rule:corporate_number", 1.0, {"corp": 1.0}, "merge")
        return None
    if lo.domain and hi.domain and lo.domain != hi.domain:
        return None
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


def resolve_orgs(conn: Connection, ts: datetime, region: str = "JP") -> dict[str, int]:
    """Compare every company in its blocks and rebuild the organization clusters."""
    feats = {f.id: f for f in org_features(conn, region)}
    blocks: dict[str, list[int]] = defaultdict(list)
    for f in feats.values():
        for k in _keys(f):
            blocks[k].append(f.id)
    pins = set(graph.all_pins(conn, ENTITY))
    seen: set[tuple[int, int]] = set()
    found: list[Decision] = []
    for members in blocks.values():
        if len(members) > MAX_BLOCK:
            continue
        for a, b in combinations(sorted(members), 2):
            if (a, b) in seen or (a, b) in pins:
                continue
            seen.add((a, b))
            d = org_decide(feats[a], feats[b])
            if d is not None:
                found.append(d)
    save_matches(conn, found, ts, entity=ENTITY)
    x = graph.X
    conn.execute(
        x.delete().where(
            x.c.entity == ENTITY,
            (x.c.decision == "merge") | (x.c.decision == "review"),
            x.c.updated_at < ts,
        )
    )
    edges = [
        (int(a), int(b), "manual" if dec == "accepted" else m, float(s), int(i))
        for a, b, m, s, i, dec in conn.execute(
            select(x.c.a_id, x.c.b_id, x.c.method, x.c.score, x.c.id, x.c.decision).where(
                x.c.entity == ENTITY, x.c.decision.in_(graph.MERGING)
            )
        )
        if int(a) in feats and int(b) in feats
    ]
    nodes = {e[0] for e in edges} | {e[1] for e in edges}
    new = graph.cluster_edges(nodes, edges, graph.all_pins(conn, ENTITY))
    m = graph.M
    old = {
        int(r): int(c)
        for r, c in conn.execute(select(m.c.record_id, m.c.cluster_id).where(m.c.entity == ENTITY))
    }
    for r in old:
        new.setdefault(r, r)
    changed = graph.write_membership(conn, ENTITY, old, new, edges, ts)
    return {
        "organizations": len(feats),
        "pairs": len(seen),
        "merges": sum(1 for d in found if d.decision == "merge"),
        "reviews": sum(1 for d in found if d.decision == "review"),
        "clusters_changed": len(changed),
    }
