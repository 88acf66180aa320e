"""Sequencing one stream: connector pages → unchanged check → mapping → one transaction each.

Kept free of Prefect so it can be tested and benchmarked directly; ``flows.sync`` wraps it in
tasks. A page is committed with its cursor, so a crash at any point leaves the store and the
cursor consistent and a rerun resumes after the last committed page.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Engine

from connectors.page import Cursor, KnownHashes, Page
from flows import gc_pause, pass_hashes
from flows.pass_hashes import PassHashes
from flows.seen_ids import SeenIds
from kizuna.errors import BadRecord, ResyncRequired
from warehouse import lease, state
from warehouse import records as r
from warehouse.db import Checkpoints, write_transaction
from warehouse.state import Quarantined, StreamKey
from warehouse.write.bulk import PlannerStats
from warehouse.write.store import (
    PageStats,
    apply_page,
    has_lineage,
    live_source_ids,
    mark_deleted,
    unchanged_ids,
)

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class StreamSpec:
    """Everything the engine needs to sync one stream of one configured source.

    ``read(cursor)`` yields pages; ``source_id(raw)`` names a raw record; ``map(raw)`` turns it
    into unified records (raising ``BadRecord`` or a pydantic ``ValidationError`` for bad
    input); ``fingerprint`` changes when the mapping's configuration changes, so a new column
    map re-applies rows whose payload did not change.
    """

    connector: str
    stream: str
    read: Callable[[Cursor | None], Iterator[Page[Any]]]
    cursor_type: type[Cursor]
    source_id: Callable[[dict[str, Any]], str]
    map: Callable[[dict[str, Any]], Sequence[r.Record]]
    fingerprint: str = ""
    unique_ids: bool = False
    """A snapshot source (a file) must not repeat an id within a pass; repeats are quarantined."""
    total_hint: Callable[[], int | None] = field(default=lambda: None)
    hash_fields: tuple[str, ...] = ()
    """When set, only these keys of a raw record are hashed (e.g. a precomputed digest of a
    large body), instead of the whole record."""
    path_of: Callable[[dict[str, Any]], str | None] = field(default=lambda raw: None)
    """The file (and row or offset) a raw record came from, shown with its quarantine entry."""
    read_known: Callable[[Cursor | None, KnownHashes], Iterator[Page[Any]]] | None = None
    """For a snapshot source that can hash raw records before decoding them (a text
    export): ``read`` given the hashes the store holds (``flows.pass_hashes``); it skips the
    records found there and hashes the rest itself (``Page.hashes``, ``Page.skipped``)."""

    @property
    def key(self) -> StreamKey:
        return StreamKey(self.connector, self.stream)


@dataclass
class StreamResult:
    connector: str
    stream: str
    pages: int = 0
    read: int = 0
    unchanged: int = 0
    stats: PageStats = field(default_factory=PageStats)
    resynced: bool = False
    remapped: bool = False
    """The mapping or options changed since the last sync, so the stream was read again."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "stream": self.stream,
            "pages": self.pages,
            "read": self.read,
            "unchanged": self.unchanged,
            **self.stats.counts(),
            "by_entity": dict(self.stats.by_entity),
            "resynced": self.resynced,
            "remapped": self.remapped,
        }


_ORJSON_OPTS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def payload_hash(raw: dict[str, Any], fingerprint: str = "") -> str:
    """A stable 128-bit digest of a raw record (plus the mapping's fingerprint).

    The bytes hashed are those of ``json.dumps(raw, ensure_ascii=False, sort_keys=True,
    default=str, separators=(",", ":"))``; orjson writes the same bytes for what sources
    send (strings, integers, lists, dicts; dates and the rest go through ``str``) several
    times faster, which matters because every row of every sync is hashed. What orjson
    refuses (non-string keys, huge integers, lone surrogates) goes through ``json`` itself.
    Only floats in exponent form (1.5e-07) are spelled differently: such a row is applied
    once more, never skipped wrongly.
    """
    try:
        blob = orjson.dumps(raw, default=str, option=_ORJSON_OPTS)
    except (TypeError, orjson.JSONEncodeError):
        blob = json.dumps(
            raw, ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":")
        ).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(fingerprint.encode() + blob, digest_size=16).hexdigest()


