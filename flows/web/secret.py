"""The key that signs session cookies: made once per workspace, never logged, never shown.

It lives in ``.kizuna/web-secret`` beside the workspace (mode 0600). Two servers starting at
once must not each make their own (one would sign out the other's users), so the file is
created with ``O_EXCL`` from a temporary file and a hard link: whoever links first wins and
the other reads the winner's key. ``KIZUNA_WEB_SECRET`` overrides it (a cluster of servers).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from kizuna.errors import ConfigError

MIN_BYTES = 32
FILE = "web-secret"


def session_secret(state_dir: Path) -> str:
    """The session key for a workspace's state folder, created on first use."""
    env = os.environ.get("KIZUNA_WEB_SECRET")
    if env is not None:
        if len(env.encode()) < MIN_BYTES:
            raise ConfigError(
                "KIZUNA_WEB_SECRET is too short",
                fix=f"use at least {MIN_BYTES} random bytes, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`",
            )
        return env
    path = state_dir / FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / f".{FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_urlsafe(48))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(tmp, path)  # atomic: never a half-written key
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_text(encoding="ascii").strip()
    if len(key.encode()) < MIN_BYTES:
        raise ConfigError(
            "the session key is too short",
            file=str(path),
            fix="delete it; the next start makes a new one",
        )
    return key
