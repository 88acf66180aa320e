"""Alembic environment: runs against the engine handed over by ``warehouse.db``.

Migrations are a unit of work like any other, and two processes may open a fresh warehouse at
the same moment: the migration transaction first takes the database's own lock (an advisory
transaction lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so the second opener waits,
then finds the schema at head and has nothing to do.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, text

import warehouse.schema  # noqa: F401  (registers every table on the metadata)
from warehouse.migrations.env_models import metadata

MIGRATION_LOCK = 0x6B7A  # advisory lock class "kz"; the second key is the schema's hash

engine: Engine = context.config.attributes["engine"]
with engine.connect() as connection:
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
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
