"""An incremental run renews people's keys beside ``identity_key`` (``identity_key_delta``);
lookups apply them, and a full run (or enough of them) folds them in."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Connection, Engine, select, update

from tests.warehouse.identity.test_identity_index_renew import _rebuilt, _store_and_change, near
from tests.warehouse.identity.test_identity_index_writer import _index
from tests.warehouse.identity.test_identity_orgs import _org, _orgs
from tests.warehouse.identity.test_identity_resolve import MAIL, S, _put
from warehouse import records as r
from warehouse import schema as t
from warehouse.identity import blocking, graph
from warehouse.identity import schema as ids
from warehouse.identity.linkage import key_table
from warehouse.identity.resolve import resolve_full, resolve_incremental
from warehouse.state import now


def _raw(engine: Engine) -> tuple[list[Any], list[Any]]:
    """The people's rows of ``identity_key`` and of the delta, as stored."""
    d = ids.IdentityKeyDelta
    with engine.connect() as conn:
        keys = _pairs(key_table.stored_keys(conn, "person"))
        delta = conn.execute(
            select(d.digest, d.record_id, d.n)
            .where(d.entity == "person")
            .order_by(d.digest, d.record_id)
        ).all()
    return [tuple(x) for x in keys], [tuple(x) for x in delta]


def _pairs(keys: key_table.Digests) -> list[tuple[int, int]]:
    return list(zip(keys[0].tolist(), keys[1].tolist(), strict=True))


def _note(conn: Connection, keys: key_table.Digests, n: int) -> None:
    """Keys an incremental run added (``n`` 1) or dropped (-1)."""
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    key_table.note(conn, "person", *((keys, none) if n < 0 else (none, keys)))


def test_an_incremental_run_leaves_identity_key_as_it_was_and_a_full_run_folds_its_keys_in(
    engine: Engine,
) -> None:
    _store_and_change(engine)  # a full run, then a row renamed, a row added, a row deleted
    stored, delta = _raw(engine)
    assert delta == []
    stats = resolve_incremental(engine, S)
    assert stats.mode == "incremental" and stats.keys > 0
    keys, delta = _raw(engine)
    assert keys == stored  # not one page of the large table rewritten
    assert {n for _, _, n in delta} == {-1, 1}  # the renamed and deleted rows' keys, the new
    after = _index(engine)
    assert after["keys"] != stored

    # A full run folds the delta in before renewing: identity_key is then the index itself,
    # the one a rebuild from scratch writes.
    again = resolve_full(engine, S)
    keys, delta = _raw(engine)
    assert again.keys == 0 and delta == [] and keys == after["keys"]
    assert _index(engine)["features"] == after["features"]
    assert _rebuilt(engine)["keys"] == after["keys"]


