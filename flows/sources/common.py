"""Config and stream pieces that several source types need alike (mail, calendar, files).

One definition each, so that e.g. the ICS and CalDAV sources expand recurring events over the
same window and every account list is normalised the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from flows.workspace import Workspace
from kizuna.errors import ConfigError
from mappings.calendar.events import events_to_activities
from mappings.mail.message import MailLimits
from warehouse import records as r
from warehouse.identity.keys.normalize import normalize_email


def unique_addresses(values: list[str], noun: str = "an email address") -> list[str]:
    """Normalised addresses in their first order, duplicates dropped (a pydantic validator)."""
    out: list[str] = []
    for v in values:
        n = normalize_email(v)
        if n is None:
            raise ValueError(f"{v!r} is not {noun}")
        if n not in out:
            out.append(n)
    return out


def calendar_window(
    today: date, past_days: int, future_days: int, stored_start: str | None
) -> tuple[str, str]:
    """``(start, end)`` ISO dates for expanding recurrences.

    Start is a Monday and never moves forward once stored (events already expanded stay
    covered); end is rounded up to the next Monday so the window changes once a week.
    """
    start = today - timedelta(days=past_days)
    start -= timedelta(days=start.weekday())
    end = today + timedelta(days=future_days)
    end += timedelta(days=(7 - end.weekday()) % 7 or 7)
    if stored_start:
        start = min(start, date.fromisoformat(stored_start))
    return start.isoformat(), end.isoformat()


def window_activities(
    ics: Any,
    window: Sequence[str],
    *,
    own_domains: Sequence[str],
    tz: ZoneInfo,
    max_occurrences: int,
    allow_sub_daily: bool,
    notes: list[r.CellIssue],
) -> list[r.Record]:
    """A calendar resource's meetings within the stream's stored window (ISO dates), so the
    file and CalDAV sources expand recurrences the same way."""
    lo, hi = window
    return list(
        events_to_activities(
            ics,
            own_domains=own_domains,
            window_start=datetime.combine(date.fromisoformat(lo), time(0), tz),
            window_end=datetime.combine(date.fromisoformat(hi), time(0), tz),
            default_tz=tz,
            max_occurrences=max_occurrences,
            allow_sub_daily=allow_sub_daily,
            notes=notes,
        )
    )


def require_path(root: Path, ws: Workspace, name: str, what: str, fix: str) -> None:
    """A missing ``path`` fails the stream with a ConfigError naming the workspace field."""
    if not root.exists():
        raise ConfigError(
            f"{what} path not found: {root}",
            file=str(ws.path),
            field=f"sources.{name}.path",
            fix=fix,
        )


def file_path(root: Path, rel: str) -> str:
    """The file a record came from (``rel`` as a connector names it under ``root``), for the
    quarantine to show the file a person opens; ``rel`` may carry a ``#offset``."""
    base = root.parent if root.is_file() else root
    return str(base / rel) if rel else str(root)


class MailLimitFields(BaseModel):
    """The work one message may cause, the same settings on every mail source (``mail``,
    ``imap``); each hit quarantines the message with its reason."""

    max_text_chars: int = Field(default=200_000, ge=0, le=50_000_000)
    max_recipients: int = Field(default=1000, ge=1, le=1_000_000)
    max_mime_depth: int = Field(default=20, ge=1, le=1000)
    max_mime_parts: int = Field(default=500, ge=1, le=100_000)

    def limits(self) -> MailLimits:
        return MailLimits(
            max_text_chars=self.max_text_chars,
            max_recipients=self.max_recipients,
            max_mime_depth=self.max_mime_depth,
            max_mime_parts=self.max_mime_parts,
        )
