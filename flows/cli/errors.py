"""Any error a command meets, as the one line a person reads: what went wrong and the fix.

Kizuna's own errors already say both. Database errors met after the warehouse opened (a
read-only file, a lock held by another writer, a server gone away) are named here instead of
printing SQL and a traceback; ``kizuna --debug`` prints the traceback as well.
"""

from __future__ import annotations

from kizuna.errors import KizunaError


def is_reportable(exc: BaseException) -> bool:
    """Errors a person can act on without a traceback: Kizuna's own and the database's."""
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, KizunaError | SQLAlchemyError | OSError)


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def explain(exc: BaseException) -> str:
    """The one line for ``exc``; the first line of an unknown error, with its type."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    if isinstance(exc, KizunaError):
        return one_line(str(exc))
    if isinstance(exc, DBAPIError):
        low = str(exc.orig).lower()
        if "readonly" in low or "read-only" in low or "permission denied" in low:
            return (
                "the warehouse is read-only, so this command cannot write. Fix: run it with a "
                "user that may write to the warehouse (read commands work as they are)"
            )
        if "locked" in low:
            return (
                "the warehouse is locked by another writer. Fix: wait for the running sync or "
                "`kizuna serve` to finish, then retry"
            )
        first = one_line(str(exc.orig))[:200]
        return f"the warehouse refused the command: {first}. Fix: run `kizuna check`"
    if isinstance(exc, SQLAlchemyError):
        return f"warehouse error: {one_line(str(exc))[:200]}. Fix: run `kizuna check`"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return f"{type(exc).__name__}: {one_line(str(exc))[:300]}"
