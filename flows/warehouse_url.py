"""The warehouse URL as a person wrote it: accepted in its common spellings, described without
its password, and every failure to open it turned into one line that says what to change.

``postgres://`` and ``postgresql://`` (what hosting providers print) are read as PostgreSQL
through psycopg 3, the driver Kizuna ships. A warehouse that can only be read (a read-only
file or role) still opens for reading when its schema is current, so ``kizuna status`` and
the other read commands work; a write then fails with one line naming the cause.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from kizuna.errors import ConfigError, FatalError

WHERE = "warehouse.url (or KIZUNA_WAREHOUSE_URL)"
_ALIASES = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg"}


def normalize(url: str) -> str:
    """``postgres://…`` → ``postgresql+psycopg://…``; anything else unchanged."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in _ALIASES:
        return f"{_ALIASES[scheme]}://{rest}"
    return url


def parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        shown = url.split("@")[-1] if "@" in url else url
        raise ConfigError(
            f"the warehouse URL is not a database URL (…{shown[-40:]})",
            field=WHERE,
            fix="write it like sqlite:///kizuna.db or postgresql://user@host:5432/kizuna",
        ) from None


def describe(url: str) -> str:
    """'postgresql+psycopg, host db.local:5432, database kizuna, user app' — never a password."""
    u = parse(url)
    if u.get_backend_name() == "sqlite":
        return f"SQLite file {u.database or ':memory:'}"
    parts = [u.drivername]
    if u.host:
        parts.append(f"host {u.host}" + (f":{u.port}" if u.port else ""))
    if u.database:
        parts.append(f"database {u.database}")
    if u.username:
        parts.append(f"user {u.username}" + (" (password given)" if u.password else ""))
    return ", ".join(parts)


def open_error(url: str, exc: BaseException) -> FatalError:
    """Why the warehouse at ``url`` cannot be opened, in one line with the fix."""
    from sqlalchemy.exc import NoSuchModuleError, OperationalError, ProgrammingError

    what = describe(url)
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    u = parse(url)
    first = text[0] if text else type(exc).__name__
    if u.password:
        first = first.replace(str(u.password), "***")
    if isinstance(exc, NoSuchModuleError | ModuleNotFoundError):
        return ConfigError(
            f"no database driver for {u.drivername!r}",
            field=WHERE,
            fix="use sqlite:///kizuna.db or postgresql://user@host/db (psycopg 3 is installed)",
        )
    low = " ".join(text).lower()
    if ("password" in low and "authentication" in low) or (
        "role" in low and "does not exist" in low
    ):
        return FatalError(
            f"the warehouse refused the credentials ({what}). Fix: check the user and the "
            f"password in {WHERE}"
        )
    if "database" in low and "does not exist" in low:
        return FatalError(
            f"the warehouse database does not exist ({what}). Fix: create it "
            f"(createdb {u.database}) or correct the name in {WHERE}"
        )
    if "readonly" in low or "read-only" in low or "permission denied" in low:
        return FatalError(
            f"the warehouse is read-only ({what}). Fix: run this with a user that may write "
            "to it; read commands (status, customer show) work as they are"
        )
    if "locked" in low:
        return FatalError(
            f"the warehouse is locked by another writer ({what}). Fix: wait for the running "
            "sync or `kizuna serve` to finish, then retry"
        )
    if "unable to open database file" in low:
        return FatalError(
            f"cannot open the warehouse ({what}). Fix: check that its folder exists and "
            f"can be written, or correct {WHERE}"
        )
    if isinstance(exc, OperationalError | ProgrammingError):
        return FatalError(
            f"cannot reach the warehouse ({what}): {first[:160]}. Fix: start the database "
            f"server or correct {WHERE}"
        )
    if isinstance(exc, OSError):
        return FatalError(
            f"cannot open the warehouse ({what}): {exc.strerror or first[:160]}. Fix: check "
            f"that its folder exists and can be written, or correct {WHERE}"
        )
    return FatalError(f"cannot open the warehouse ({what}): {first[:160]}. Fix: correct {WHERE}")


def open_readonly(url: str) -> Engine | None:
    """A read-only engine on a current schema, or None when reading alone cannot work."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from warehouse.db import alembic_config, make_engine

    u = parse(url)
    if u.get_backend_name() == "sqlite" and u.database:
        path = u.database

        def connect() -> Any:
            import sqlite3

            return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

        engine = create_engine("sqlite://", creator=connect)
    else:
        engine = make_engine(url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    except Exception:
        engine.dispose()
        return None
    if current != heads:
        engine.dispose()
        return None
    return engine


READ_ONLY: dict[str, FatalError] = {}
"""URLs this process opened for reading only, with the error a write command reports."""


def open_or_explain(url: str) -> Engine:
    """Open (and migrate) the warehouse; fall back to reading; else one clear error."""
    from warehouse.db import open_warehouse

    try:
        return open_warehouse(url)
    except Exception as exc:
        err = open_error(url, exc)
        if "read-only" in str(err) or "locked" in str(err):
            engine = open_readonly(url)
            if engine is not None:
                READ_ONLY[url] = err
                return engine
        raise err from None


__all__ = [
    "READ_ONLY",
    "describe",
    "normalize",
    "open_error",
    "open_or_explain",
    "open_readonly",
    "parse",
]
