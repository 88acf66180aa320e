"""Work a large run hands to a second process, so both cores are busy.

A full run has parts that need nothing from each other until the end: the people's feature
pass and scoring, the companies (their own rows, features, evidence and clusters), and
writing an empty index once the people's features exist. On one core they ran one after the
other while the second core sat idle; here each can run in a forked process with
connections of its own, and the run waits for it before it writes what depends on it. The
companies' process then reads people's ranges from the far end (``Claims``) until the two
meet. An incremental run prepares and scores its change in a second process
(``resolve._score_apart``), which hands the change over at a ``Stage``, while it resolves
the companies; it writes the change to the index and commits once that process has reached
a second stage: its reads done. A fork is made with no SQLite connection of the run open
(``forkable``, ``db.forking``). What a forked process reads or allocates lands in pages it
shares with the run and costs a copy of them, so only work worth a core goes apart:
renewing a stored index is done by the ranges as they are read (``identity.upkeep.renewal``), and
the weights are learned before the pairing and the guard runs before the decisions, not
beside them (either beside the other copied 0.3–0.4 GB). Small runs, one core, an in-memory SQLite database or a
machine short of memory do the same work in this process, in the same place in the run.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine

from warehouse.db import forking
from warehouse.identity.linkage.memo import PARALLEL_ROWS, workers

T = TypeVar("T")


def large(rows: int) -> bool:
    """A run big enough to pay for a second process, on a machine with a second core (the
    feature pass's own rule: ``linkage.memo``)."""
    return rows >= PARALLEL_ROWS and workers() >= 2


def forkable(engine: Engine) -> bool:
    """A second process can open the same database (not an in-memory SQLite one) and use it
    safely: on SQLite, only while this process holds no connection to it in use.

    SQLite's library keeps, per database file, what this process's connections lock; a
    fork copies that into the child, whose own connections then take some locks (a
    reader's mark in the WAL) only in that copy, not from the system. Another process's
    checkpoint then overwrites pages the child is reading ("database disk image is
    malformed", or worse, a wrong row). So a fork happens with every connection of this
    process closed: ``run_apart`` closes the idle ones, and no thread takes one meanwhile
    (``db.forking``)."""
    if "fork" not in mp.get_all_start_methods():
        return False
    if engine.dialect.name != "sqlite":
        return True
    db = engine.url.database or ""
    in_use = getattr(engine.pool, "checkedout", lambda: 0)()
    return db not in ("", ":memory:") and Path(db).is_file() and in_use == 0


class Claims:
    """Ranges of work two processes take from either end: this one from the front, a forked
    one from the back once its own work is done, so that neither core idles at the end of
    the feature pass. Not ``shared``: one process takes every range from the front."""

    def __init__(self, n: int, shared: bool) -> None:
        self._ends: Any = [0, n]
        self._lock: Any = contextlib.nullcontext()
        if shared:
            self._ends = mp.get_context("fork").Array("q", [0, n])
            self._lock = self._ends.get_lock()

    def front(self) -> int | None:
        return self._take(0)

    def back(self) -> int | None:
        return self._take(1)

    def _take(self, end: int) -> int | None:
        """The next range from the front (``end`` 0) or the back (1); None once they met."""
        with self._lock:
            lo, hi = self._ends[0], self._ends[1]
            if lo >= hi:
                return None
            k = lo if end == 0 else hi - 1
            self._ends[end] = lo + 1 if end == 0 else hi - 1
            return int(k)


class Stage:
    """A point a forked work reaches before its end (its reads done, say) that this process
    can wait for; a work that stopped before it counts as past it. ``carry``: the work hands
    a value over there (``reached(value)``), which ``wait`` gives (None: the work stopped
    before it). A thread of this process takes it in as it comes, so the work never waits
    on this process to make room in the pipe."""

    def __init__(self, carry: bool = False) -> None:
        ctx = mp.get_context("fork")
        self._event = ctx.Event()
        self._alive: Callable[[], bool] = lambda: False
        self._pid = os.getpid()
        self._value: Any = None
        self._pipe: Any = ctx.Pipe(duplex=False) if carry else None
        self._taking: threading.Thread | None = None
        self._got: list[bytes] = []

    def reached(self, value: Any = None) -> None:
        if self._pipe is not None and os.getpid() != self._pid:
            self._pipe[1].send_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        else:
            self._value = value
        self._event.set()

    def wait(self) -> Any:
        while not self._event.wait(0.05) and self._alive():
            pass
        if self._taking is not None:
            self._taking.join()
            self._taking = None
            self._value = pickle.loads(self._got.pop()) if self._got else None
        return self._value

    def _forked(self, alive: Callable[[], bool]) -> None:
        """In this process, once the work is forked: the pipe's end it writes is closed
        here (so a work that stops leaves it at its end) and a thread reads the other."""
        self._alive = alive
        if self._pipe is None:
            return
        recv, send = self._pipe
        send.close()

        def take() -> None:
            with contextlib.suppress(EOFError, OSError):
                self._got.append(recv.recv_bytes())
            recv.close()

        self._taking = threading.Thread(target=take, name="identity-stage", daemon=True)
        self._taking.start()


def run_apart(
    what: str,
    engine: Engine,
    work: Callable[[Engine], T],
    fork: bool,
    stages: Sequence[Stage] = (),
) -> Callable[[], T]:
    """Run ``work(engine)`` in a forked process (``fork``) or here and now; returns
    ``wait``, which gives its result, or raises ``RuntimeError("{what} failed: …")`` with
    the one line of what stopped it (no row values: errors hide parameters). The caller
    must call ``wait`` before anything it writes depends on the work, also when it fails.
    Done here, the work's own exception propagates as it is. ``stages``: those the work
    reaches, which this process may wait for before the end."""
    ctx = mp.get_context("fork")
    with forking():  # no connection taken by another thread until the child exists
        if engine.dialect.name == "sqlite" and fork:
            engine.dispose()  # no connection of this process open across the fork
        if not (fork and forkable(engine)):
            proc = None
        else:
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(engine, work, send), daemon=True)
            proc.start()
    if proc is None:
        done = work(engine)
        return lambda: done
    send.close()
    for stage in stages:
        stage._forked(proc.is_alive)
    got: list[Any] = []

    def wait() -> T:
        if not got:
            try:
                got.append(recv.recv())
            except EOFError:
                got.append(("error", f"it stopped with exit code {proc.exitcode}"))
            proc.join()
            recv.close()
        kind, value = got[0]
        if kind != "ok":
            raise RuntimeError(f"{what} failed: {value}")
        return value  # type: ignore[no-any-return]

    return wait


def _line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _child(engine: Engine, work: Callable[[Engine], Any], send: Any) -> None:
    """The forked process: new connections of its own (the parent's stay the parent's), one
    result or one line back through the pipe, nothing else."""
    engine.dispose(close=False)
    try:
        send.send(("ok", work(engine)))
    except BaseException as exc:  # reported to the parent, which raises it
        send.send(("error", _line(exc)))
