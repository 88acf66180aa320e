"""A hook the CLI sets so long syncs show progress bars, while flows stay UI-free."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Reporter(Protocol):
    def start(self, label: str, total: int | None) -> Callable[[int], None]: ...

    def note(self, text: str) -> None:
        """A line for the person watching (e.g. why a stream is waiting)."""


_reporter: Reporter | None = None


def set_reporter(reporter: Reporter | None) -> None:
    global _reporter
    _reporter = reporter


def start(label: str, total: int | None) -> Callable[[int], None] | None:
    return _reporter.start(label, total) if _reporter is not None else None


def note(text: str) -> None:
    if _reporter is not None:
        _reporter.note(text)
