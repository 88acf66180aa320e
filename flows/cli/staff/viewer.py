"""``--as USER``: every command that prints or writes warehouse data runs as someone.

Without ``--as`` a command runs as the system admin (``scope.SYSTEM``: everything, as
before accounts existed); with it, the staff user's own scope from ``warehouse.access.scope``
narrows the output exactly as the web pages are narrowed. An address without an account
stops the command with the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the CLI starts without loading SQLAlchemy
    from sqlalchemy import Connection

    from warehouse.access.scope import Viewer

AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Only what this staff user may see (their scope); default: everything (admin).",
    ),
]


def viewer(conn: Connection, as_user: str | None) -> Viewer:
    """Who the command runs as: the ``--as`` account, else the system admin."""
    from warehouse.access import scope

    return scope.SYSTEM if as_user is None else scope.viewer_by_email(conn, as_user)
