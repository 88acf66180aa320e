"""Resolving a secret named in the workspace file (a ``*_env`` field) to its value.

The workspace names secrets, it never holds them. A name is looked up in the environment
first, then as a Prefect Secret block (lower-cased, ``_`` → ``-``, as block names must be),
so one machine can use env vars and a Prefect server can keep secrets in blocks. The value
comes back as ``SecretStr``; errors name the variable, never its value.
"""

from __future__ import annotations

import os

from pydantic import SecretStr

from kizuna.errors import ConfigError


def block_name(env_name: str) -> str:
    """Prefect block names allow lower-case letters, digits and dashes only."""
    return env_name.strip().lower().replace("_", "-")


def _from_prefect_block(env_name: str) -> str | None:
    try:
        from prefect.blocks.system import Secret

        block: Secret[str] = Secret.load(block_name(env_name), _sync=True)  # type: ignore[call-arg,assignment]
        value = block.get()
    except Exception:  # no server, no block, or no permission: all mean "not there"
        return None
    return str(value) if value else None


def resolve_secret(env_name: str, *, file: str = "", field: str = "") -> SecretStr:
    """The secret named ``env_name``; ``ConfigError`` naming where to put it if it is missing."""
    value = os.environ.get(env_name) or _from_prefect_block(env_name)
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
