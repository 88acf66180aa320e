"""Fresh, empty PostgreSQL schemas for tests that start their own processes on a warehouse."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text

from warehouse.db import make_engine


@contextmanager
def fresh_schemas(url: str, n: int) -> Iterator[list[str]]:
    """``n`` new schemas (not migrated: whoever opens them first migrates), dropped after."""
    names = [f"w_{uuid.uuid4().hex[:12]}" for _ in range(n)]
    admin = create_engine(url)
    with admin.begin() as conn:
        for s in names:
            conn.execute(text(f'CREATE SCHEMA "{s}"'))
    try:
        yield names
    finally:
        with admin.begin() as conn:
            for s in names:
                conn.execute(text(f'DROP SCHEMA "{s}" CASCADE'))
        admin.dispose()


def engine_in(url: str, schema: str) -> Engine:
    """An engine whose tables are those of ``schema`` (empty schema: plain ``url``)."""
    if not schema:
        return make_engine(url)
    return make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
