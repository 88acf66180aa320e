"""What the ``kizuna`` sub-command modules share: the workspace option and error exits.

Every command ends the same way on a Kizuna error: one red line on stderr and exit code 2 for
a configuration mistake (the admin must edit something), 1 for anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from kizuna.errors import ConfigError, KizunaError

T = TypeVar("T")

err_console = Console(stderr=True)

WorkspaceOpt = Annotated[
    Path,
    typer.Option("--workspace", "-w", help="Workspace file.", envvar="KIZUNA_WORKSPACE"),
]


def fail(exc: BaseException) -> typer.Exit:
    """Print ``exc`` and return the Exit to raise (``raise fail(exc) from None``)."""
    err_console.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(2 if isinstance(exc, ConfigError) else 1)


def guard(fn: Callable[[], T]) -> T:
    """Run ``fn``; a KizunaError ends the command through :func:`fail`."""
    try:
        return fn()
    except KizunaError as exc:
        raise fail(exc) from None
