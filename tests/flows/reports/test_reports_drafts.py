"""Stored 日報 drafts on SQLite and PostgreSQL: a regenerated draft replaces the old one, a
submitted report is never overwritten."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select

from tests.support.reports_seed import Seed, utc
from warehouse.db import write_transaction
from warehouse.reporting.drafts import Draft, save_drafts, stored, submit
from warehouse.reporting.schema import DailyReport

D = date(2026, 11, 5)


def _staff(engine: Engine) -> tuple[int, int]:
    with engine.begin() as conn:
        s = Seed(conn)
        return s.staff("a@own.example", "A"), s.staff("b@own.example", "B")


def test_regenerating_replaces_a_draft(engine: Engine) -> None:
    a, b = _staff(engine)
    with write_transaction(engine) as conn:
        kept = save_drafts(conn, [Draft(a, D, "v1"), Draft(b, D, "b1")], utc(2026, 11, 5, 9))
    assert kept == set()
    with write_transaction(engine) as conn:
        kept = save_drafts(conn, [Draft(a, D, "v2", "en")], utc(2026, 11, 5, 10))
    assert kept == set()
    with engine.connect() as conn:
        rows = stored(conn, [a, b], [D])
        assert rows[(a, D)].body_md == "v2"
        assert rows[(a, D)].status == "draft"
        assert rows[(b, D)].body_md == "b1"
        r = DailyReport.__table__
        assert conn.execute(select(func.count()).select_from(r)).scalar_one() == 2
        created, updated, lang = conn.execute(
            select(r.c.created_at, r.c.updated_at, r.c.language).where(r.c.staff_user_id == a)
        ).one()
    assert (created.hour, updated.hour, lang) == (9, 10, "en")


def test_a_submitted_report_is_kept(engine: Engine) -> None:
    a, b = _staff(engine)
    with write_transaction(engine) as conn:
        save_drafts(conn, [Draft(a, D, "draft"), Draft(b, D, "b1")], utc(2026, 11, 5, 9))
        assert submit(conn, a, D, utc(2026, 11, 5, 10), "draft + 所感: 順調")
        assert not submit(conn, a, date(2026, 11, 6), utc(2026, 11, 5, 10))
    with write_transaction(engine) as conn:
        kept = save_drafts(conn, [Draft(a, D, "regenerated"), Draft(b, D, "b2")], utc(2026, 11, 6))
    assert kept == {(a, D)}
    with engine.connect() as conn:
        rows = stored(conn, [a, b], [D])
    assert (rows[(a, D)].body_md, rows[(a, D)].status) == ("draft + 所感: 順調", "submitted")
    assert rows[(a, D)].submitted_at is not None
    assert rows[(b, D)].body_md == "b2"
