"""Inputs that used to fail a whole stream (issue 16) through the real engine, on SQLite and
PostgreSQL: an over-long value, text that is not valid Unicode, bad rows without an id."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, func, select

from connectors.page import Cursor, Page, RawBad
from flows.engine import StreamSpec, run_stream
from warehouse import records as r
from warehouse import schema as t
from warehouse.db import make_engine


class _Done(Cursor):
    n: int = 0


def _spec(rows: list[dict[str, Any]], bad: Sequence[RawBad] = ()) -> StreamSpec:
    def read(cursor: Cursor | None) -> Iterator[Page[_Done]]:
        yield Page(records=rows, cursor=_Done(n=len(rows)), bad=list(bad))

    def map_row(raw: dict[str, Any]) -> list[r.Record]:
        return [r.Organization(source_id=raw["id"], name=raw["name"], industry=raw.get("ind"))]

    return StreamSpec(
        connector="sheet",
        stream="orgs",
        read=read,
        cursor_type=_Done,
        source_id=lambda raw: str(raw["id"]),
        map=map_row,
        path_of=lambda raw: f"/data/orgs.csv#row{raw['id']}",
    )


def _quarantine(engine: Engine) -> list[tuple[str | None, str, str | None]]:
    q = t.Quarantine
    with engine.connect() as conn:
        rows = conn.execute(
            select(q.source_id, q.reason, q.path).where(q.resolved_at.is_(None)).order_by(q.id)
        )
        return [(a, b, c) for a, b, c in rows]


def _orgs(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(n for (n,) in conn.execute(select(t.Organization.name)))


def test_an_over_long_value_is_quarantined_not_a_failed_stream(engine: Engine) -> None:
    long_name = "株式会社" + "長" * 399  # 403 characters: the column holds 300
    rows = [
        {"id": "1", "name": "株式会社まとも"},
        {"id": "2", "name": long_name},
        {"id": "3", "name": "Fine Co.", "ind": "x" * 201},
    ]
    result = run_stream(engine, _spec(rows), "run-1")
    assert result.stats.quarantined == 2
    assert _orgs(engine) == ["株式会社まとも"]
    entries = _quarantine(engine)
    assert [(sid, path) for sid, _, path in entries] == [
        ("2", "/data/orgs.csv#row2"),
        ("3", "/data/orgs.csv#row3"),
    ]
    assert "name" in entries[0][1] and "300" in entries[0][1]
    assert "industry" in entries[1][1]
    with engine.connect() as conn:
        (status,) = conn.execute(select(t.SyncRun.status)).one()
    assert status == "completed"


def test_text_that_is_not_unicode_is_escaped_everywhere(engine: Engine) -> None:
    bad_id = "mid-\udce3\udc81"  # raw 8-bit bytes kept by a parser as lone surrogates
    rows = [{"id": "ok", "name": "ACME \udcff\x00 Ltd"}]
    bad = [RawBad(bad_id, "broken \udce3 reason", "payload \udc81", path="/m/cur/\udce3")]
    run_stream(engine, _spec(rows, bad), "run-1")
    assert _orgs(engine) == ["ACME \\udcff\ufffd Ltd"]
    ((sid, reason, path),) = _quarantine(engine)
    assert sid == "mid-\\udce3\\udc81" and reason == "broken \\udce3 reason"
    assert path == "/m/cur/\\udce3"


def test_bad_rows_without_an_id_do_not_pile_up(engine: Engine) -> None:
    bad = [RawBad(None, "cannot list folder x", None, path="/m/x")]
    for run in ("run-1", "run-2", "run-3"):
        run_stream(engine, _spec([], bad), run)
    q = t.Quarantine
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(q)).scalar_one()
    assert total == 1


def test_engines_hide_bound_parameters() -> None:
    assert make_engine("sqlite://").hide_parameters is True
