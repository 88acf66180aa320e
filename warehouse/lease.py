"""Leases: one holder per unit of work, across processes and hosts, kept in the warehouse.

A unit is a string (``stream:crm/Contact``, ``identity``, ``campaign:spring``). Taking it
inserts a ``lease`` row (or takes over one whose time ran out) in one write transaction, so
on PostgreSQL the row lock and on SQLite ``BEGIN IMMEDIATE`` decide between two takers. The
holder renews ``expires_at`` from a background thread while it works and deletes the row when
done. A holder that dies leaves a row that expires after ``ttl``; on the same host a row whose
process is gone is taken over at once (a SIGKILLed run is rerun without waiting).

The same rows answer "is this ``pending`` ledger row in doubt?": only when the lease of the
run that wrote it is no longer live (:func:`live_owners`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from kizuna.errors import LeaseHeld
from warehouse.db import write_transaction
from warehouse.lease_schema import Lease
from warehouse.state import now
from warehouse.write.upsert import chunks

TTL = 60.0
POLL = 0.2
"""How often a waiting taker looks again: one indexed read, so cheap enough that a stream freed
between two looks is not left idle for most of a second (a run's streams take about one)."""
"""Seconds a lease lives without renewal; renewed every quarter of that while held."""

HOST = socket.gethostname()[:255]


@dataclass(frozen=True)
class Holder:
    unit: str
    owner: str
    run_id: str
    host: str
    pid: int
    acquired_at: datetime
    expires_at: datetime

    def alive(self, at: datetime) -> bool:
        """Unexpired, and (on this host) its process still exists."""
        return self.expires_at > at and not (self.host == HOST and not _pid_alive(self.pid))

    def describe(self, what: str, zone: str) -> str:
        since = self.acquired_at.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z")
        return (
            f"{what} by run {self.run_id} on {self.host} (pid {self.pid}) since {since}; "
            "try again later"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _holder(conn: Connection, unit: str) -> Holder | None:
    row = conn.execute(select(Lease).where(Lease.unit == unit)).first()
    if row is None:
        return None
    return Holder(
        row.unit, row.owner, row.run_id, row.host, row.pid, row.acquired_at, row.expires_at
    )


def holder(engine: Engine, unit: str) -> Holder | None:
    """Who holds ``unit`` now (None when free or when the last holder is gone)."""
    with engine.connect() as conn:
        h = _holder(conn, unit)
    return h if h is not None and h.alive(now()) else None


class HeldLease:
    """A lease this process holds: renewed in the background until :meth:`release`."""

    def __init__(
        self, engine: Engine, unit: str, owner: str, ttl: float, previous: Holder | None
    ) -> None:
        self.engine, self.unit, self.owner, self.ttl = engine, unit, owner, ttl
        self.previous = previous
        """The holder whose expired lease was taken over (its work is in doubt), if any."""
        self.lost = False
        """Set when renewal found the row gone or taken: another run may now be working."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease {unit}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                if not self.renew():
                    self.lost = True
                    return
            except OperationalError:  # busy or a dropped connection: try at the next tick
                continue

    def renew(self) -> bool:
        with write_transaction(self.engine) as conn:
            res = conn.execute(
                update(Lease)
                .where(Lease.unit == self.unit, Lease.owner == self.owner)
                .values(expires_at=now() + timedelta(seconds=self.ttl))
            )
        return bool(res.rowcount)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with contextlib.suppress(OperationalError), write_transaction(self.engine) as conn:
            conn.execute(delete(Lease).where(Lease.unit == self.unit, Lease.owner == self.owner))

    def __enter__(self) -> HeldLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try(
    engine: Engine, unit: str, owner: str, run_id: str, ttl: float
) -> tuple[bool, Holder | None]:
    """One attempt: (taken, the holder in the way or the expired one taken over)."""
    with write_transaction(engine) as conn:
        at = now()
        values = {
            "unit": unit,
            "owner": owner,
            "run_id": run_id[:64],
            "host": HOST,
            "pid": os.getpid(),
            "acquired_at": at,
            "expires_at": at + timedelta(seconds=ttl),
        }
        current = _holder(conn, unit)
        if current is None:
            conn.execute(insert(Lease), values)
            return True, None
        if current.alive(at):
            return False, current
        # Compare-and-set on the old owner: of two runs taking over, one wins.
        res = conn.execute(
            update(Lease)
            .where(Lease.unit == unit, Lease.owner == current.owner)
            .values({k: v for k, v in values.items() if k != "unit"})
        )
        return bool(res.rowcount), current


def acquire(
    engine: Engine,
    unit: str,
    *,
    run_id: str,
    what: str,
    wait: float = 0.0,
    ttl: float = TTL,
    zone: str = "UTC",
    on_wait: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HeldLease:
    """Take ``unit``, waiting up to ``wait`` seconds for its holder to finish.

    Raises ``LeaseHeld`` with one line naming the holder (``what`` says what it is doing,
    e.g. "stream crm/Contact is being synced"); ``on_wait`` is told that line once, when
    the wait starts, so a person sees why nothing moves.
    """
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            taken, other = _try(engine, unit, owner, run_id, ttl)
        except IntegrityError:  # two first takers on PostgreSQL: the other one won, look again
            continue
        if taken:
            previous = other if other is not None and other.owner != owner else None
            return HeldLease(engine, unit, owner, ttl, previous)
        if other is not None:
            line = other.describe(what, zone)
            if time.monotonic() >= deadline:
                raise LeaseHeld(line, unit=unit, run_id=other.run_id)
            if on_wait is not None and not told:
                on_wait(f"waiting: {line}")
                told = True
        sleep(min(POLL, max(0.05, deadline - time.monotonic())))


@contextlib.contextmanager
def held(
    engine: Engine,
    unit: str,
    *,
    run_id: str,
    what: str,
    wait: float = 0.0,
    zone: str = "UTC",
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[HeldLease]:
    """``with held(engine, "identity", run_id=…, what=…):`` — acquire, work, release."""
    lease = acquire(engine, unit, run_id=run_id, what=what, wait=wait, zone=zone, on_wait=on_wait)
    try:
        yield lease
    finally:
        lease.release()


def live_owners(conn: Connection, owners: Iterable[str]) -> set[str]:
    """Which of these lease tokens still belong to a live holder."""
    at = now()
    out: set[str] = set()
    for part in chunks(sorted(set(owners)), 900):
        for row in conn.execute(select(Lease).where(Lease.owner.in_(part))):
            h = Holder(
                row.unit, row.owner, row.run_id, row.host, row.pid, row.acquired_at, row.expires_at
            )
            if h.alive(at):
                out.add(h.owner)
    return out
