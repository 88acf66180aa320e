"""The write path's shortcuts store exactly what the long way did (both databases)."""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from flows import gc_pause
from flows.engine import StreamSpec, _map_page
from warehouse import records as r
from warehouse import schema as t
from warehouse.db import write_transaction
from warehouse.state import StreamKey
from warehouse.write import bulk_pg
from warehouse.write.bulk import PlannerStats, executemany, insert_ids
from warehouse.write.store import apply_page, unchanged_ids

KEY = StreamKey("export", "rows")


def test_gc_is_held_back_during_a_stream_and_restored_after_the_last_one() -> None:
    before = gc.get_threshold()
    with gc_pause.paused():
        assert gc.get_threshold()[0] >= gc_pause.YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
        with gc_pause.paused():  # a second stream of the same process
            pass
        assert gc.get_threshold()[0] >= gc_pause.YOUNG_THRESHOLD  # still the outer one's
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_bad_unicode_is_still_made_safe_deep_inside_a_record() -> None:
    p = r.Person(
        source_id="1\x00",
        full_name="田中\udcff",
        attributes={"note": ["ok", {"deep": "a\x00b"}]},
    )
    assert p.source_id == "1\ufffd"
    assert p.full_name == "田中\\udcff"
    assert p.attributes == {"note": ["ok", {"deep": "a\ufffdb"}]}
    clean = r.Person(source_id="2", full_name="鈴木", attributes={"n": [1, 2.5, None]})
    assert clean.attributes == {"n": [1, 2.5, None]}


def _spec(mapper: Any) -> StreamSpec:
    return StreamSpec(
        connector="export",
        stream="rows",
        read=lambda cursor: iter(()),
        cursor_type=object,  # type: ignore[arg-type]
        source_id=lambda raw: str(raw["id"]),
        map=mapper,
    )


def test_mapped_records_get_their_rows_hash_and_locator_without_sharing() -> None:
    shared = r.Person(source_id="x", full_name="共有")

    def mapper(raw: dict[str, Any]) -> list[r.Record]:
        own = r.Person(source_id=str(raw["id"]), full_name="本人")
        return [own, shared]

    rows = [("1", {"id": 1}), ("2", {"id": 2})]
    out, bad = _map_page(_spec(mapper), rows, set(), {"1": "h1", "2": "h2"}, {"1": "f.csv:1"})
    assert bad == []
    assert [(x.source_id, x.payload_hash, x.locator) for x in out] == [
        ("1", "h1", "f.csv:1"),
        ("x", "h1", "f.csv:1"),
        ("2", "h2", None),
        ("x", "h2", None),  # the instance handed out twice is copied, not overwritten
    ]
    assert out[1] is shared and out[3] is not shared
    assert {"payload_hash", "locator"} <= out[0].model_fields_set


def test_unchanged_ids_binds_a_whole_page_as_one_list(engine: Engine) -> None:
    people = [r.Person(source_id=f"C{i:05d}", payload_hash=f"h{i}") for i in range(2500)]
    with write_transaction(engine) as conn:
        apply_page(conn, KEY, records=people)
    hashes = {f"C{i:05d}": f"h{i}" for i in range(2600)}  # 100 new ids
    hashes["C00007"] = "changed"
    with engine.connect() as conn:
        same = unchanged_ids(conn, KEY, hashes)
    assert same == {f"C{i:05d}" for i in range(2500)} - {"C00007"}


def test_planner_statistics_follow_the_rows_a_pass_writes(engine: Engine) -> None:
    planner = PlannerStats(first=2)
    with write_transaction(engine) as conn:
        apply_page(conn, KEY, records=[r.Person(source_id="1", payload_hash="a")])
        early = planner.after_page(conn, 1)  # below ``first``: not yet
        analysed = planner.after_page(conn, 1)
        again = planner.after_page(conn, 1)  # not doubled yet
    assert early is False
    assert analysed is (engine.dialect.name == "postgresql")
    assert again is False
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            tuples = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = 'source_record'::regclass")
            ).scalar_one()
        assert tuples >= 1  # -1 would mean never analysed: the planner thinks it is empty
        big = PlannerStats(first=2)  # a table analysed with more rows than a pass writes
        with write_transaction(engine) as conn:
            conn.execute(text("ANALYZE source_record"))
            big.next_at = None
            assert big.after_page(conn, 1) is False
        assert big.next_at is not None and big.next_at >= 2


def _deals(tag: str, ts: datetime) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{tag}{i}",
            "organization_id": None,
            "person_id": None,
            "stage": None if i % 2 else "提案",
            "amount": Decimal("1234.50") if i % 3 else None,
            "currency": "JPY",
            "probability": 0.25,
            "expected_close": date(2026, 3, i % 28 + 1),
            "status": "open",
            "owner_id": None,
            "attributes": {"k": ["値", i], "n": None},
            "created_at": ts,
            "updated_at": ts,
        }
        for i in range(20)
    ]


