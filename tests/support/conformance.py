"""The connector conformance suite: what every source stream must do with the sync engine.

To run it for a connector, write ``tests/test_conformance_<name>.py`` with a subclass of
:class:`ConformanceSuite` that provides a ``harness`` fixture yielding a :class:`SourceHarness`
(a stream on a source the test controls: a real server, a fake transport, a temp folder)::

    class TestImapConformance(ConformanceSuite):
        @pytest.fixture
        def harness(self, dovecot_server, monkeypatch) -> Iterator[SourceHarness]:
            yield ImapHarness(...)

Every test also takes the ``engine`` fixture, so the suite runs on SQLite and PostgreSQL.
What it checks, on the stream built by the source type's own ``streams()``:

- pages carry raw dicts with a source id, and cursors of the stream's cursor type that
  survive a JSON round trip (they are stored as JSON);
- cursors only move forward within a run and from one run to the next (``harness.order``);
- a run that crashes after page k and is rerun from the stored cursor ends in exactly the
  state of an uninterrupted run (same live source ids, same payload hashes, same activities);
- an empty source writes no rows, and an unchanged source rewrites none;
- deletions at the source retire the rows;
- after the source forgets the cursor (``harness.force_reset``) the next run re-reads the
  whole source and ends with exactly what the source has.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from sqlalchemy import Engine, func, select

from connectors.page import Cursor, KnownHashes, Page
from flows.engine import StreamResult, StreamSpec, run_stream
from warehouse import schema as t
from warehouse.db import make_engine, upgrade
from warehouse.state import StreamKey, load_cursor


class SourceHarness(Protocol):
    """One stream of one connector, on a source the test can change.

    ``supports_deletes`` is False for sources that never report deletions by design (a mail
    archive on disk); the deletion checks are then skipped and ``remove`` is never called.
    """

    name: str
    supports_deletes: bool

    def spec(self) -> StreamSpec:
        """The stream as the source type builds it, with small pages (2–3 records)."""
        ...

    def add(self, n: int) -> None:
        """Put ``n`` new records into the source."""
        ...

    def remove(self) -> None:
        """Delete one existing record from the source."""
        ...

    def expected_ids(self) -> set[str]:
        """The source ids (as ``spec().source_id`` names them) the source holds now."""
        ...

    def force_reset(self, engine: Engine) -> None:
        """Make the source reject the stored cursor (UIDVALIDITY change, forgotten token…)."""
        ...

    def order(self, cursor: Any) -> tuple[Any, ...]:
        """A key that never decreases as the stream makes progress (between resets)."""
        ...


class Crash(Exception):
    """Raised by :func:`crashing` to simulate a worker dying between two pages."""


def crashing(spec: StreamSpec, after_pages: int) -> StreamSpec:
    """The same stream, dying after ``after_pages`` pages have been handed to the engine.

    The engine commits each page before asking for the next, so exactly ``after_pages``
    pages are stored when the crash propagates.
    """

    def read(cursor: Cursor | None, known: KnownHashes | None = None) -> Iterator[Page[Any]]:
        pages = (
            spec.read(cursor)
            if known is None or spec.read_known is None
            else spec.read_known(cursor, known)
        )
        for i, page in enumerate(pages):
            if i == after_pages:
                raise Crash(f"simulated crash after page {after_pages}")
            yield page

    return dataclasses.replace(
        spec, read=read, read_known=read if spec.read_known is not None else None
    )


def sync(engine: Engine, spec: StreamSpec, run_id: str = "conformance") -> StreamResult:
    return run_stream(engine, spec, run_id)


def live_ids(engine: Engine, key: StreamKey) -> set[str]:
    """Live source ids of a stream, without the store's ``address:`` placeholders (people it
    creates for addresses met in mail and meetings)."""
    sr = t.SourceRecord
    with engine.connect() as conn:
        rows = conn.execute(
            select(sr.source_id).where(
                sr.connector == key.connector, sr.stream == key.stream, sr.deleted_at.is_(None)
            )
        ).scalars()
        return {s for s in rows if not s.startswith(("address:", "ref:"))}


def state_of(engine: Engine, key: StreamKey) -> dict[str, Any]:
    """What a stream left in the warehouse, comparable across databases and runs."""
    sr, act = t.SourceRecord, t.Activity
    with engine.connect() as conn:
        lineage = {
            (s, e, h)
            for s, e, h in conn.execute(
                select(sr.source_id, sr.entity, sr.payload_hash).where(
                    sr.connector == key.connector,
                    sr.stream == key.stream,
                    sr.deleted_at.is_(None),
                )
            )
        }
        keys = set(conn.execute(select(act.key).where(act.deleted_at.is_(None))).scalars().all())
        quarantined = conn.execute(
            select(func.count())
            .select_from(t.Quarantine)
            .where(t.Quarantine.connector == key.connector, t.Quarantine.stream == key.stream)
        ).scalar_one()
    return {"lineage": lineage, "activities": keys, "quarantined": quarantined}


def row_counts(engine: Engine) -> dict[str, int]:
    tables = [t.SourceRecord, t.Activity, t.Person, t.Organization, t.Quarantine]
    with engine.connect() as conn:
        return {
            m.__tablename__: int(conn.execute(select(func.count()).select_from(m)).scalar_one())
            for m in tables
        }


def cursor_round_trip(spec: StreamSpec, cursor: Cursor) -> None:
    assert isinstance(cursor, spec.cursor_type), type(cursor)
    dumped = json.loads(json.dumps(cursor.model_dump(mode="json")))
    assert spec.cursor_type.model_validate(dumped) == cursor


class ConformanceSuite:
    """Inherit this in ``tests/test_conformance_<name>.py`` and provide ``harness``."""

    @pytest.fixture
    def harness(self) -> SourceHarness:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def other_engine(self, tmp_path: Path) -> Iterator[Engine]:
        """A second warehouse for an uninterrupted reference run."""
        eng = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
        upgrade(eng)
        yield eng
        eng.dispose()

    def test_pages_are_raw_dicts_with_serialisable_cursors(
        self, harness: SourceHarness, engine: Engine
    ) -> None:
        harness.add(5)
        spec = harness.spec()
        pages = list(spec.read(None))
        assert len(pages) >= 2, "the harness should page small enough to give several pages"
        ids: list[str] = []
        for page in pages:
            assert isinstance(page, Page)
            cursor_round_trip(spec, page.cursor)
            for raw in page.records:
                assert isinstance(raw, dict)
                sid = spec.source_id(raw)
                assert isinstance(sid, str) and sid
                ids.append(sid)
                mapped = spec.map(raw)
                assert all(x.source_id == sid for x in mapped), "records keep the raw's id"
            assert all(isinstance(d, str) and d for d in page.deleted)
        assert set(ids) == harness.expected_ids()
        assert len(ids) == len(set(ids)), "a first pass emits each record once"

    def test_cursors_only_move_forward(self, harness: SourceHarness, engine: Engine) -> None:
        harness.add(5)
        spec = harness.spec()
        first = [p.cursor for p in spec.read(None)]
        keys = [harness.order(c) for c in first]
        assert keys == sorted(keys), keys
        sync(engine, spec)
        with engine.connect() as conn:
            stored = spec.cursor_type.model_validate(load_cursor(conn, spec.key))
        assert harness.order(stored) >= keys[-1]
        harness.add(2)
        later = [harness.order(p.cursor) for p in spec.read(stored)]
        assert later, "new records must produce pages"
        assert later == sorted(later) and later[0] >= harness.order(stored)

    def test_crash_then_rerun_ends_like_an_uninterrupted_run(
        self, harness: SourceHarness, engine: Engine, other_engine: Engine
    ) -> None:
        harness.add(7)
        spec = harness.spec()
        with pytest.raises(Crash):
            sync(engine, crashing(spec, after_pages=1))
        with engine.connect() as conn:
            assert load_cursor(conn, spec.key) is not None, "the first page's cursor is stored"
        sync(engine, spec)
        sync(other_engine, harness.spec())
        assert state_of(engine, spec.key) == state_of(other_engine, spec.key)
        assert live_ids(engine, spec.key) == harness.expected_ids()

    def test_empty_source_writes_nothing_and_unchanged_source_rewrites_nothing(
        self, harness: SourceHarness, engine: Engine
    ) -> None:
        spec = harness.spec()
        before = row_counts(engine)
        result = sync(engine, spec)
        assert row_counts(engine) == before
        assert result.read == 0 and result.stats.counts() == {
            "inserted": 0,
            "updated": 0,
            "deleted": 0,
            "quarantined": 0,
        }
        harness.add(3)
        sync(engine, spec)
        after = row_counts(engine)
        again = sync(engine, spec)
        assert row_counts(engine) == after
        assert again.stats.inserted == again.stats.updated == again.stats.deleted == 0

    def test_deletions_at_the_source_retire_rows(
        self, harness: SourceHarness, engine: Engine
    ) -> None:
        if not harness.supports_deletes:
            pytest.skip(f"{harness.name} does not report deletions by design")
        harness.add(4)
        spec = harness.spec()
        sync(engine, spec)
        before = live_ids(engine, spec.key)
        harness.remove()
        result = sync(engine, spec)
        assert result.stats.deleted >= 1
        assert live_ids(engine, spec.key) == harness.expected_ids()
        assert len(live_ids(engine, spec.key)) == len(before) - 1

    def test_reset_rereads_the_whole_source(self, harness: SourceHarness, engine: Engine) -> None:
        harness.add(4)
        spec = harness.spec()
        sync(engine, spec)
        if harness.supports_deletes:
            harness.remove()
        harness.force_reset(engine)
        harness.add(1)
        result = sync(engine, spec)
        expected = harness.expected_ids()
        assert result.read >= len(expected), "a reset re-reads everything the source has"
        assert live_ids(engine, spec.key) == expected
        with engine.connect() as conn:
            assert load_cursor(conn, spec.key) is not None
