"""Quote numbers from a configurable series such as ``Q-{yyyy}-{seq:04}``.

The pattern is split at ``{seq}``: what comes before it, with the date filled in, names a
counter row (``Q-2026-``), so a yearly pattern restarts at 1 each year and a plain
``Q{seq:06}`` never does. The counter is bumped with one ``UPDATE … RETURNING`` inside the
caller's write transaction: PostgreSQL's row lock and SQLite's write lock make two
concurrent creates queue, never share a number, and a rolled-back quote gives its number back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, update

from warehouse.quotes.schema import QuoteCounter
from warehouse.schema import table
from warehouse.write.upsert import insert_ignore

DEFAULT_SERIES = "Q-{yyyy}-{seq:04}"
_FIELD = re.compile(r"\{(yyyy|yy|mm|dd|seq(?::0?(\d+))?)\}")


@dataclass(frozen=True)
class Series:
    pattern: str

    def __post_init__(self) -> None:
        fields = _FIELD.findall(self.pattern)
        seqs = [f for f, _ in fields if f.startswith("seq")]
        if len(seqs) != 1:
            raise ValueError(
                f"series {self.pattern!r} must contain {{seq}} exactly once, "
                "e.g. 'Q-{yyyy}-{seq:04}'"
            )
        rest = _FIELD.sub("", self.pattern)
        if "{" in rest or "}" in rest:
            raise ValueError(
                f"series {self.pattern!r} has an unknown field; "
                "use {yyyy}, {yy}, {mm}, {dd} and {seq} or {seq:04}"
            )
        if "{" in self.pattern.split("{seq", 1)[1].split("}", 1)[1]:
            raise ValueError(f"series {self.pattern!r}: put the date fields before {{seq}}")

    def _fill(self, text: str, day: date) -> str:
        return (
            text.replace("{yyyy}", f"{day.year:04d}")
            .replace("{yy}", f"{day.year % 100:02d}")
            .replace("{mm}", f"{day.month:02d}")
            .replace("{dd}", f"{day.day:02d}")
        )

    def counter_key(self, day: date) -> str:
        return self._fill(self.pattern.split("{seq", 1)[0], day)

    def format(self, day: date, seq: int) -> str:
        head, tail = self.pattern.split("{seq", 1)
        spec, after = tail.split("}", 1)
        width = int(spec.lstrip(":0") or 0) if spec else 0
        return self._fill(head, day) + f"{seq:0{width}d}" + self._fill(after, day)


def allocate(conn: Connection, series: Series, day: date) -> str:
    """The next number of ``series`` for ``day``, inside the caller's transaction."""
    key = series.counter_key(day)
    c = table(QuoteCounter)
    stmt = update(c).where(c.c.series == key).values(last=c.c.last + 1).returning(c.c.last)
    got = conn.execute(stmt).scalar_one_or_none()
    if got is None:
        insert_ignore(conn, c, [{"series": key, "last": 0}], ["series"])
        got = conn.execute(stmt).scalar_one()
    return series.format(day, int(got))
