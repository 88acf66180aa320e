"""The write path's check against erased customers: their records are held, not landed.

An erasure cannot reach into the sources: the export still has the row, the mailbox the
message. A refused record (a message too large to land) whose payload gives an erased
address is held the same way, so quarantine never keeps their data either. So a later sync would land the person again, with a fresh id, and nobody would know.
Instead, before a page is written, every record whose source key was erased, or that gives
an erased address (a contact's address, an external participant of a message), is held: the
record and everything else its source row produced (the company on the same row, its cell
warnings) stay out, and one quarantine entry per held row says why, with the file and row to
fix but no content and no source id (a source id may be the address itself). ``kizuna
quarantine`` shows it until the admin removes it at the source, as the erasure asked.

Free when nothing was ever erased: without a salt there is nothing to look up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from sqlalchemy import Connection, select

from warehouse import records as r
from warehouse import schema as t
from warehouse.privacy import salt as salt_
from warehouse.privacy.schema import ErasedRecord
from warehouse.state import Quarantined, StreamKey

REASON = (
    "held: this record belongs to a customer erased on request ({what}); it is not landed "
    "again. Remove it at the source"
)


_DELIMS = re.compile(r"[\s<>,;:\"'()\[\]]+")
MAX_PAYLOAD_ADDRESSES = 10_000
"""A bound on the addresses looked up per refused record (a 1,000-recipient message)."""


def _payload_addresses(payload: str | None) -> Iterator[str]:
    """Address-like words of a refused record's payload (split on delimiters: linear)."""
    if not payload or "@" not in payload:
        return
    n = 0
    for word in _DELIMS.split(payload):
        if "@" in word and 3 <= len(word) <= 320:
            yield word
            n += 1
            if n >= MAX_PAYLOAD_ADDRESSES:
                return


def _addresses(x: r.Record) -> list[str]:
    if isinstance(x, r.Person):
        return list(x.emails)
    if isinstance(x, r.Activity):
        return [p.email for p in x.participants if not p.internal]
    return []


def hold(
    conn: Connection,
    key: StreamKey,
    records: Sequence[r.Record],
    quarantined: Sequence[Quarantined],
) -> tuple[list[r.Record], list[Quarantined]]:
    """The records to write and the quarantine entries, with erased customers' rows held."""
    salt = salt_.existing(conn)
    if salt is None or not (records or quarantined):
        return list(records), list(quarantined)
    sids = {x.source_id for x in records} | {q.source_id for q in quarantined if q.source_id}
    digests = {salt_.record_digest(salt, key.connector, key.stream, s): s for s in sids}
    tokens: dict[str, set[str]] = {}
    for x in records:
        for e in _addresses(x):
            tokens.setdefault(salt_.address_token(salt, e), set()).add(x.source_id)
    for q in quarantined:  # a refused message of theirs must not keep their data either
        for e in _payload_addresses(q.payload):
            tokens.setdefault(salt_.address_token(salt, e), set()).add(q.source_id or "")
    # The erased sets are small (one line per erased record or address) and read whole:
    # two short scans per page cost less than looking a page's ids up in them.
    er, sup = ErasedRecord, t.Suppression
    records_out = {str(d): int(q) for d, q in conn.execute(select(er.digest, er.request_id))}
    addresses_out = {
        str(e): str(src or "privacy request")
        for e, src in conn.execute(select(sup.email, sup.source).where(sup.reason == "erased"))
    }
    why: dict[str, str] = {}
    for d, sid in digests.items():
        if d in records_out:
            why[sid] = f"privacy request {records_out[d]}"
    for tok, owners in tokens.items():
        if tok in addresses_out:
            for sid in owners:
                why.setdefault(sid, addresses_out[tok])
    if not why:
        return list(records), list(quarantined)
    keep = [x for x in records if x.source_id not in why]
    bad = [q for q in quarantined if (q.source_id or "") not in why]
    where = {x.source_id: x.locator for x in records if x.locator}
    where |= {q.source_id: q.path for q in quarantined if q.source_id and q.path}
    for sid in sorted(why):
        tag = salt_.record_digest(salt, key.connector, key.stream, sid)[:16]
        bad.append(Quarantined(f"held:{tag}", REASON.format(what=why[sid]), None, where.get(sid)))
    return keep, bad
