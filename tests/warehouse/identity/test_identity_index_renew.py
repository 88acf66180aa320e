"""An incremental run writes only the index rows that changed, and leaves what a full run would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from tests.warehouse.identity.test_identity_index_writer import _index
from tests.warehouse.identity.test_identity_resolve import CRM, MAIL, S, _person, _put, _tanaka
from warehouse import records as r
from warehouse.identity.resolve import resolve_full, resolve_incremental


def _index_writes(engine: Engine) -> list[str]:
    """Every statement that writes the person index, as the driver is given it."""
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def note(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        low = sql.lower()
        if ("identity_key" in low or "identity_feature" in low) and not low.startswith("select"):
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
    resolve_full(engine, S)  # from scratch: the same index as the increments left
    full = _index(engine)
    assert after["features"] == full["features"] and after["keys"] == full["keys"]
