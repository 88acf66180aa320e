"""Alembic environment: runs against the engine handed over by ``warehouse.db``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

import warehouse.schema  # noqa: F401  (registers every table on the metadata)
from warehouse.migrations.env_models import metadata

engine: Engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
