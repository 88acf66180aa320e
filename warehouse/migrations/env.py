"""Alembic environment: runs against the engine handed over by ``warehouse.db``.

Migrations are a unit of work like any other, and two processes may open a fresh warehouse at
the same moment: the migration transaction first takes the database's own lock (an advisory
transaction lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so the second opener waits,
then finds the schema at head and has nothing to do.

On SQLite, foreign keys are off while migrations run: a batch migration rebuilds a table
(copy, drop, rename), and dropping a table other rows point at fails with the check on.
The pragma only takes effect outside a transaction, so it is set on the raw connection.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, text

import warehouse.schema  # noqa: F401  (registers every table on the metadata)
from warehouse.db import MIGRATION_LOCK
from warehouse.migrations.env_models import metadata

engine: Engine = context.config.attributes["engine"]
with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    raw = connection.connection.driver_connection if sqlite else None
    if raw is not None:
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("select pg_advisory_xact_lock(:c, hashtext(current_schema()))"),
                    {"c": MIGRATION_LOCK},
                )
            context.configure(
                connection=connection,
                target_metadata=metadata(),
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")
