"""A Singer tap as a reader: run the executable, turn its stdout messages into pages.

The tap is started with ``--config`` (and ``--catalog``, and ``--state`` holding the last
STATE Kizuna committed). A page ends at a STATE message once ``page_size`` records are
buffered, so the cursor stored with a page is a state the tap itself declared true for every
record before it: a crash and a rerun resume from the last committed STATE, and records the
tap re-emits are absorbed by the upsert on their key. If a tap sends no STATE for
``4 × page_size`` records the page is cut anyway with the older state (memory stays flat;
the rerun re-reads a little more).

Containment: a line longer than ``max_line_bytes``, a line that is not JSON, a RECORD
without its key properties: each becomes a ``RawBad`` with the reason; the stream goes on.
The tap's stderr goes to ``log`` line by line (the caller masks secrets); a non-zero exit
raises ``FatalError`` when the tap says its configuration or credentials are wrong (exit
status 2, or such words in its last lines), else ``TransientError`` (the next run resumes).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from connectors.page import Cursor, Page, RawBad
from kizuna.errors import FatalError, TransientError

MAX_LINE_BYTES = 4_000_000
_FATAL_WORDS = ("auth", "credential", "permission", "forbidden", "401", "403", "config")


class SingerCursor(Cursor):
    """The tap's last STATE value (``None`` before the first one)."""

    state: dict[str, Any] | None = None


@dataclass(frozen=True)
class TapRun:
    """How to start the tap: the command, its config (already merged with secrets), catalog."""

    command: Sequence[str]
    config: dict[str, Any]
    catalog: Path | None = None
    catalog_flag: str = "--catalog"
    streams: frozenset[str] | None = None
    """Streams to keep; RECORDs of others are dropped (``None``: keep every stream)."""
    env: dict[str, str] = field(default_factory=dict)


def _write_json(folder: str, name: str, value: Any) -> str:
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(value, fh)
    return path


