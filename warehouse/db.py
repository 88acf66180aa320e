"""Opening the warehouse: one engine factory and one migration entry point for both databases."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x6B7A
"""Advisory lock class "kz" of a migration; the second key is the schema's hash."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned per dialect.

    SQLite gets WAL (readers never block the writer, and a killed process loses at most the
    transaction in flight), foreign keys on, and a generous busy timeout for the CLI reading
    while a flow writes. Both hide bound parameters in error text: a failed INSERT must not
    copy customers' names and addresses into logs, Prefect's database or a run's error.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        # The driver's own transaction handling is switched off so Kizuna issues BEGIN
        # itself: plain (deferred) by default, so readers never take the write lock, and
        # BEGIN IMMEDIATE inside `write_transaction`, so two writers (a flow and the CLI)
        # queue on the busy timeout instead of failing when a reader turns writer.
        engine = create_engine(url, connect_args={"timeout": 60, "isolation_level": None}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # "NONE": each statement reads the newest commit, holding no snapshot between
            # them (one would keep SQLite's checkpoint from copying what was since written).
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            if mode != "NONE":
                conn.exec_driver_sql(f"BEGIN {'IMMEDIATE' if mode == 'IMMEDIATE' else 'DEFERRED'}")

        @event.listens_for(engine, "checkout")
        def _not_while_forking(*_: Any) -> None:
            with _forking:  # a thread of this process (a lease's renewal) waits out a fork
                pass

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


_forking = threading.Lock()


@contextmanager
def forking() -> Iterator[None]:
    """Hold while forking a process that opens SQLite databases of its own: no thread of this
    process takes a connection from an SQLite engine's pool meanwhile. SQLite keeps, per
    file, what the process's connections lock, and a fork copies that; a connection opened
    in the child would take some locks only in that copy (see ``apart.forkable``)."""
    with _forking:
        yield


def _fresh_lock() -> None:
    global _forking
    _forking = threading.Lock()  # the copy the child got is held by the fork's parent


os.register_at_fork(after_in_child=_fresh_lock)


def _wal(cur: Any, timeout: float = 60.0) -> None:
    """Switch a new connection to WAL. The switch needs a moment's exclusive lock and, unlike a
    statement, does not always wait on the busy timeout: several processes opening one new
    file at once saw "database is locked" here, so it is retried until the same timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@contextmanager
def write_transaction(
    engine: Engine, apart: Checkpoints | None = None, *, checkpoint: bool = True
) -> Iterator[Connection]:
    """A transaction that intends to write: on SQLite it takes the write lock up front.

    ``apart``: on SQLite the commit leaves its checkpoint to a thread of ``apart`` instead of
    running it before it returns. The checkpoint makes the pages the transaction wrote
    durable, a disk write each: a run that wrote a few thousand pages at random places
    (0.15 ms each here) can do its next work meanwhile, and waits for ``apart`` at its end.
    ``checkpoint=False``: the commit leaves it to whoever commits next, or to another
    process's thread (a forked writer whose run goes on once it has committed)."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        driver: Any = conn.connection.driver_connection
        later = (apart is not None or not checkpoint) and conn.dialect.name == "sqlite"
        if later:
            driver.execute("PRAGMA wal_autocheckpoint=0")
        try:
            with conn.begin():
                yield conn
        finally:
            if later:
                driver.execute("PRAGMA wal_autocheckpoint=1000")  # SQLite's default
    if apart is not None:
        apart.start(engine)  # on SQLite only


class Checkpoints:
    """SQLite checkpoints run by a thread on its own connection (``write_transaction``): the
    driver lets go of the interpreter while SQLite works, so the caller goes on.

    A checkpoint copies into the database only what no reader still needs: a statement of
    another process that began before the commit holds its pages back. So the thread
    checkpoints again, briefly apart, until all is copied, or ``wait`` is called: then it
    makes one last pass, and what is left is for the next commit's own checkpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked = 0
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self, engine: Engine) -> None:
        """Checkpoint what is committed, in the thread (SQLite only: elsewhere, nothing)."""
        if engine.dialect.name != "sqlite":
            return
        with self._lock:
            self._asked += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, args=(engine,), name="sqlite-checkpoint", daemon=True
                )
                self._thread.start()

    def _run(self, engine: Engine) -> None:
        done = 0
        try:
            with _own_connection(engine) as driver:
                while True:
                    with self._lock:
                        if done == self._asked:
                            self._thread = None  # decided under the lock: no ask is lost
                            return
                        asked, last = self._asked, self._stop
                    # PASSIVE: it never waits on a reader or a writer.
                    row = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if row[2] >= row[1] or last:
                        done = asked
                    else:
                        time.sleep(0.02)
        except Exception:  # the next commit's own checkpoint copies what this one did not
            with self._lock:
                self._thread = None

    def wait(self) -> None:
        """Until every checkpoint asked for has run, or made its last pass."""
        with self._lock:
            self._stop = True
            thread = self._thread
        if thread is not None:
            thread.join()


@contextmanager
def _own_connection(engine: Engine) -> Iterator[sqlite3.Connection]:
    """A connection of the checkpoint's own, not the pool's: a pooled one taken here while
    the caller writes its next transaction made the caller take another from the pool, so
    two connections took turns at its writes, each filling a page cache of its own (60 MB
    more at a 200k-row sync). Opened as a pooled checkout is, never while forking."""
    with _forking:
        driver = sqlite3.connect(engine.url.database or ":memory:", timeout=60)
    try:
        yield driver
    finally:
        driver.close()


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (every head, so parallel branches all apply)."""
    if _at_heads(engine):
        return
    from alembic import command

    command.upgrade(alembic_config(engine), "heads")


_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^(?:down_revision|depends_on)\s*(?::[^=]*)?=\s*([^\n]*)", re.M)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")
_heads: frozenset[str] | None = None


def script_heads() -> frozenset[str]:
    """The heads alembic keeps in ``alembic_version`` once every migration ran, read from
    the files' ``revision``/``down_revision``/``depends_on`` lines without importing alembic
    (a quarter of a second of every CLI command's start). Empty when a file does not read
    plainly: then alembic decides."""
    global _heads
    if _heads is None:
        revisions: set[str] = set()
        downs: set[str] = set()
        for f in sorted((MIGRATIONS / "versions").glob("*.py")):
            if f.name == "__init__.py":
                continue
            body = f.read_text(encoding="utf-8")
            rev = _REVISION.search(body)
            if rev is None or any("(" in d and ")" not in d for d in _DOWN.findall(body)):
                _heads = frozenset()
                return _heads
            revisions.add(rev.group(1))
            for d in _DOWN.findall(body):  # a dependency is no head in alembic_version either
                downs.update(_QUOTED.findall(d.split("#", 1)[0]))
        _heads = frozenset(revisions - downs)
    return _heads


def _at_heads(engine: Engine) -> bool:
    """Is the schema already at every head? Asked under the same write lock the migration
    takes (``BEGIN IMMEDIATE`` on SQLite, the advisory lock on PostgreSQL), so a read-only
    or locked warehouse fails here exactly as the migration would."""
    heads = script_heads()
    if not heads:
        return False
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("select pg_advisory_xact_lock(:c, hashtext(current_schema()))"),
                    {"c": MIGRATION_LOCK},
                )
            if not inspect(conn).has_table("alembic_version"):
                return False  # a new database
            found = {r[0] for r in conn.execute(text("select version_num from alembic_version"))}
    return found == heads


def open_warehouse(url: str) -> Engine:
    """Engine plus migrations: the one way every command and flow opens the store."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:") and not str(path).startswith("file:"):
            path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    upgrade(engine)
    return engine