def _hashed(spec: StreamSpec, raw: dict[str, Any]) -> dict[str, Any]:
    return {k: raw.get(k) for k in spec.hash_fields} if spec.hash_fields else raw


def config_fingerprint(config: Any) -> str:
    return hashlib.blake2b(
        json.dumps(config, sort_keys=True, default=str).encode(), digest_size=8
    ).hexdigest()


def _map_page(
    spec: StreamSpec,
    rows: Sequence[tuple[str, dict[str, Any]]],
    skip: set[str],
    hashes: dict[str, str],
    locators: dict[str, str] | None = None,
) -> tuple[list[r.Record], list[Quarantined]]:
    out: list[r.Record] = []
    bad: list[Quarantined] = []
    mine: dict[int, dict[str, Any]] = {}  # records this page's mapping returned: as mapped
    for sid, raw in rows:
        if sid in skip:
            continue
        try:
            mapped = spec.map(raw)
        except BadRecord as exc:
            bad.append(
                Quarantined(
                    exc.source_id or sid, exc.reason, state.dumps_payload(raw), spec.path_of(raw)
                )
            )
            continue
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
                for e in exc.errors()
            )
            bad.append(Quarantined(sid, reason, state.dumps_payload(raw), spec.path_of(raw)))
            continue
        update: dict[str, Any] = {"payload_hash": hashes[sid]}
        if locators and sid in locators:
            update["locator"] = locators[sid]
        for x in mapped:
            was = mine.get(id(x))
            if was is not None:  # the mapping handed out one instance twice: copy it as it was
                out.append(x.model_copy(update={**was, **update}))
            else:
                mine[id(x)] = {"payload_hash": x.payload_hash, "locator": x.locator}
                out.append(_attach(x, update))
    return out, bad


def _attach(record: r.Record, update: dict[str, Any]) -> r.Record:
    """Give a just-mapped record its row's hash and locator in place.

    The mapping built the record for this row alone, so nobody else holds it; copying it
    (``model_copy``) cost ~4 % of a sync. Both fields are plain strings the validators do
    not look at, so setting them after validation is what a copy would have stored.
    """
    record.__dict__.update(update)
    record.__pydantic_fields_set__.update(update)
    return record


def run_stream(
    engine: Engine,
    spec: StreamSpec,
    run_id: str,
    progress: ProgressFn | None = None,
    *,
    lease_wait: float = 0.0,
    zone: str = "UTC",
    on_wait: Callable[[str], None] | None = None,
) -> StreamResult:
    """Sync one stream to the end of what the source has now; resumable at page boundaries.

    The stream's lease is held throughout: a second run of the same stream waits up to
    ``lease_wait`` seconds, then raises ``LeaseHeld`` naming the run that has it.
    """
    with (
        lease.held(
            engine,
            f"stream:{spec.connector}/{spec.stream}",
            run_id=run_id,
            what=f"stream {spec.connector}/{spec.stream} is being synced",
            wait=lease_wait,
            zone=zone,
            on_wait=on_wait,
        ),
        gc_pause.paused(),
    ):
        return _run_stream(engine, spec, run_id, progress)


def _run_stream(
    engine: Engine, spec: StreamSpec, run_id: str, progress: ProgressFn | None
) -> StreamResult:
    key = spec.key
    result = StreamResult(spec.connector, spec.stream)
    with write_transaction(engine) as conn:
        result.remapped = state.check_fingerprint(conn, key, spec.fingerprint)
        stored = state.load_cursor(conn, key)
        run_row = state.start_run(conn, key, run_id)
        seen_at = state.run_started(conn, run_row)
    cursor = spec.cursor_type.model_validate(stored) if stored is not None else None
    apart = Checkpoints()  # each batch's SQLite checkpoint, in a thread (``_flush``)
    try:
        try:
            _drain(engine, spec, cursor, (run_id, run_row, seen_at), result, progress, apart)
        except ResyncRequired:
            # The source forgot our cursor: start over. Upserts absorb what we already have.
            with write_transaction(engine) as conn:
                state.reset_cursor(conn, key)
            result.resynced = True
            _drain(engine, spec, None, (run_id, run_row, seen_at), result, progress, apart)
        finally:
            apart.wait()
    except BaseException as exc:
        with write_transaction(engine) as conn:
            state.finish_run(conn, run_row, "failed", f"{type(exc).__name__}: {exc}"[:2000])
        raise
    with write_transaction(engine) as conn:
        state.finish_run(conn, run_row, "completed")
    return result


