"""Resolving a secret named in the workspace file (a ``*_env`` field) to its value.

The one resolver for every credential, sources and channels alike. The workspace names
secrets, it never holds them. A name is looked up in the environment first, then as a
Prefect Secret block (lower-cased, ``_`` → ``-``, as block names must be), so one machine can
use env vars and a Prefect server can keep secrets in blocks. Blocks are asked only when a
Prefect API is configured (``PREFECT_API_URL``): asking without one would boot Prefect's
temporary server for every lookup. The value comes back as ``SecretStr``; errors name the
variable, never its value.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from functools import cache
from pathlib import Path

from pydantic import SecretStr

from kizuna.errors import ConfigError


def block_name(env_name: str) -> str:
    """Prefect block names allow lower-case letters, digits and dashes only."""
    return env_name.strip().lower().replace("_", "-")


MIN_KEY_BYTES = 32
"""A signing key shorter than this can be guessed offline; it is refused, never padded."""


def block_value(name: str) -> str | None:
    """The value of the Prefect Secret block ``name``, or None without an API or block."""
    if not os.environ.get("PREFECT_API_URL"):
        return None
    return _block_value(os.environ["PREFECT_API_URL"], name)


@cache
def _block_value(api: str, name: str) -> str | None:
    """Cached per process and API: a flow reads the same secret in every task."""
    try:
        from prefect.blocks.system import Secret

        block: Secret[str] = Secret.load(name, _sync=True)  # type: ignore[call-arg,assignment]
        value = block.get()
    except Exception:  # no server, no block, or no permission: all mean "not there"
        return None
    return str(value) if value else None


def lookup(env_name: str) -> str | None:
    """The secret's value if the environment or a Secret block has it, else None."""
    return os.environ.get(env_name) or block_value(block_name(env_name))


def resolve_secret(env_name: str, *, file: str = "", field: str = "") -> SecretStr:
    """The secret named ``env_name``; ``ConfigError`` naming where to put it if it is missing."""
    value = lookup(env_name)
    if not value:
        raise ConfigError(
            f"secret {env_name!r} is not set",
            file=file,
            field=field,
            fix=(
                f"export {env_name}=... in the environment of the worker, or create a Prefect "
                f"Secret block named {block_name(env_name)!r}"
            ),
        )
    return SecretStr(value)


def signing_key(env_name: str, key_file: Path, *, file: str = "", field: str = "") -> bytes:
    """A signing key: from ``env_name`` (environment or Prefect Secret block, the same on
    every host), else from ``key_file``, created once for one machine.

    The file is created atomically: a random key is written to a temporary file beside it,
    flushed to disk, then hard-linked into place, which fails if another process got there
    first — so of many first runs at once exactly one key wins and nobody ever reads a
    half-written (or empty) file. A key shorter than 32 bytes is refused with the fix.
    """
    value = lookup(env_name)
    if value:
        return _long_enough(value.encode(), f"the secret {env_name}", file, field)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    if not key_file.exists():
        fd, tmp = tempfile.mkstemp(prefix=".key-", dir=key_file.parent)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(tmp, key_file)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                _fsync_dir(key_file.parent)
        finally:
            os.unlink(tmp)
    return _long_enough(key_file.read_bytes().strip(), f"the key file {key_file}", file, field)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _long_enough(key: bytes, what: str, file: str, field: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{what} is {len(key)} bytes; a signing key needs at least {MIN_KEY_BYTES}",
            file=file,
            field=field,
            fix=(
                "use a random value, e.g. `python -c 'import secrets; "
                "print(secrets.token_hex(32))'`; changing it invalidates links already sent"
            ),
        )
    return key


def is_loopback(host: str) -> bool:
    """This machine: credentials sent here never cross a network."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def require_tls(url: str) -> str:
    """``url`` if it is https (or plain http to this machine); ValueError naming the fix."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or "")):
        return url
    raise ValueError(
        f"{url!r} would send credentials in clear text; use an https:// URL "
        "(plain http is allowed only for a server on this machine)"
    )


def require_tls_host(host: str, security: str) -> None:
    """A mail server's ``security: none`` is refused unless the server is on this machine."""
    if security == "none" and not is_loopback(host):
        raise ValueError(
            "security: none would send the password in clear text; use ssl or starttls "
            "(none is allowed only for a server on this machine)"
        )
