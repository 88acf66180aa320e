"""Opening the warehouse: one engine factory and one migration entry point for both databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event

MIGRATIONS = Path(__file__).parent / "migrations"


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
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {'IMMEDIATE' if mode == 'IMMEDIATE' else 'DEFERRED'}")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that intends to write: on SQLite it takes the write lock up front."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (every head, so parallel branches all apply)."""
    command.upgrade(alembic_config(engine), "heads")


def open_warehouse(url: str) -> Engine:
    """Engine plus migrations: the one way every command and flow opens the store."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:") and not str(path).startswith("file:"):
            path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    upgrade(engine)
    return engine
