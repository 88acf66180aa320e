"""Identity resolution for people: prepare → score blocks → save evidence → cluster.

``resolve_full`` reads id ranges into comparable features (columns of distinct values),
compares each range with the stored index by fingerprint as it is read, writes the rows
that changed once every range is read (``identity.upkeep.renewal``), scores
every blocked pair in bulk with the weights learned from the data (``identity.learned``),
saves the evidence and clusters; the features are scored as prepared, never read back. On
two cores a large run resolves the companies in a second process while this one reads
people (that process then reads people's ranges from the far end) and writes an empty index
from another while it scores (``identity.apart``).
``resolve_incremental`` does the same around the rows that changed. The Prefect flow runs
either as one task.

Incremental runs start from rows whose ``updated_at`` is past the last run's watermark,
rewrite only the keys that changed, and compare those rows only with the rows sharing a block
with them, so the cost follows the change, not the store. On two cores a change is scored in
a second process, which reads the index as stored and sizes each block as it will be once
the change is written (``renewal.Change.shift``), while this one writes the change and
resolves the changed companies; this one commits only once that process has read all it
needs, and saves the decisions in a second transaction. Merges found incrementally are kept
until a full run or an admin says otherwise; a full run recomputes every edge from scratch.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from warehouse import schema as t
from warehouse.db import Checkpoints, write_transaction
from warehouse.identity import graph as graph
from warehouse.identity import learned
from warehouse.identity import schema as ids
from warehouse.identity.apart import Claims, Stage, forkable, large, run_apart
from warehouse.identity.blocking import ENTITY, id_ranges, shrink, tune
from warehouse.identity.evidence import (
    cluster_all,
    cluster_around,
    drop_machine_evidence,
    drop_stale_matches,
    recluster,
    save_matches,
)
from warehouse.identity.keys.matching import Decision, MatchSettings
from warehouse.identity.linkage import index
from warehouse.identity.linkage.frame import release
from warehouse.identity.linkage.memo import Memo, workers
from warehouse.identity.org_resolve import resolve_orgs
from warehouse.identity.upkeep.names import read_up_front
from warehouse.identity.upkeep.renewal import (
    Change,
    Found,
    around,
    indexed,
    prepare_range,
    read_change,
    store_index,
    write_change,
)
from warehouse.identity.upkeep.spool import Spool
from warehouse.memory import room
from warehouse.state import now
from warehouse.write.upsert import upsert

X = t.table(ids.IdentityMatch)
S = t.table(ids.IdentityState)
PERSON = t.table(t.Person)
# A change this many rows or more is scored in a second process while this one writes it:
# the fork costs 15-25 ms at a 1 % change of a million people, scoring 2,000 changed rows'
# neighbourhood about 0.2 s.
AROUND_ROWS = 2_000


@dataclass
class ResolveStats:
    mode: str = "full"
    records: int = 0
    keys: int = 0
    blocks: int = 0
    oversized_blocks: int = 0
    pairs: int = 0
    merges: int = 0
    reviews: int = 0
    clusters_changed: int = 0
    organizations: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- score ---------------------------------------------------------------------------------


Around = tuple[list[Decision], int, int, float]  # decisions, pairs, skipped blocks, seconds


def _score_apart(
    engine: Engine, settings: MatchSettings, dirty: Sequence[int]
) -> tuple[Callable[[], Around], Callable[[], Change], Stage | None]:
    """Prepare the changed rows ``dirty`` and score them (``around`` the change, then the
    pairs touching it): in a second process while this one resolves the companies and
    writes the change (``AROUND_ROWS`` rows or more, on two cores, with room for it), else
    here and now, before anything is written. Returns ``wait`` for the result, ``change``
    for the change (handed over as soon as prepared), and the stage reached once all is
    read (None: nothing left to read)."""
    changed = Stage(carry=True)

    def score(c: Connection, read: Stage | None) -> Around:
        t0 = time.monotonic()
        change = read_change(c, settings, dirty)
        changed.reached(change)
        if not len(change.cols):
            return [], 0, 0, 0.0
        try:
            every, skipped, stored = around(c, settings, change)
        finally:
            if read is not None:
                read.reached()
        found, pairs = learned.score_some(settings, every, set(change.cols.ids.tolist()), stored)
        return found, pairs, skipped, round(time.monotonic() - t0, 2)

    fork = len(dirty) >= AROUND_ROWS and workers() >= 2 and room() and forkable(engine)
    read = Stage() if fork else None

    def work(e: Engine) -> Around:
        # Apart, each read sees the newest commit: the run's own are the companies', which
        # these reads do not touch, and none of the people's index before ``read``. A
        # snapshot held through them would keep SQLite from checkpointing the companies'
        # pages meanwhile.
        with e.connect().execution_options(sqlite_begin="NONE" if fork else "DEFERRED") as c:
            return score(c, read)

    stages = (changed, read) if read is not None else ()
    wait = run_apart("scoring the changed rows", engine, work, fork, stages)

    def change() -> Change:
        got: Change | None = changed.wait()
        if got is None:
            wait()  # it stopped before handing the change over: this raises why
            raise RuntimeError("scoring the changed rows failed: no change handed over")
        return got

    return wait, change, read


# -- state -----------------------------------------------------------------------------------


def watermark(conn: Connection) -> datetime | None:
    row = conn.execute(select(S.c.watermark).where(S.c.entity == ENTITY)).first()
    return None if row is None else row[0]


def save_state(conn: Connection, mark: datetime, stats: ResolveStats) -> None:
    values: dict[str, Any] = {"entity": ENTITY, "watermark": mark, "stats": stats.as_dict()}
    if stats.mode == "full":
        values["full_run_at"] = mark
    upsert(conn, S, [values], ["entity"])


def changed_ids(conn: Connection, since: datetime) -> list[int]:
    return [int(r) for (r,) in conn.execute(select(PERSON.c.id).where(PERSON.c.updated_at > since))]


# -- one-process entry points ----------------------------------------------------------------


def resolve_full(
    engine: Engine,
    settings: MatchSettings,
    survive: Any = None,
    step: Callable[[str], None] | None = None,
) -> ResolveStats:
    """Resolve every person from scratch (same input → same clusters and ids); ``step`` is
    told of each range prepared, then of scoring and clustering (``steps`` counts them)."""
    stats = ResolveStats(mode="full")
    t0 = time.monotonic()
    with write_transaction(engine) as conn:
        mark = now()
        ranges = id_ranges(conn)
        renew = indexed(conn)  # each range is compared with the stored index as it is read
        # The watermark goes first: after a run that stops half-way the next run is a full
        # one, not an incremental run trusting evidence only half renewed.
        conn.execute(update(S).where(S.c.entity == ENTITY).values(watermark=None))
    # An empty index is spooled as the ranges are read and written by a process forked
    # now, before this one's heap grows (``identity.upkeep.spool``). The companies need nothing
    # from the people's features: a large run resolves them in a second process while this
    # one reads people (here otherwise, the same way), and waits for it before the people's
    # index is written. That process then reads people's ranges from the far end until the
    # two meet.
    span = ranges[-1][1] - ranges[0][0] if ranges else 0
    fork = large(span) and forkable(engine)
    spool = None if renew else Spool(engine, fork and room())
    apart = Checkpoints()  # from the index's commit on: the run's checkpoints, in a thread
    try:
        read_up_front(engine, fork)  # many company names unread: each read once, first
        claims = Claims(len(ranges), fork)
        far = (ranges, claims, spool) if fork else None
        companies = run_apart(
            "resolving companies", engine, lambda e: _companies_full(e, mark, settings, far), fork
        )
        try:
            found = _people_full(
                engine, settings, mark, (ranges, claims, spool), stats, companies, apart, step
            )
        except BaseException:
            with contextlib.suppress(Exception):
                companies()  # no process left writing once this run has stopped
            raise
    finally:
        if spool is not None:
            spool.close()
    t2 = time.monotonic()
    with write_transaction(engine, apart) as conn:
        drop_stale_matches(conn, mark)
        changed = cluster_all(conn, mark, found)
        del found  # half a million decisions with their evidence, let go before surviving
        release()
        stats.clusters_changed = len(changed)
        stats.organizations, stats.phases["organizations"], _ = companies()
        _count_decisions(conn, stats)
        if survive is not None:
            survive(conn, changed)
        stats.phases["cluster"] = round(time.monotonic() - t2, 2)
        stats.seconds = round(time.monotonic() - t0, 2)
        save_state(conn, mark, stats)
    apart.wait()
    if step is not None:
        step("cluster")
    return stats


Part = tuple[int, Found]  # (range number, its rows as read)
# The people's id ranges, who takes which, and the spool of an empty index (None: the ranges
# are compared with the stored one).
Ranges = tuple[Sequence[tuple[int, int]], Claims, Spool | None]


def _companies_full(
    engine: Engine,
    mark: datetime,
    settings: MatchSettings,
    far: Ranges | None = None,
) -> tuple[dict[str, int], float, list[Part]]:
    """Every company resolved, in one transaction: (the companies' stats, seconds it
    took, the people's ranges it then read from the far end of ``far``)."""
    t0 = time.monotonic()
    with write_transaction(engine) as conn:
        got = resolve_companies(conn, mark, settings)
    took = round(time.monotonic() - t0, 2)
    parts: list[Part] = []
    if far is not None:
        release()  # what resolving the companies freed, before this process reads people
        parts = _read_ranges(engine, settings, far, far[1].back, helper=False)
    return got, took, parts


def _read_ranges(
    engine: Engine,
    settings: MatchSettings,
    work: Ranges,
    take: Callable[[], int | None],
    helper: bool = True,
    step: Callable[[str], None] | None = None,
) -> list[Part]:
    """The ranges this process takes (``take``: from the front, or from the far end), read
    with one memo, so each distinct value is computed and hashed once; the spool is told
    once they are all read. ``helper``: company names may go to a second process."""
    ranges, _, spool = work
    parts: list[Part] = []
    memo, hashed = Memo(settings, helper=helper), index.Hashed()
    try:
        for k in iter(take, None):
            with engine.connect() as conn:
                parts.append((k, prepare_range(conn, settings, *ranges[k], memo, spool, hashed)))
            if step is not None:
                step("prepare")
    finally:
        memo.close()
        if spool is not None:
            spool.finished()
    return parts


def _people_full(
    engine: Engine,
    settings: MatchSettings,
    mark: datetime,
    work: Ranges,
    stats: ResolveStats,
    companies: Callable[[], tuple[dict[str, int], float, list[Part]]],
    apart: Checkpoints,
    step: Callable[[str], None] | None,
) -> list[Decision]:
    """Every person's features, index and scored pairs (saved with the model learned);
    returns the decisions for clustering. The companies are waited for before the index is
    written: on SQLite the two would otherwise queue for the one writer. The index's
    commit is checkpointed by a thread of ``apart`` while the evidence is saved."""
    t0 = time.monotonic()
    ranges, claims, spool = work
    parts = _read_ranges(engine, settings, work, claims.front, step=step)
    far = companies()[2]  # the ranges the companies' process read (it is done)
    parts.extend(far)
    if step is not None:
        for _ in far:
            step("prepare")
    far.clear()  # the wait keeps its result: not these columns through scoring
    with engine.connect() as conn:
        shrink(conn)  # the page cache the ranges' reads left, before scoring needs the memory
    parts.sort(key=lambda p: p[0])
    stats.records = sum(len(f.cols) for _, f in parts)
    every = Found.concat([f for _, f in parts])  # id order: each range in turn
    del parts
    release()
    # The index is renewed once every row is read: only rows whose features changed are
    # written (all of them into an empty index, each table in its own key order, from the
    # spool's process on a large run while this one scores).
    bounds = None if spool is not None else (ranges[0][0], ranges[-1][1]) if ranges else (0, 0)
    wait = store_index(engine, every, bounds, spool)
    cols, record_keys = every.cols, every.keys
    del every
    try:
        # The features prepared above are scored as they are: not read back from the store.
        ordered = learned.in_key_order(engine.dialect.name, cols, record_keys)
        del cols, record_keys
        release()
        stats.phases["prepare"] = round(time.monotonic() - t0, 2)
        t1 = time.monotonic()
        found, st, save_model = learned.score_columns(settings, ordered)
        del ordered
    except BaseException:
        with contextlib.suppress(Exception):
            wait()  # no writer left behind when this run fails
        raise
    stats.pairs += st["pairs"]
    stats.oversized_blocks += st["oversized"]
    stats.keys = wait()
    apart.start(engine)
    with write_transaction(engine, apart) as conn:
        save_model(conn)
        save_matches(conn, found, mark)
    stats.phases["score"] = round(time.monotonic() - t1, 2)
    if step is not None:
        step("score")
    return found


def steps(conn: Connection) -> int:
    """How many times a full run calls its ``step``: once per id range, then twice."""
    return len(id_ranges(conn)) + 2


def resolve_incremental(
    engine: Engine, settings: MatchSettings, survive: Any = None
) -> ResolveStats:
    """Resolve only around rows changed since the last run (a full run if there was none).

    On two cores a second process prepares the changed rows' features, hands them over,
    finds their neighbours in the index as stored and scores them, while this one resolves
    the changed companies (committed: SQLite's checkpoint of their pages runs in a thread)
    and then writes the change to the index, committed once that process has done its
    reads. The decisions are saved and clustered once both are done, in a last
    transaction. Smaller changes: the same steps in this process, reading before writing."""
    t0 = time.monotonic()
    # Under the writer's lock, held only for this: a sync stamps its rows after taking it,
    # so none stamped before ``mark`` can commit after ``dirty`` is read (and be missed).
    with write_transaction(engine) as conn:
        since, mark = watermark(conn), now()
        dirty = [] if since is None else changed_ids(conn, since)
    if since is None:
        return resolve_full(engine, settings, survive)
    stats = ResolveStats(mode="incremental")
    scored, prepared, read = _score_apart(engine, settings, dirty)
    apart = Checkpoints()
    with write_transaction(engine, apart) as conn:
        tune(conn)
        try:
            t1 = time.monotonic()
            stats.organizations = resolve_companies(conn, mark, settings, since)
            stats.phases["organizations"] = round(time.monotonic() - t1, 2)
        except BaseException:
            with contextlib.suppress(Exception):
                scored()  # no process left reading once this run has stopped
            raise
    # The companies are committed: SQLite makes their pages durable while this process
    # writes the people's index, committed once the second process has read the index as
    # stored. A run stopped before has not moved the watermark: the next one resolves the
    # same companies again, to the same end.
    try:
        with write_transaction(engine, apart) as conn:
            change = prepared()
            stats.records = len(change.cols)
            stats.phases["prepare"] = change.seconds
            t1 = time.monotonic()
            stats.keys = write_change(conn, change)
            stats.phases["index"] = round(time.monotonic() - t1, 2)
            if read is not None:
                read.wait()  # the index as stored is read: what this run wrote may be seen
    except BaseException:
        with contextlib.suppress(Exception):
            scored()
        raise
    # A run stopped from here on has not moved the watermark either: the next one reads
    # the same rows, finds their index as it is and scores them again.
    found, stats.pairs, stats.oversized_blocks, stats.phases["score"] = scored()
    t2 = time.monotonic()
    with write_transaction(engine) as conn:
        save_matches(conn, found, mark)
        changed = cluster_around(conn, found, mark)
        gone = sorted(set(dirty) - set(change.cols.ids.tolist()))
        if gone:
            drop_machine_evidence(conn, gone)
            changed |= recluster(conn, gone)
        stats.clusters_changed = len(changed)
        stats.phases["cluster"] = round(time.monotonic() - t2, 2)
        stats.merges = sum(1 for d in found if d.decision == "merge")
        stats.reviews = sum(1 for d in found if d.decision == "review")
        if survive is not None:
            survive(conn, changed)
        stats.seconds = round(time.monotonic() - t0, 2)
        save_state(conn, mark, stats)
    apart.wait()
    return stats


def resolve_companies(
    conn: Connection, ts: datetime, settings: MatchSettings, since: datetime | None = None
) -> dict[str, int]:
    """Organizations: all of them, or only around those changed since ``since``."""
    return resolve_orgs(conn, ts, settings.phone_region, since)


def _count_decisions(conn: Connection, stats: ResolveStats) -> None:
    for dec, n in conn.execute(
        select(X.c.decision, func.count()).where(X.c.entity == ENTITY).group_by(X.c.decision)
    ):
        if dec == "merge":
            stats.merges = int(n)
        elif dec == "review":
            stats.reviews = int(n)
