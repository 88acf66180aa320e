"""Work a large run hands to a second process, so both cores are busy.

A full run has parts that need nothing from each other until the end: the people's feature
pass and scoring, the companies (their own rows, features, evidence and clusters), and
writing an empty index once the people's features exist. On one core they ran one after the
other while the second core sat idle; here each can run in a forked process with
connections of its own, and the run waits for it before it writes what depends on it. The
companies' process then reads people's ranges from the far end (``Claims``) until the two
meet. An incremental run scores its change in a second process while it writes the change
(``resolve._score_apart``), and commits once that process has reached its ``Stage``: its
reads done. What a forked process reads or allocates lands in pages it shares with the run
and costs a copy of them, so only work worth a core goes apart: renewing a stored index is
done by the ranges as they are read (``identity.renewal``), and the weights are learned
before the pairing and the guard runs before the decisions, not beside them (either beside
the other copied 0.3–0.4 GB). Small runs, one core, an in-memory SQLite database or a
machine short of memory do the same work in this process, in the same place in the run.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine

from warehouse.identity.linkage.memo import PARALLEL_ROWS, workers

T = TypeVar("T")


def large(rows: int) -> bool:
    """A run big enough to pay for a second process, on a machine with a second core (the
    feature pass's own rule: ``linkage.memo``)."""
    return rows >= PARALLEL_ROWS and workers() >= 2


def forkable(engine: Engine) -> bool:
    """A second process can open the same database (not an in-memory SQLite one)."""
    if "fork" not in mp.get_all_start_methods():
        return False
    if engine.dialect.name != "sqlite":
        return True
    db = engine.url.database or ""
    return db not in ("", ":memory:") and Path(db).is_file()


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
    can wait for; a work that stopped before it counts as past it."""

    def __init__(self) -> None:
        self._event = mp.get_context("fork").Event()
        self._alive: Callable[[], bool] = lambda: False

    def reached(self) -> None:
        self._event.set()

    def wait(self) -> None:
        while not self._event.wait(0.05) and self._alive():
            pass


def run_apart(
    what: str, engine: Engine, work: Callable[[Engine], T], fork: bool, stage: Stage | None = None
) -> Callable[[], T]:
    """Run ``work(engine)`` in a forked process (``fork``) or here and now; returns
    ``wait``, which gives its result, or raises ``RuntimeError("{what} failed: …")`` with
    the one line of what stopped it (no row values: errors hide parameters). The caller
    must call ``wait`` before anything it writes depends on the work, also when it fails.
    Done here, the work's own exception propagates as it is. ``stage``: one the work
    reaches, which this process may wait for before the end."""
    if not (fork and forkable(engine)):
        done = work(engine)
        return lambda: done
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(engine, work, send), daemon=True)
    proc.start()
    send.close()
    if stage is not None:
        stage._alive = proc.is_alive
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
