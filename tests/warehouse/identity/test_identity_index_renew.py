"""Incremental and full runs write only the index rows that changed, and leave what a rebuild
writes."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from sqlalchemy import Engine, event, update

from tests.warehouse.identity.test_identity_index_writer import _index
from tests.warehouse.identity.test_identity_resolve import CRM, MAIL, S, _person, _put, _tanaka
from warehouse import records as r
from warehouse import schema as t
from warehouse.identity import blocking
from warehouse.identity import schema as ids
from warehouse.identity.resolve import resolve_full, resolve_incremental
from warehouse.state import now


def _index_writes(engine: Engine) -> list[str]:
    """Every statement that writes the people's index, as the driver is given it."""
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def note(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        low = sql.lower()
        index = "identity_key" in low or "identity_feature" in low
        people = "person" in low or "person" in repr(params)  # not the companies' index
        if index and people and not low.startswith("select"):
            seen.append(sql)

    return seen


def test_an_unchanged_row_keeps_its_index_and_a_changed_one_is_renewed_by_difference(
    engine: Engine,
) -> None:
    _tanaka(engine)
    _put(engine, MAIL, _person("o1", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"]))
    resolve_full(engine, S)
    before = _index(engine)

    # A new title changes nothing the resolver compares: the index is not written at all.
    _put(engine, MAIL, _person("o1", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"], title="課長"))
    writes = _index_writes(engine)
    stats = resolve_incremental(engine, S)
    assert stats.mode == "incremental" and stats.records == 1
    assert stats.keys == 0 and writes == []
    assert _index(engine)["features"] == before["features"]
    assert _index(engine)["keys"] == before["keys"]

    # A new mail address: that row's features and only its new keys are written, its
    # unchanged keys stay, and the address it no longer has gives no key any more.
    _put(
        engine,
        MAIL,
        _person("o1", full_name="鈴木 一郎", emails=["suzuki@other.jp"], title="部長"),
    )
    _put(engine, CRM, _person("s8", full_name="佐藤 花子", organization=r.OrgRef(name="XYZ")))
    stats = resolve_incremental(engine, S)
    assert stats.records == 2 and 0 < stats.keys < len(before["keys"])
    after = _index(engine)
    assert after["keys"] != before["keys"]
    full = _rebuilt(engine)  # the same index as one written from scratch
    assert after["features"] == full["features"] and after["keys"] == full["keys"]


def _rebuilt(engine: Engine) -> dict[str, Any]:
    """The index (and evidence) a full run writes into an emptied index."""
    with engine.begin() as conn:
        blocking.clear(conn, "person")
    writes = _index_writes(engine)
    resolve_full(engine, S)
    assert any("identity_key" in w.lower() for w in writes)  # written in full, not renewed
    return _index(engine)


def test_a_full_run_renews_the_index_by_difference_and_leaves_what_a_rebuild_writes(
    engine: Engine,
) -> None:
    rows = _tanaka(engine)
    _put(engine, MAIL, _person("o1", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"]))
    first = resolve_full(engine, S)
    before = _index(engine)
    assert first.keys == len(before["keys"]) > 0

    # Nothing the resolver compares changed: a full run reads everything, writes no index row.
    _put(engine, MAIL, _person("o1", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"], title="課長"))
    writes = _index_writes(engine)
    again = resolve_full(engine, S)
    assert again.records == first.records and again.keys == 0 and writes == []
    assert _index(engine) == before

    # A new address, a new row, a row deleted (the first, the last: both ends of the ids).
    _put(engine, MAIL, _person("o1", full_name="鈴木 一郎", emails=["suzuki@other.jp"]))
    _put(engine, CRM, _person("s8", full_name="佐藤 花子", organization=r.OrgRef(name="XYZ")))
    with engine.begin() as conn:
        conn.execute(update(t.Person).where(t.Person.id == min(rows)).values(deleted_at=now()))
    writes.clear()
    renewed = resolve_full(engine, S)
    after = _index(engine)
    assert 0 < renewed.keys < len(after["keys"])  # only the changed rows' new keys
    assert min(rows) not in {rid for rid, _, _ in after["features"]}
    assert {rid for _, rid in after["keys"]} == {rid for rid, _, _ in after["features"]}
    # Nothing emptied the index: the statements wrote the rows that changed.
    emptied = re.compile(r"delete from identity_(key|feature) where identity_\w+\.entity = \S+")
    assert writes and not any(emptied.fullmatch(w.lower().strip()) for w in writes)
    assert after == _rebuilt(engine)


def test_a_row_whose_fingerprint_is_missing_or_wrong_is_written_again(engine: Engine) -> None:
    rows = _tanaka(engine)
    resolve_full(engine, S)
    before = _index(engine)
    assert all(fp is not None for _, _, fp in before["features"])
    lost, wrong = sorted(rows)[:2]
    f = t.table(ids.IdentityFeature)
    with engine.begin() as conn:
        conn.execute(update(f).where(f.c.record_id == lost).values(fingerprint=None))
        conn.execute(
            update(f).where(f.c.record_id == wrong).values(fingerprint=f.c.fingerprint + 1)
        )
    writes = _index_writes(engine)
    again = resolve_full(engine, S)
    # Both rows' features are written again (their keys were right: none added).
    assert again.keys == 0 and len(writes) == 1 and "identity_feature" in writes[0].lower()
    assert _index(engine) == before


def test_a_changed_rows_neighbours_skip_a_block_larger_than_its_bound(engine: Engine) -> None:
    """Each key's block is counted only up to its bound: at the bound it is read, one more
    and it is skipped, as blocking skips it in a full run."""
    digests = {11: 3, 12: 4, 13: 1, -(2**63) + 5: 2, 2**63 - 7: 120}  # digest → block size
    d = np.array([k for k, n in digests.items() for _ in range(n)], np.int64)
    rid = np.arange(1, d.shape[0] + 1, dtype=np.int64)
    with engine.begin() as conn:
        blocking.add_keys(conn, "person", (d, rid))
        caps = {11: 3, 12: 3, 13: 3, -(2**63) + 5: 2, 2**63 - 7: 100}
        near, skipped = blocking.neighbours(conn, "person", [*caps, 99], lambda k: caps.get(k, 3))
    want = {
        int(r) for k, r in zip(d.tolist(), rid.tolist(), strict=True) if k in (11, 13, -(2**63) + 5)
    }
    assert near == want and skipped == 2
