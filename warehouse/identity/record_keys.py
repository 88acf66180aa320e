"""Ids that survive rebuilds: each record's key, and a cluster's id chosen from its records.

A record's key is a digest of its own (connector, stream, source id), so rebuilding the
warehouse from the same files, in any order, gives every record the same key. A customer
(or company) is named by the smallest key among its records: the same members give the same
id whatever order they arrived in, and an id that stops naming a cluster (a merge) still
leads to it through the record that bears it.
"""

from __future__ import annotations

import base64
import hashlib

PREFIX = {"person": "P-", "organization": "O-"}


def record_key(entity: str, connector: str, stream: str, source_id: str) -> str:
    """``P-``/``O-`` + 14 base32 characters (70 bits) of the record's own source key."""
    raw = "\x1f".join((connector, stream, source_id)).encode()
    digest = hashlib.blake2b(raw, digest_size=10).digest()
    return PREFIX[entity] + base64.b32encode(digest).decode().lower()[:14]


def entity_of(key: str) -> str | None:
    """Which entity a public id names (by its prefix), or None when it is not one."""
    for entity, prefix in PREFIX.items():
        if key.upper().startswith(prefix) and len(key) == 16:
            return entity
    return None
