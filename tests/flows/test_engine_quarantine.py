"""Quarantine keeps one open entry per bad record and closes it when the record lands."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from flows.engine import run_stream
from flows.workspace import Company, Workspace
from tests.support.fakes.fakesource import Config, streams
from warehouse import schema as t
from warehouse.db import write_transaction
from warehouse.state import StreamKey, reset_cursor

WS = Workspace(company=Company(name="t", domains=["kizuna-demo.co.jp"]))


def _open(engine: Engine) -> int:
    q = t.Quarantine
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(q).where(q.resolved_at.is_(None))
            ).scalar_one()
        )


def test_reread_bad_rows_do_not_pile_up_and_fixed_rows_close_their_entry(engine: Engine) -> None:
    bad = streams("fake", Config(rows=40, page_size=10, bad_every=10), WS)[0]
    run_stream(engine, bad, "r1")
    assert _open(engine) == 4
    # Read the whole source again (cursor reset): still four open entries, not eight.
    with write_transaction(engine) as conn:
        reset_cursor(conn, StreamKey("fake", "people"))
    run_stream(engine, bad, "r2")
    assert _open(engine) == 4
    # The source fixes its rows: the entries close.
    with write_transaction(engine) as conn:
        reset_cursor(conn, StreamKey("fake", "people"))
    run_stream(engine, streams("fake", Config(rows=40, page_size=10, bad_every=0), WS)[0], "r3")
    assert _open(engine) == 0
