"""The write path's shortcuts store exactly what the long way did (both databases)."""

from __future__ import annotations

import gc
from typing import Any

from sqlalchemy import Engine, text

from flows import gc_pause
from flows.engine import StreamSpec, _map_page
from warehouse import records as r
from warehouse.bulk import PlannerStats
from warehouse.db import write_transaction
from warehouse.state import StreamKey
from warehouse.store import apply_page, unchanged_ids

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
    planner = PlannerStats()
    with write_transaction(engine) as conn:
        apply_page(conn, KEY, records=[r.Person(source_id="1", payload_hash="a")])
        analysed = planner.after_page(conn, 1)
        again = planner.after_page(conn, 0)  # not doubled yet
    assert analysed is (engine.dialect.name == "postgresql")
    assert again is False
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            tuples = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = 'source_record'::regclass")
            ).scalar_one()
        assert tuples >= 1  # -1 would mean never analysed: the planner thinks it is empty
