"""Who the push side talks to: the one place that says which rows are "people".

Identity resolution may later merge person rows into clusters; segments, consent and the
delivery ledger reach people only through :func:`people` and :func:`is_live`, so that change
is a swap here and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Table

from warehouse import schema as t


def people() -> Table:
    """The table whose ``id`` is a person id for segments, consent and the ledger."""
    return t.table(t.Person)


def is_live(p: Table) -> ColumnElement[bool]:
    """A person row that may be addressed (not deleted)."""
    return p.c.deleted_at.is_(None)


def utc(ts: datetime) -> datetime:
    """Datetimes bound to queries are UTC: SQLite keeps only the wall time of what it stores."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)
