"""What the ``kizuna`` sub-command modules share: consoles that never let data become markup
or terminal control, the workspace option, times in the company's zone, and error exits.

Every command ends the same way on an error: one red line on stderr with the fix, exit code 2
for a configuration mistake (the admin must edit something), 1 for anything else. The
traceback is printed only under ``kizuna --debug``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from kizuna.errors import ConfigError, KizunaError

T = TypeVar("T")

# C0 controls but tab and newline, DEL, C1 controls, and the bidi overrides that reorder text.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: str) -> str:
    """Text a terminal shows as text: escape sequences, bells and bidi overrides removed."""
    return _CONTROLS.sub("", text)


def esc(value: object) -> str:
    """A value from data (a name, a subject, a reason) safe inside Rich markup."""
    return escape(strip_controls("" if value is None else str(value)))


class SafeConsole(Console):
    """A console that strips control characters from every string it renders (table cells,
    titles, messages, Text objects), so an escape code stored in a customer's name never
    reaches the terminal; Rich's own control segments (progress bars) pass. Markup in data is
    the caller's job: pass data through :func:`esc` or as ``Text``."""

    @property
    def size(self) -> ConsoleDimensions:
        """``COLUMNS`` in the environment wins, read at print time (pipes and test runners)."""
        cols = os.environ.get("COLUMNS", "")
        size = super().size
        return ConsoleDimensions(int(cols), size.height) if cols.isdigit() and int(cols) else size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def render_str(self, text: str, *args: Any, **kwargs: Any) -> Text:
        return super().render_str(strip_controls(text), *args, **kwargs)

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            s if s.control else Segment(strip_controls(s.text), s.style) for s in buffer
        )


class DataTable(Table):
    """A table of data: string cells and titles are plain text, never markup, so a name such
    as ``[/bold]`` or ``[link=…]`` is shown as written. Pass ``Text`` for a styled cell."""

    def __init__(self, *headers: Any, title: Any = None, **kwargs: Any) -> None:
        if isinstance(title, str):
            title = Text(strip_controls(title))
        super().__init__(*headers, title=title, **kwargs)

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        super().add_row(
            *(Text(strip_controls(c)) if isinstance(c, str) else c for c in cells), **kwargs
        )


def make_console(stderr: bool = False) -> SafeConsole:
    """Piped output (logs, CI) gets a fixed readable width instead of Rich's 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    return SafeConsole(stderr=stderr, width=None if stream.isatty() else 120)


err_console = make_console(stderr=True)

WorkspaceOpt = Annotated[
    Path,
    typer.Option("--workspace", "-w", help="Workspace file.", envvar="KIZUNA_WORKSPACE"),
]

DEBUG = {"on": False}
"""Set by ``kizuna --debug``: errors print their traceback too."""


def local_time(ts: datetime | None, zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time as a person in the company reads it (naive times are UTC)."""
    if ts is None:
        return ""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(ZoneInfo(zone)).strftime(fmt)


def when_ago(ts: datetime | None, zone: str) -> str:
    """A stored time as the company reads it, and how long ago: '2026-10-20 10:02 (5 min ago)'."""
    if ts is None:
        return "never"
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    s = (datetime.now(UTC) - ts).total_seconds()
    if s < 90:
        ago = f"{int(s)} s ago"
    elif s < 5400:
        ago = f"{int(s // 60)} min ago"
    elif s < 172800:
        ago = f"{int(s // 3600)} h ago"
    else:
        ago = f"{int(s // 86400)} days ago"
    return f"{local_time(ts, zone)} ({ago})"


def zone_label(zone: str) -> str:
    """The zone's short name today (JST), for column headers: 'when (JST)'."""
    return datetime.now(ZoneInfo(zone)).tzname() or zone


def fail(exc: BaseException) -> typer.Exit:
    """Print ``exc`` in one line and return the Exit to raise (``raise fail(exc) from None``)."""
    from flows.cli.errors import explain

    if DEBUG["on"]:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    err_console.print(f"[bold red]error:[/] {esc(explain(exc))}", soft_wrap=True)
    return typer.Exit(2 if isinstance(exc, ConfigError) else 1)


def guard(fn: Callable[[], T]) -> T:
    """Run ``fn``; a Kizuna error (or a warehouse that cannot be opened) ends the command."""
    from flows.cli.errors import is_reportable

    try:
        return fn()
    except KizunaError as exc:
        raise fail(exc) from None
    except Exception as exc:
        if not is_reportable(exc):
            raise
        raise fail(exc) from None
