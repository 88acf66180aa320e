"""Incremental and full runs write only the index rows that changed, and leave what a rebuild
writes."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import shutil
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, event, select, update

from tests.warehouse.identity.test_identity_index_writer import _index
from tests.warehouse.identity.test_identity_resolve import CRM, MAIL, S, _person, _put, _tanaka
from warehouse import records as r
from warehouse import schema as t
from warehouse.db import make_engine
from warehouse.identity import blocking, resolve
from warehouse.identity import schema as ids
from warehouse.identity.linkage import key_table
from warehouse.identity.resolve import resolve_full, resolve_incremental
from warehouse.identity.upkeep import renewal
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


def near(
    conn: Any, caps: dict[int, int], shift: dict[int, tuple[int, int]] | None = None
) -> tuple[set[int], int]:
    """``blocking.neighbours`` of the keys ``caps`` names (key → its bound), ``shift``: key →
    (rows a change takes out of its block, rows it puts in)."""
    keys = np.array(sorted(caps), np.int64)
    moves = [(shift or {}).get(k, (0, 0)) for k in keys.tolist()]
    out, into = (np.array([m[i] for m in moves], np.int64) for i in (0, 1))
    bounds = np.array([caps[k] for k in keys.tolist()], np.int64)
    return blocking.neighbours(conn, "person", keys, bounds, out, into)


def test_a_changed_rows_neighbours_skip_a_block_larger_than_its_bound(engine: Engine) -> None:
    """Each key's block is counted only up to its bound: at the bound it is read, one more
    and it is skipped, as blocking skips it in a full run."""
    digests = {11: 3, 12: 4, 13: 1, -(2**63) + 5: 2, 2**63 - 7: 120}  # digest → block size
    d = np.array([k for k, n in digests.items() for _ in range(n)], np.int64)
    rid = np.arange(1, d.shape[0] + 1, dtype=np.int64)
    with engine.begin() as conn:
        key_table.add_keys(conn, "person", (d, rid))
        caps = {11: 3, 12: 3, 13: 3, -(2**63) + 5: 2, 2**63 - 7: 100}
        found, skipped = near(conn, caps | {99: 3})
    want = {
        int(r) for k, r in zip(d.tolist(), rid.tolist(), strict=True) if k in (11, 13, -(2**63) + 5)
    }
    assert found == want and skipped == 2


def test_a_change_counts_each_block_as_it_will_be_once_written(engine: Engine) -> None:
    """The neighbours of a change not written yet: a block a changed row joins is counted
    with it, one it leaves without it, so a block at its bound is read or skipped as it
    will be, whichever the stored index says."""
    sizes = {21: 3, 22: 4, 23: 5, 24: 2}  # digest → rows stored in its block
    d = np.array([k for k, n in sizes.items() for _ in range(n)], np.int64)
    rid = np.arange(1, d.shape[0] + 1, dtype=np.int64)
    with engine.begin() as conn:
        key_table.add_keys(conn, "person", (d, rid))
        # 21: 3 stored, one joins → 4 > 3, skipped. 22: 4 stored, one leaves → 3, read.
        # 23: 5 stored, one leaves → 4, skipped. 24: 2 stored, one leaves, one joins → 2.
        shift = {21: (0, 1), 22: (1, 0), 23: (1, 0), 24: (1, 1)}
        found, skipped = near(conn, dict.fromkeys(sizes, 3), shift)
        plain, plain_skipped = near(conn, dict.fromkeys(sizes, 3))
    assert skipped == 2 and found == {int(r) for k, r in zip(d, rid, strict=True) if k in (22, 24)}
    assert plain_skipped == 2 and plain == {
        int(r) for k, r in zip(d, rid, strict=True) if k in (21, 24)
    }


def _renamed(sid: str, name: str, **kw: Any) -> r.Person:
    return r.Person(source_id=sid, payload_hash=f"renamed-{sid}-{name}", full_name=name, **kw)


def _store_and_change(engine: Engine) -> None:
    """A small store resolved in full, then a change: a row renamed into another name's
    blocks, a new row, a row deleted."""
    _tanaka(engine)
    _put(engine, MAIL, _person("m3", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"]))
    _put(engine, MAIL, _person("m4", full_name="鈴木 二郎", phones=["0311112222"]))
    _put(engine, CRM, _person("c5", full_name="佐藤 花子", emails=["hanako@abc.co.jp"]))
    _put(engine, CRM, _person("c6", full_name="田中 一郎", emails=["ichiro@tanaka.jp"]))
    resolve_full(engine, S)
    _put(engine, MAIL, _renamed("m3", "田中 一郎", emails=["ichiro@tanaka.jp"]))
    _put(engine, CRM, _renamed("c7", "すずき じろう", phones=["03-1111-2222"]))
    with engine.begin() as conn:
        conn.execute(
            update(t.Person)
            .where(t.Person.full_name == "佐藤 花子")
            .values(deleted_at=now(), updated_at=now())
        )


def _by_record(engine: Engine) -> dict[str, Any]:
    """The person index, evidence and clusters by each row's record key (ids may differ
    between two databases given the same rows)."""
    got = _index(engine)
    with engine.connect() as conn:
        key = dict(conn.execute(select(t.Person.id, t.Person.record_key)).tuples().all())
        members = conn.execute(
            select(ids.IdentityMember.record_id, ids.IdentityMember.cluster_id).where(
                ids.IdentityMember.entity == "person"
            )
        ).all()
    return {
        "features": sorted((key[i], data, fp) for i, data, fp in got["features"]),
        "keys": sorted((dg, key[i]) for dg, i in got["keys"]),
        "matches": sorted((key[a], key[b], round(s, 9), dec) for a, b, s, dec in got["matches"]),
        "members": sorted((key[i], key[c]) for i, c in members),
    }


def _twin(engine: Engine, tmp_path: Any, request: Any) -> Engine:
    """A SQLite store beside ``engine``, both given the same rows and change."""
    shutil.copyfile(request.getfixturevalue("_sqlite_template"), tmp_path / "one.db")
    one = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    for eng in (engine, one):
        _store_and_change(eng)
    return one


def _apart(monkeypatch: Any, rows: int = 1) -> None:
    """A change of ``rows`` rows or more scored in a second process, whatever the machine."""
    monkeypatch.setattr(resolve, "workers", lambda: 2)
    monkeypatch.setattr(resolve, "room", lambda: True)
    monkeypatch.setattr(resolve, "AROUND_ROWS", rows)


def _killed_after(monkeypatch: Any, module: Any, name: str, mark: Any, text: str) -> Any:
    """``module.name`` that, run in the second process, writes ``text`` to ``mark`` and
    kills that process (exit code 9) once it returns; gives back the real one."""
    here, real = os.getpid(), getattr(module, name)

    def killing(*args: Any) -> Any:
        got = real(*args)
        if os.getpid() != here:
            mark.write_text(text)
            os._exit(9)
        return got

    monkeypatch.setattr(module, name, killing)
    return real


def test_a_change_scored_beside_its_index_write_decides_as_in_one_process(
    engine: Engine, tmp_path: Any, request: Any, monkeypatch: Any
) -> None:
    """A change is scored in a second process while this one writes it to the index: the
    second process reads the index as stored, and counts blocks as they will be. Here it
    waits until the change is written (not committed) before it reads anything, and the
    run commits only once it has read: it decides exactly what one process decides
    reading before it writes."""
    one = _twin(engine, tmp_path, request)

    written = mp.get_context("fork").Event()
    here = os.getpid()
    log = tmp_path / "scored"
    real_write, real_around = resolve.write_change, resolve.around

    def write_change(conn: Any, change: Any) -> int:
        n = real_write(conn, change)
        written.set()
        return n

    def around(conn: Any, settings: Any, change: Any) -> Any:
        waited = os.getpid() != here and written.wait(30)
        got = real_around(conn, settings, change)
        log.write_text(f"{os.getpid()} {waited}")
        return got

    monkeypatch.setattr(resolve, "write_change", write_change)
    monkeypatch.setattr(resolve, "around", around)
    _apart(monkeypatch, 10**9)
    alone = resolve_incremental(one, S)
    assert log.read_text() == f"{here} False"  # read here, before the change was written
    _apart(monkeypatch)
    written.clear()
    beside = resolve_incremental(engine, S)
    pid, waited = log.read_text().split()
    assert int(pid) != here and waited == "True"  # apart, once the change was written

    assert beside.records == alone.records == 2
    assert (beside.pairs, beside.merges, beside.reviews) == (
        alone.pairs,
        alone.merges,
        alone.reviews,
    )
    assert beside.merges >= 1  # the renamed row found its namesake through its new keys
    assert _by_record(engine) == _by_record(one)
    one.dispose()


def test_a_run_whose_scoring_process_dies_leaves_what_the_next_run_finishes(
    engine: Engine, tmp_path: Any, request: Any, monkeypatch: Any
) -> None:
    """The process scoring a change is killed half-way through its reads: the run stops with
    one line naming it, having committed the renewed index but not the watermark, and the
    next run scores the same rows again and ends where a run never stopped ends."""
    one = _twin(engine, tmp_path, request)
    resolve_incremental(one, S)  # the run that is never stopped

    mark = tmp_path / "killed"
    # Killed once the neighbours' features are read: half-way through its reads.
    real_load = _killed_after(monkeypatch, renewal, "load_features", mark, "reads begun")
    _apart(monkeypatch)
    with engine.connect() as conn:
        before = resolve.watermark(conn)
    with pytest.raises(RuntimeError) as stopped:
        resolve_incremental(engine, S)
    assert mark.read_text() == "reads begun"  # the kill landed inside the second process
    assert str(stopped.value) == "scoring the changed rows failed: it stopped with exit code 9"
    with engine.connect() as conn:
        assert resolve.watermark(conn) == before  # not moved: the next run reads them again

    monkeypatch.setattr(renewal, "load_features", real_load)
    again = resolve_incremental(engine, S)
    assert again.records == 2 and again.keys == 0  # the index was renewed by the stopped run
    assert _by_record(engine) == _by_record(one)
    one.dispose()


def test_a_run_whose_scoring_process_dies_before_handing_its_change_over_writes_no_index(
    engine: Engine, tmp_path: Any, request: Any, monkeypatch: Any
) -> None:
    """The second process prepares the change and is killed before it hands it over: the
    run stops with one line naming it, nothing of the people's index is written, the
    watermark stays, and the next run ends where a run never stopped ends."""
    one = _twin(engine, tmp_path, request)
    resolve_incremental(one, S)

    mark = tmp_path / "killed"
    real_read = _killed_after(monkeypatch, resolve, "read_change", mark, "prepared")
    _apart(monkeypatch)
    index = _index(engine)
    with engine.connect() as conn:
        before = resolve.watermark(conn)
    with pytest.raises(RuntimeError) as stopped:
        resolve_incremental(engine, S)
    assert mark.read_text() == "prepared"  # killed in the second process, change in hand
    assert str(stopped.value) == "scoring the changed rows failed: it stopped with exit code 9"
    got = _index(engine)
    assert (got["features"], got["keys"]) == (index["features"], index["keys"])
    with engine.connect() as conn:
        assert resolve.watermark(conn) == before

    monkeypatch.setattr(resolve, "read_change", real_read)
    again = resolve_incremental(engine, S)
    assert again.records == 2 and again.keys > 0  # this time the index is renewed
    assert _by_record(engine) == _by_record(one)
    one.dispose()