def test_an_incremental_run_folds_the_delta_once_it_holds_enough_keys(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store_and_change(engine)
    monkeypatch.setattr(key_table, "FOLD_AT", 1)
    resolve_incremental(engine, S)
    keys, delta = _raw(engine)
    assert delta == [] and keys == _index(engine)["keys"] == _rebuilt(engine)["keys"]


def test_keys_noted_twice_count_once_and_an_add_and_a_drop_cancel_out(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_table, "_FOLD_PAGE", 2)  # folded a page of two keys at a time
    held = np.array([41, 41, 42], np.int64), np.array([1, 2, 3], np.int64)
    one = np.array([41], np.int64), np.array([1], np.int64)  # stored: drop, then add again
    new = np.array([42], np.int64), np.array([9], np.int64)  # not stored: add twice, drop once
    twice = np.array([43], np.int64), np.array([8], np.int64)  # added twice: held once
    with engine.begin() as conn:
        key_table.add_keys(conn, "person", held)
        _note(conn, one, -1)
        _note(conn, one, -1)  # a run replayed: still dropped once
        assert near(conn, {41: 5})[0] == {2}
        _note(conn, one, 1)
        for n in (1, 1, -1):
            _note(conn, new, n)
        _note(conn, twice, 1)
        _note(conn, twice, 1)
        found, skipped = near(conn, dict.fromkeys([41, 42, 43], 5))
        assert found == {1, 2, 3, 8} and skipped == 0
        assert key_table.fold(conn, "person") == 3
        folded = near(conn, dict.fromkeys([41, 42, 43], 5))
    assert folded == (found, 0)
    keys, delta = _raw(engine)
    assert delta == [] and keys == [(41, 1), (41, 2), (42, 3), (43, 8)]


def test_a_block_is_sized_with_the_keys_renewed_since_the_last_full_run(engine: Engine) -> None:
    """A block is read up to its bound plus the rows dropped from it: those are not in it any
    more, and the rows added to it are."""
    sizes = {31: 4, 32: 3, 33: 3, 34: 4, 35: 10}  # digest → rows in identity_key
    d = np.array([k for k, n in sizes.items() for _ in range(n)], np.int64)
    rid = np.arange(1, d.shape[0] + 1, dtype=np.int64)
    first = {k: int(rid[d == k][0]) for k in sizes}
    with engine.begin() as conn:
        key_table.add_keys(conn, "person", (d, rid))
        drop = [31, 33, 34, 35]  # each block's first row dropped
        _note(conn, (np.array(drop, np.int64), np.array([first[k] for k in drop])), -1)
        add = [32, 33]  # a row 100 + digest added to these
        _note(conn, (np.array(add, np.int64), np.array([100 + k for k in add])), 1)
        # 31: 4 - 1 = 3, read. 32: 3 + 1 = 4, skipped. 33: 3 - 1 + 1 = 3, read with its new
        # row. 34: 4 - 1 = 3, and a change moves one more out: 2, read. 35: 10 - 1 > 3.
        found, skipped = near(conn, dict.fromkeys(sizes, 3), {34: (1, 0)})
    want = {int(r) for k, r in zip(d, rid, strict=True) if k in (31, 33, 34)}
    assert skipped == 2 and found == want - {first[31], first[33], first[34]} | {133}


def test_forgetting_a_row_drops_its_keys_from_both_tables(engine: Engine) -> None:
    _store_and_change(engine)
    resolve_incremental(engine, S)
    _, delta = _raw(engine)
    renamed = max(r for _, r, n in delta if n > 0)
    with engine.begin() as conn:
        assert blocking.forget(conn, "person", [renamed]) == 1
    keys, delta = _raw(engine)
    assert renamed not in {r for _, r in keys} | {r for _, r, _ in delta}


def test_a_changed_company_is_found_through_the_keys_noted_beside_the_companies_index(
    engine: Engine,
) -> None:
    ids_of = _orgs(engine, _org("1", "合同会社サクラ商事"), _org("2", "ミドリ物産株式会社"))
    resolve_full(engine, S)
    with engine.connect() as conn:
        stored = _pairs(key_table.stored_keys(conn, "organization"))
    ids_of |= _orgs(engine, _org("3", "ハヤテ運輸株式会社"))  # its keys: only in the delta
    resolve_incremental(engine, S)
    ids_of |= _orgs(engine, _org("4", "はやて運輸(株)"))  # found only through them
    resolve_incremental(engine, S)
    with engine.connect() as conn:
        after = _pairs(key_table.stored_keys(conn, "organization"))
        noted = conn.execute(
            select(ids.IdentityKeyDelta.record_id).where(
                ids.IdentityKeyDelta.entity == "organization", ids.IdentityKeyDelta.n == 1
            )
        ).scalars()
        assert sorted(after) == sorted(stored) and set(noted) == {ids_of["3"], ids_of["4"]}
        cluster = {graph.resolve_id(conn, "organization", ids_of[s]) for s in "34"}
        assert len(cluster) == 1 and not cluster & {ids_of["1"], ids_of["2"]}
    resolve_full(engine, S)  # written afresh: nothing left beside it, the same companies
    with engine.connect() as conn:
        assert conn.execute(select(ids.IdentityKeyDelta.n)).first() is None
        assert {graph.resolve_id(conn, "organization", ids_of[s]) for s in "34"} == cluster


def test_runs_of_random_changes_keep_the_index_the_stored_features_make(engine: Engine) -> None:
    """Rounds of renames, new mailboxes, new rows and deletions, each resolved incrementally:
    after every round the index (``identity_key`` with the delta applied) is exactly the
    keys of the features stored for the live rows, as a rebuild would write them."""
    rng = random.Random(7)
    names = ["田中 太郎", "田中 花子", "鈴木 一郎", "佐藤 次郎", "高橋 三郎", "たなか たろう"]
    mails = ["a@x.jp", "b@x.jp", "c@y.jp", "d@y.jp", "e@z.jp"]

    def row(sid: str, salt: int) -> r.Person:
        return r.Person(
            source_id=sid,
            payload_hash=f"{sid}-{salt}",
            full_name=rng.choice(names),
            emails=rng.sample(mails, rng.randint(0, 2)),
            phones=[f"03-1111-{rng.randint(1000, 1009)}"] if rng.random() < 0.5 else [],
        )

    _put(engine, MAIL, *(row(f"p{i}", 0) for i in range(30)))
    resolve_full(engine, S)
    for round_ in range(1, 6):
        edits = [row(f"p{rng.randrange(40)}", round_) for _ in range(8)]
        _put(engine, MAIL, *{p.source_id: p for p in edits}.values())
        with engine.begin() as conn:
            gone = rng.sample(range(1, 31), 2)
            conn.execute(
                update(t.Person)
                .where(t.Person.id.in_(gone), t.Person.deleted_at.is_(None))
                .values(deleted_at=now(), updated_at=now())
            )
        resolve_incremental(engine, S)
        with engine.connect() as conn:
            live = {
                int(i)
                for (i,) in conn.execute(select(t.Person.id).where(t.Person.deleted_at.is_(None)))
            }
            features = blocking.stored(conn, "person", live)
        d, rid = blocking.stored_digests(sorted(features.items()))
        want = sorted(set(zip(d.tolist(), rid.tolist(), strict=True)))
        got = _index(engine)["keys"]
        assert set(features) == live and got == want, f"round {round_}"
    _, delta = _raw(engine)
    assert any(n == -1 for *_, n in delta) and any(n == 1 for *_, n in delta)


def test_keys_written_into_an_emptied_index_keep_every_64_bit_value(engine: Engine) -> None:
    d = np.array([-(2**63), -1, 0, 1, 2**63 - 1, 2**63 - 1], np.int64)
    rid = np.array([5, 4, 3, 2, 1, 9], np.int64)
    with engine.begin() as conn:
        key_table.add_keys(conn, "person", (d, rid), fresh=True)
    keys, _ = _raw(engine)
    assert keys == sorted(zip(d.tolist(), rid.tolist(), strict=True))


def test_buckets_hold_their_keys_in_order_and_go_when_emptied(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys are kept a bucket of digests to a row: a lookup finds only the digests asked
    for, in (digest, record) order; a key added to a bucket joins it in order; a bucket
    whose keys are all dropped is deleted; written a page of buckets at a time or at once,
    the rows are the same."""
    step = 1 << key_table.SHIFT
    d = np.array([-3 * step, -3 * step + 7, 5, 5, 5 + step, 2**63 - 1], np.int64)
    rid = np.array([30, 31, 12, 10, 11, 1], np.int64)
    with engine.begin() as conn:
        key_table.add_keys(conn, "person", (d, rid), fresh=True)
        at_once = conn.execute(select(ids.IdentityKey.bucket, ids.IdentityKey.pairs)).all()
        conn.execute(ids.IdentityKey.__table__.delete())
        monkeypatch.setattr(key_table, "_PAGE", 2)  # two buckets a statement
        key_table.add_keys(conn, "person", (d, rid), fresh=True)
        paged = conn.execute(select(ids.IdentityKey.bucket, ids.IdentityKey.pairs)).all()
        assert sorted(paged) == sorted(at_once) and len(paged) == 4  # four buckets
        # From pieces that cut buckets in two (a first run's keys read back from its spool):
        # each bucket is still written once, whole.
        conn.execute(ids.IdentityKey.__table__.delete())
        order = np.lexsort((rid, d))
        sd, sr = d[order], rid[order]
        pieces = [(sd[a:b], sr[a:b]) for a, b in ((0, 1), (1, 3), (3, 3), (3, 6))]
        assert key_table.add_fresh(conn, "person", pieces) == 6
        cut = conn.execute(select(ids.IdentityKey.bucket, ids.IdentityKey.pairs)).all()
        assert sorted(cut) == sorted(at_once)
        found = key_table.lookup(conn, "person", np.array([5, -3 * step], np.int64))
        assert _pairs(found) == [(-3 * step, 30), (5, 10), (5, 12)]
        key_table.add_keys(conn, "person", (np.array([5], np.int64), np.array([11], np.int64)))
        found = key_table.lookup(conn, "person", np.array([5], np.int64))
        assert _pairs(found) == [(5, 10), (5, 11), (5, 12)]
        key_table.drop_keys(conn, "person", (d[:2], rid[:2]))  # the first bucket's two keys
        held = conn.execute(select(ids.IdentityKey.bucket)).scalars().all()
        assert sorted(held) == sorted({int(x) >> key_table.SHIFT for x in d[2:]})
    keys, _ = _raw(engine)
    assert keys == [(5, 10), (5, 11), (5, 12), (5 + step, 11), (2**63 - 1, 1)]