BATCH_PAGES = 50
"""Pages read at most before their cursor is committed, changed rows or not."""


@dataclass
class _Batch:
    """What the pages read since the last commit hold: changed rows, bad and deleted ones,
    and the cursor after the last of them. Committed as one transaction."""

    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)
    locators: dict[str, str] = field(default_factory=dict)
    bad: list[Quarantined] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    read: int = 0
    pages: int = 0
    cursor: dict[str, Any] | None = None
    fresh: bool = False
    """The stream held no lineage at all when the pass began (a first sync): the rows' own
    lineage needs no lookup, since ids are unique in a pass and no earlier page wrote it.
    (Not "no stored hash": ``sources reset`` blanks the hashes and keeps the lineage.)"""


def _drain(
    engine: Engine,
    spec: StreamSpec,
    cursor: Cursor | None,
    run: tuple[str, int, datetime],
    result: StreamResult,
    progress: ProgressFn | None,
    apart: Checkpoints,
) -> None:
    """Read pages to the end; write what changed in batches, each in its own transaction;
    ``run`` is (run id, sync_run row, its start: every record this run writes counts as
    seen then).

    In a file (``unique_ids``: a local re-read costs little), a page whose rows are all
    unchanged writes nothing by itself: its cursor is committed with the next batch (a
    page's worth of changed rows, ``BATCH_PAGES`` pages, the end of a snapshot or of the
    stream), so a 1 % change is written in full pages, not a few rows per transaction. A
    crash in between only means re-reading those pages. Any other source's pages land
    one by one, as they come.
    """
    key = spec.key
    # Ids seen in this pass, ~8 bytes each (a set[str] was ~95 and made memory grow with the
    # input); a digest collision can only delay a deletion or an update by one pass.
    seen = SeenIds()
    planner = PlannerStats()
    known: PassHashes | None = None
    with engine.connect() as conn:
        # Only when this stream has open quarantine entries do landed rows need to close them.
        open_quarantine = bool(state.quarantine_counts(conn).get((key.connector, key.stream)))
        # A first sync (no lineage at all, ids unique in a pass): no row's own lineage exists.
        first_sync = spec.read_known is not None and spec.unique_ids and not has_lineage(conn, key)
    if spec.read_known is not None and spec.unique_ids:
        known = pass_hashes.load(engine, key)
    pages = spec.read(cursor) if known is None else _read_known(spec, cursor, known)
    batch = _Batch()
    for page in pages:
        rows: list[tuple[str, dict[str, Any]]] = []
        bad = [Quarantined(b.source_id, b.reason, b.payload, b.path) for b in page.bad]
        sids = [spec.source_id(raw) for raw in page.records]
        given = page.hashes or [None] * len(sids)
        hashes: dict[str, str] = {}
        fresh_ids = seen.add_new(sids) if spec.unique_ids else [True] * len(sids)
        if not spec.unique_ids:
            seen.update(sids)
        for sid, raw, fresh, h in zip(sids, page.records, fresh_ids, given, strict=True):
            if fresh:
                rows.append((sid, raw))
                hashes[sid] = h or payload_hash(_hashed(spec, raw), spec.fingerprint)
            else:
                bad.append(_repeated(spec, sid, raw))
        seen.update(page.seen)
        if known is not None and first_sync:
            # No lineage when the pass began and ids unique in it: no row read here has a
            # stored hash, so there is nothing to compare (one lookup per page saved).
            skip = set()
        else:
            with engine.connect() as conn:
                if known is None:
                    skip = unchanged_ids(conn, key, hashes)
                else:
                    skip, repeated = pass_hashes.compare(conn, key, known, hashes)
                    if repeated:
                        bad.extend(
                            _repeated(spec, sid, raw) for sid, raw in rows if sid in repeated
                        )
                        rows = [(sid, raw) for sid, raw in rows if sid not in repeated]
        changed = [(sid, raw) for sid, raw in rows if sid not in skip]
        batch.rows.extend(changed)
        batch.hashes.update((sid, hashes[sid]) for sid, _ in changed)
        if page.locators:
            where = dict(zip(sids, page.locators, strict=True))
            batch.locators.update((sid, where[sid]) for sid, _ in changed if sid in where)
        batch.bad.extend(bad)
        batch.deleted.extend(page.deleted)
        batch.unchanged += len(skip) + page.skipped
        batch.pages += 1
        batch.read += len(page.records) + page.skipped
        batch.cursor = page.cursor.model_dump(mode="json")
        result.pages += 1
        result.read += len(page.records) + page.skipped
        if (
            not spec.unique_ids  # an API: each page lands, its cursor saves a re-fetch
            or page.snapshot_end
            or len(batch.rows) >= len(page.records) + page.skipped  # a page's worth of changes
            or batch.pages >= BATCH_PAGES
            or batch.deleted
        ):
            batch.fresh = first_sync
            _flush(
                engine, spec, batch, run, result, planner, open_quarantine, apart, seen, page, known
            )
            batch = _Batch()
        if progress is not None:
            progress(len(page.records) + len(page.bad) + page.skipped)
    if batch.pages:
        batch.fresh = first_sync
        _flush(engine, spec, batch, run, result, planner, open_quarantine, apart)


