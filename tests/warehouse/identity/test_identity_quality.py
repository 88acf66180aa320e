"""Matcher quality on labelled data, through the warehouse (a test that can fail)."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

from sqlalchemy import Engine, select

from bench.identity.identity_data import febrl
from warehouse import schema as t
from warehouse.identity import schema as ids
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.resolve import resolve_full
from warehouse.state import StreamKey
from warehouse.write.store import apply_page


def test_febrl1_f1_is_at_least_0_9(engine: Engine) -> None:
    people, truth = febrl(1)
    with engine.begin() as conn:
        apply_page(conn, StreamKey("febrl", "people"), records=people, cursor=None)
    resolve_full(engine, MatchSettings())
    with engine.connect() as conn:
        source = {
            eid: sid
            for eid, sid in conn.execute(select(t.SourceRecord.entity_id, t.SourceRecord.source_id))
        }
        clusters: dict[int, list[str]] = defaultdict(list)
        for rid, cid in conn.execute(
            select(ids.IdentityMember.record_id, ids.IdentityMember.cluster_id)
        ):
            clusters[cid].append(source[rid])
    predicted = {p for m in clusters.values() for p in combinations(sorted(m), 2)}
    tp = len(predicted & truth)
    precision, recall = tp / len(predicted), tp / len(truth)
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= 0.9, (precision, recall, f1)
    assert precision >= 0.95