def test_bulk_inserts_and_updates_store_what_execute_stores(engine: Engine) -> None:
    """SQLite's driver executemany, PostgreSQL's COPY and pipelined executemany all go
    through SQLAlchemy's bind processors: the stored rows equal ``conn.execute``'s."""
    d = t.table(t.Deal)
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=9)))
    change = (
        update(d)
        .where(d.c.id == bindparam("b_id"))
        .values(
            stage=bindparam("stage"), attributes=bindparam("attributes"), updated_at=bindparam("u")
        )
    )
    later = ts + timedelta(days=1)
    with write_transaction(engine) as conn:
        fast = insert_ids(conn, t.Deal, _deals("a", ts))
        slow = [
            int(i) for i in conn.execute(insert(d).returning(d.c.id), _deals("b", ts)).scalars()
        ]
        ups = lambda ids: [  # noqa: E731
            {"b_id": i, "stage": "受注", "attributes": {"x": n}, "u": later}
            for n, i in enumerate(ids)
        ]
        executemany(conn, change, ups(fast))
        conn.execute(change, ups(slow))
    cols = [c for c in d.c if c.name not in ("id", "name")]
    with engine.connect() as conn:
        got = {
            row[0]: tuple(row[1:]) for row in conn.execute(select(d.c.name, *cols).order_by(d.c.id))
        }
    assert len(fast) == 20 and len(set(fast) | set(slow)) == 40
    for i in range(20):
        assert got[f"a{i}"] == got[f"b{i}"]
    assert got["a1"][cols.index(d.c.updated_at)] == later


def test_a_failed_bulk_insert_is_a_database_error_without_values(engine: Engine) -> None:
    rows = [r | {"name": None} for r in _deals("x", datetime(2026, 1, 1, tzinfo=UTC))]
    with pytest.raises(DBAPIError) as err, write_transaction(engine) as conn:
        insert_ids(conn, t.Deal, rows)
    assert "値" not in str(err.value)


def test_set_based_updates_and_inserts_store_what_row_by_row_stores(engine: Engine) -> None:
    """``bulk_pg``: a page's UPDATEs by id and insert-or-ignore rows (COPY into a staging
    table and one statement on PostgreSQL) store exactly what one statement per row does:
    every column type, an id given twice (the last row wins), a key given twice or already
    stored (kept as it was), and two pages in one transaction (the staging table emptied)."""
    d, pe = t.table(t.Deal), t.table(t.PersonEmail)
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=9)))
    later = ts + timedelta(days=1)

    def ups(ids: list[int], stage: str) -> list[dict[str, Any]]:
        rows = [
            {
                "b_id": i,
                "stage": stage if n % 3 else None,
                "amount": Decimal("99.5") if n % 2 else None,
                "expected_close": date(2026, 5, n % 28 + 1),
                "attributes": {"x": n, "b": bool(n % 2), "s": ["値", None]},
                "updated_at": later,
            }
            for n, i in enumerate(ids)
        ]
        return [*rows, rows[0] | {"stage": "最後"}]  # the first id again: this row wins

    with write_transaction(engine) as conn:
        fast = insert_ids(conn, t.Deal, _deals("a", ts))
        slow = insert_ids(conn, t.Deal, _deals("b", ts))
        person = {"full_name": "x", "attributes": {}, "created_at": ts, "updated_at": ts}
        people = insert_ids(conn, t.Person, [person, person])
        for page in ("一", "二"):  # two pages, one transaction
            bulk_pg.update_by_id(conn, d, ups(fast, page))
            for row in ups(slow, page):
                conn.execute(
                    update(d)
                    .where(d.c.id == row["b_id"])
                    .values({k: v for k, v in row.items() if k != "b_id"})
                )
        stored = [{"person_id": people[0], "email": "a@x.jp"}]
        conn.execute(insert(pe), stored)
        page_rows = [
            {"person_id": people[n % 2], "email": f"{c}@x.jp"} for n, c in enumerate("abcdabcdab")
        ]
        bulk_pg.insert_ignore_rows(conn, pe, page_rows, ["person_id", "email"])
        bulk_pg.insert_ignore_rows(conn, pe, page_rows[:9], ["person_id", "email"])
    cols = [c for c in d.c if c.name not in ("id", "name")]
    with engine.connect() as conn:
        got = {
            row[0]: tuple(row[1:]) for row in conn.execute(select(d.c.name, *cols).order_by(d.c.id))
        }
        emails = sorted(conn.execute(select(pe.c.person_id, pe.c.email)).all())
    for i in range(20):
        assert got[f"a{i}"] == got[f"b{i}"]
    assert got["a0"][cols.index(d.c.stage)] == "最後"
    assert got["a1"][cols.index(d.c.updated_at)] == later
    want = {(people[n % 2], f"{c}@x.jp") for n, c in enumerate("abcdabcdab")}
    assert emails == sorted(want)