def _read_known(spec: StreamSpec, cursor: Cursor | None, known: PassHashes) -> Iterator[Page[Any]]:
    assert spec.read_known is not None
    return spec.read_known(cursor, known)


def _repeated(spec: StreamSpec, sid: str, raw: dict[str, Any]) -> Quarantined:
    return Quarantined(
        sid, f"duplicate id {sid!r} in one pass", state.dumps_payload(raw), spec.path_of(raw)
    )


def _flush(
    engine: Engine,
    spec: StreamSpec,
    batch: _Batch,
    run: tuple[str, int, datetime],
    result: StreamResult,
    planner: PlannerStats,
    open_quarantine: bool,
    apart: Checkpoints,
    seen: SeenIds | None = None,
    page: Page[Any] | None = None,
    known: PassHashes | None = None,
) -> None:
    """Map and write one batch with the cursor after it; at a snapshot's end (``page``),
    mark the stored rows the pass did not see as deleted.

    The last commit's SQLite checkpoint runs in a thread of ``apart`` while this batch is
    mapped, and ends before this transaction begins: SQLite starts its log over only for a
    transaction begun once all of it was copied (else: 1.4 GB of log at 200k rows)."""
    if not batch.pages:
        return
    run_id, run_row, seen_at = run
    key = spec.key
    records, mapped_bad = _map_page(spec, batch.rows, set(), batch.hashes, batch.locators or None)
    apart.wait()
    with write_transaction(engine, apart) as conn:
        bad = batch.bad + mapped_bad
        if open_quarantine:
            failed = {b.source_id for b in bad}
            state.resolve_quarantined(
                conn, key, [sid for sid, _ in batch.rows if sid not in failed]
            )
        stats = apply_page(
            conn,
            key,
            records=records,
            deleted=batch.deleted,
            quarantined=bad,
            cursor=batch.cursor,
            run_id=run_id,
            seen_at=seen_at,
            new_ids=[sid for sid, _ in batch.rows] if batch.fresh else (),
        )
        if page is not None and page.snapshot_end and seen is not None:
            if known is None:
                gone = list(seen.missing(live_source_ids(conn, key)))
            else:  # rows skipped by hash were never named: the hashes say who was read
                gone = pass_hashes.vanished(conn, key, known, seen)
            if gone:
                stats.deleted += mark_deleted(conn, key, gone, state.now())
            seen.clear()
        planner.after_page(conn, stats.inserted + stats.updated)
        state.add_to_run(
            conn,
            run_row,
            {**stats.counts(), "unchanged": batch.unchanged, "read": batch.read},
        )
    result.unchanged += batch.unchanged
    result.stats.add(stats)
