"""Work beside a run: SQLite checkpoints in a thread, and forked processes that open the
warehouse safely and hand values back."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from warehouse.db import Checkpoints, forking, make_engine, write_transaction
from warehouse.identity.apart import Stage, forkable, run_apart


def _file_engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    with engine.connect() as conn:  # the table itself in the database file
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return engine


def _in_file(tmp_path: Path) -> int:
    """Rows of ``t`` in the database file itself, without its WAL: what checkpoints copied."""
    raw = sqlite3.connect(f"file:{tmp_path / 'w.db'}?immutable=1", uri=True)
    try:
        return int(raw.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        raw.close()


def _reader(tmp_path: Path) -> sqlite3.Connection:
    """Another connection holding a snapshot of ``t`` (a reader the checkpoint must spare)."""
    reader = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    return reader


def _write(engine: Engine, apart: Checkpoints, n: int) -> None:
    with write_transaction(engine, apart) as conn:
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "x" * 500}] * n)


def test_a_commit_apart_is_checkpointed_by_a_thread_once_no_reader_holds_it_back(
    tmp_path: Path,
) -> None:
    engine = _file_engine(tmp_path)
    apart = Checkpoints()
    reader = _reader(tmp_path)
    _write(engine, apart, 20_000)  # ~2,500 pages: SQLite itself would checkpoint at 1,000
    time.sleep(0.3)
    assert _in_file(tmp_path) == 0  # the reader holds the pages back; the thread retries
    with engine.connect() as conn:  # the pooled connection checkpoints again on its own
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    reader.execute("COMMIT")
    apart.wait()
    assert _in_file(tmp_path) == 20_000
    reader.close()


def test_waiting_for_a_checkpoint_a_reader_holds_back_ends_after_one_last_pass(
    tmp_path: Path,
) -> None:
    engine = _file_engine(tmp_path)
    apart = Checkpoints()
    reader = _reader(tmp_path)
    _write(engine, apart, 20_000)
    done = threading.Event()
    threading.Thread(target=lambda: (apart.wait(), done.set()), daemon=True).start()
    assert done.wait(10)  # never stuck behind a reader: the next commit copies the rest
    assert _in_file(tmp_path) == 0
    reader.execute("COMMIT")
    reader.close()
    with write_transaction(engine) as conn:  # a plain commit past 1,000 pages checkpoints
        conn.execute(text("INSERT INTO t (v) VALUES ('y')"))
    assert _in_file(tmp_path) == 20_001


def test_a_commit_can_leave_its_checkpoint_to_another_process_thread(tmp_path: Path) -> None:
    """A forked writer commits without checkpointing (``checkpoint=False``): the run it
    works for checkpoints in a thread while it goes on, instead of waiting for it."""
    engine = _file_engine(tmp_path)
    with write_transaction(engine, checkpoint=False) as conn:
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "x" * 500}] * 20_000)
    assert _in_file(tmp_path) == 0  # SQLite itself would have checkpointed at 1,000 pages
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    apart = Checkpoints()
    apart.start(engine)
    apart.wait()
    assert _in_file(tmp_path) == 20_000


def test_checkpoints_apart_are_for_sqlite_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/kizuna")
    apart = Checkpoints()
    apart.start(engine)  # no thread, no connection: nothing to copy on PostgreSQL
    apart.wait()
    assert list(tmp_path.iterdir()) == []


def test_a_fork_waits_until_no_connection_is_in_use_and_closes_the_idle_ones(
    tmp_path: Path,
) -> None:
    engine = _file_engine(tmp_path)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        assert not forkable(engine)  # SQLite's lock state would be copied into the child
    assert forkable(engine)
    assert engine.pool.checkedin() == 1  # type: ignore[attr-defined]

    def count(e: Engine) -> int:
        with e.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())

    wait = run_apart("counting", engine, count, True)
    assert engine.pool.checkedin() == 0  # type: ignore[attr-defined]
    assert wait() == 0


def test_a_value_handed_over_does_not_wait_for_this_process_to_read_it(tmp_path: Path) -> None:
    engine = _file_engine(tmp_path)
    big = os.urandom(4 << 20)  # far more than a pipe holds
    handed, gone = Stage(carry=True), Stage(carry=True)

    def work(e: Engine) -> int:
        handed.reached(big)
        return os.getpid()

    wait = run_apart("handing over", engine, work, True, (handed,))
    time.sleep(0.5)  # this process busy elsewhere: the work still ends
    child = wait()
    assert child != os.getpid() and handed.wait() == big

    def dies(e: Engine) -> None:
        os._exit(3)

    stopped = run_apart("dying", engine, dies, True, (gone,))
    assert gone.wait() is None  # it never got there
    with pytest.raises(RuntimeError, match="dying failed: it stopped with exit code 3"):
        stopped()


def test_no_thread_takes_a_connection_while_a_process_is_forked(tmp_path: Path) -> None:
    """A lease's renewal thread connecting at the moment of a fork would hand the child an
    open connection's lock state: it waits until the fork is done."""
    engine = _file_engine(tmp_path)
    engine.dispose()
    got = threading.Event()

    def renew() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            got.set()

    with forking():
        thread = threading.Thread(target=renew, daemon=True)
        thread.start()
        assert not got.wait(0.5)  # held back while forking
    assert got.wait(10)
    thread.join()


def test_a_sync_of_many_pages_starts_the_log_over_at_each_page(tmp_path: Path) -> None:
    """Each page's checkpoint runs in a thread and is waited for before the next page's
    transaction begins: SQLite reuses the log from its start only for a transaction begun
    once the log was all copied. Begun at once, every page appended to the log, which
    then outgrew the database."""
    from flows.engine import run_stream
    from flows.workspace import Company, Workspace
    from tests.support.fakes.fakesource import Config, streams
    from warehouse.db import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    upgrade(engine)
    ws = Workspace(company=Company(name="t", domains=["kizuna-demo.co.jp"]))
    spec = streams("fake", Config(rows=3000, page_size=100), ws)[0]
    seen: list[int] = []
    checkpoint = Checkpoints.start

    def start(self: Checkpoints, e: Engine) -> None:
        seen.append(threading.get_ident())
        checkpoint(self, e)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Checkpoints, "start", start)
        run_stream(engine, spec, "run")
    assert len(seen) >= 30  # a checkpoint apart for every page
    log = (tmp_path / "wh.db-wal").stat().st_size  # its high-water mark, while still open
    assert log < (tmp_path / "wh.db").stat().st_size / 4
    assert engine.pool.checkedin() == 1  # type: ignore[attr-defined]
    engine.dispose()
