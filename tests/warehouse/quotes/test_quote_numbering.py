"""Quote numbers: the series pattern, yearly restarts, and no number shared under concurrency
(SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import Engine

from warehouse.db import write_transaction
from warehouse.quotes.numbering import Series, allocate

DAY = date(2026, 4, 1)


def test_pattern_fills_date_and_padded_sequence() -> None:
    s = Series("Q-{yyyy}-{seq:04}")
    assert s.format(DAY, 7) == "Q-2026-0007"
    assert s.counter_key(DAY) == "Q-2026-"
    assert Series("見積{yy}{mm}-{seq}").format(DAY, 12) == "見積2604-12"


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("Q-{yyyy}", "exactly once"),
        ("Q-{seq}-{seq}", "exactly once"),
        ("Q-{year}-{seq}", "unknown field"),
        ("Q-{seq:04}-{yyyy}", "before"),
    ],
)
def test_bad_patterns_are_refused_with_the_fix(pattern: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Series(pattern)


def test_numbers_count_up_and_restart_each_year(engine: Engine) -> None:
    s = Series("Q-{yyyy}-{seq:04}")
    got = []
    for day in (DAY, DAY, date(2027, 1, 4), DAY):
        with write_transaction(engine) as conn:
            got.append(allocate(conn, s, day))
    assert got == ["Q-2026-0001", "Q-2026-0002", "Q-2027-0001", "Q-2026-0003"]


def test_a_rolled_back_quote_gives_its_number_back(engine: Engine) -> None:
    s = Series("R{seq:03}")
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        assert allocate(conn, s, DAY) == "R001"
        raise RuntimeError("rendering failed")
    with write_transaction(engine) as conn:
        assert allocate(conn, s, DAY) == "R001"


def test_concurrent_creates_never_share_a_number(engine: Engine) -> None:
    s = Series("Q-{yyyy}-{seq:04}")
    got: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def worker() -> None:
        try:
            start.wait()
            for _ in range(5):
                with write_transaction(engine) as conn:
                    n = allocate(conn, s, DAY)
                with lock:
                    got.append(n)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(got) == [f"Q-2026-{i:04d}" for i in range(1, 31)]
