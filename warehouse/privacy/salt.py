"""The warehouse's privacy salt and the keyed hashes made with it.

One salt per warehouse, so every worker of a deployment (they share the warehouse, not a
folder) hashes alike. The first erasure makes it: an insert that does nothing if another
process got there first, then a read, so two erasures at once agree on one salt. It is only
ever bound as a statement parameter (engines hide parameters in errors) and never printed.

A keyed hash (BLAKE2b with the salt as its key), not a plain digest: the erased addresses cannot be matched against another
warehouse's list or a precomputed table. Whoever holds this database can still test a guessed
address, which is what the send path must do; no hash can prevent that.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection, select

from warehouse import schema as t
from warehouse.identity.keys.normalize import normalize_email
from warehouse.privacy.schema import PrivacySalt
from warehouse.state import now
from warehouse.write.upsert import insert_ignore

PREFIX = "erased:"
"""How an erased address sits on the suppression list: ``erased:`` + its HMAC."""


def existing(conn: Connection) -> bytes | None:
    """The salt if any erasure made one (read paths never create it)."""
    row = conn.execute(select(PrivacySalt.salt).where(PrivacySalt.id == 1)).scalar()
    return bytes.fromhex(row) if row else None


def ensure(conn: Connection) -> bytes:
    """The salt, made once and atomically on first use."""
    got = existing(conn)
    if got is not None:
        return got
    insert_ignore(
        conn,
        t.table(PrivacySalt),
        [{"id": 1, "salt": secrets.token_hex(32), "created_at": now()}],
        ["id"],
    )
    made = existing(conn)
    assert made is not None  # the row exists now, ours or the other process's
    return made


def _mac(salt: bytes, kind: str, value: str) -> str:
    # Keyed BLAKE2b is a MAC in itself (no HMAC construction needed) and the fastest one
    # hashlib has: the write path computes one per record once anything was erased.
    return hashlib.blake2b(f"{kind}\x1f{value}".encode(), key=salt, digest_size=32).hexdigest()


def address_token(salt: bytes, email: str) -> str:
    """The suppression-list form of an erased address (normalised first)."""
    norm = normalize_email(email) or email.strip().lower()
    return PREFIX + _mac(salt, "address", norm)


def record_digest(salt: bytes, connector: str, stream: str, source_id: str) -> str:
    return _mac(salt, "record", "\x1f".join((connector, stream, source_id)))