def _drain(stream: IO[bytes], log: Callable[[str], None], tail: deque[str]) -> None:
    for raw in iter(lambda: stream.readline(64_000), b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if line:
            tail.append(line)
            log(line)


def _read_line(out: IO[bytes], limit: int) -> tuple[bytes, bool] | None:
    """The next line and whether it fit in ``limit`` bytes (the rest of a long one is skipped)."""
    line = out.readline(limit + 1)
    if not line:
        return None
    if len(line) <= limit or line.endswith(b"\n"):
        return line, len(line.rstrip(b"\n")) <= limit
    while (more := out.readline(1 << 20)) and not more.endswith(b"\n"):
        pass
    return line[:200], False


class _Pages:
    """Turns the message stream into pages; one instance per run."""

    def __init__(
        self, run: TapRun, cursor: SingerCursor | None, page_size: int, limit: int
    ) -> None:
        self.run, self.page_size, self.limit = run, page_size, limit
        self.state = cursor.state if cursor else None
        self.keys: dict[str, list[str]] = {}
        self.records: list[dict[str, Any]] = []
        self.bad: list[RawBad] = []

    def page(self) -> Page[SingerCursor]:
        page = Page(records=self.records, cursor=SingerCursor(state=self.state), bad=self.bad)
        self.records, self.bad = [], []
        return page

    def take(self, line: bytes, fits: bool, n: int) -> Page[SingerCursor] | None:
        if not fits:
            return self._bad(n, f"line longer than {self.limit} bytes", line)
        try:
            msg = json.loads(line)
        except ValueError as exc:
            return self._bad(n, f"not JSON ({exc})", line)
        if not isinstance(msg, dict):
            return self._bad(n, "not a Singer message (a JSON object)", line)
        kind, stream = msg.get("type"), str(msg.get("stream", ""))
        if kind == "SCHEMA":
            self.keys[stream] = [str(k) for k in msg.get("key_properties") or []]
        elif kind == "RECORD":
            if self.run.streams is not None and stream not in self.run.streams:
                return None
            record = msg.get("record")
            if not isinstance(record, dict):
                return self._bad(n, f"RECORD of {stream!r} without a record object", line)
            self.records.append({"stream": stream, "key": self.keys.get(stream), "record": record})
        elif kind == "STATE":
            self.state = msg.get("value") if isinstance(msg.get("value"), dict) else None
            if len(self.records) + len(self.bad) >= self.page_size:
                return self.page()
        if len(self.records) + len(self.bad) >= 4 * self.page_size:
            return self.page()
        return None

    def _bad(self, n: int, reason: str, line: bytes) -> Page[SingerCursor] | None:
        text = line[:2000].decode("utf-8", errors="replace")
        self.bad.append(RawBad(None, f"tap output line {n}: {reason}", text))
        return None


def pages(
    run: TapRun,
    cursor: SingerCursor | None,
    *,
    page_size: int = 1000,
    max_line_bytes: int = MAX_LINE_BYTES,
    log: Callable[[str], None] = lambda line: None,
    describe: Callable[[str], str] = lambda text: text,
) -> Iterator[Page[SingerCursor]]:
    """Run the tap once from ``cursor``; ``describe`` masks secrets in an error message."""
    with tempfile.TemporaryDirectory(prefix="kizuna-tap-") as tmp:
        argv = [*run.command, "--config", _write_json(tmp, "config.json", run.config)]
        if run.catalog is not None:
            argv += [run.catalog_flag, str(run.catalog)]
        if cursor is not None and cursor.state is not None:
            argv += ["--state", _write_json(tmp, "state.json", cursor.state)]
        proc = _start(run, argv, tmp)
        assert proc.stdout is not None and proc.stderr is not None
        tail: deque[str] = deque(maxlen=5)
        drain = threading.Thread(target=_drain, args=(proc.stderr, log, tail), daemon=True)
        drain.start()
        state = _Pages(run, cursor, page_size, max_line_bytes)
        try:
            n = 0
            while (got := _read_line(proc.stdout, max_line_bytes)) is not None:
                n += 1
                page = state.take(*got, n)
                if page is not None:
                    yield page
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            drain.join(timeout=5)
            proc.stdout.close()
            proc.stderr.close()
        if code != 0:
            raise _failure(run, code, tail, describe)
        yield state.page()


def _start(run: TapRun, argv: list[str], cwd: str) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **run.env},
            cwd=cwd,
        )
    except OSError as exc:
        raise FatalError(
            f"cannot start the tap {run.command[0]!r} ({exc.strerror}). Fix: install it "
            "or give its full path in `command:`."
        ) from None


def _failure(
    run: TapRun, code: int, tail: deque[str], describe: Callable[[str], str]
) -> FatalError | TransientError:
    """A non-zero exit, classified: config/credential trouble is fatal, the rest transient."""
    said = describe(" | ".join(tail)) or "no message"
    text = f"the tap {run.command[-1]!r} exited with status {code}: {said}"
    if code == 2 or any(w in said.lower() for w in _FATAL_WORDS):
        return FatalError(f"{text}. Fix: check the tap's config and credentials.")
    return TransientError(f"{text}; the next run resumes from the last committed state")


def discover(
    run: TapRun,
    *,
    log: Callable[[str], None] = lambda line: None,
    describe: Callable[[str], str] = lambda text: text,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Run the tap in discovery mode (``--discover``) and return its catalog; nothing is read."""
    with tempfile.TemporaryDirectory(prefix="kizuna-tap-") as tmp:
        argv = [*run.command, "--config", _write_json(tmp, "config.json", run.config)]
        proc = _start(run, [*argv, "--discover"], tmp)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise TransientError(
                f"the tap {run.command[-1]!r} did not finish --discover in {timeout:.0f} s"
            ) from None
    tail: deque[str] = deque(maxlen=5)
    for line in err.decode("utf-8", errors="replace").splitlines():
        if line.strip():
            tail.append(line)
            log(line)
    if proc.returncode != 0:
        raise _failure(run, proc.returncode, tail, describe)
    try:
        catalog = json.loads(out)
    except ValueError:
        catalog = None
    if not isinstance(catalog, dict) or not isinstance(catalog.get("streams"), list):
        raise FatalError(
            f"the tap {run.command[-1]!r} printed no Singer catalog for --discover. Fix: "
            "check that it supports discovery (`tap --config c.json --discover`)."
        )
    return catalog
