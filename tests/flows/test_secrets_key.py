"""Signing keys: created once, atomically, whatever the number of first runs at once; never
empty, never short; the environment (the same on every host) wins over the file."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from flows.secrets import signing_key
from kizuna.errors import ConfigError

ENV = "KZ_TEST_SIGNING_KEY"


def _first_run(key_file: str, start: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    os.environ.pop(ENV, None)
    time.sleep(max(0.0, start - time.time()))
    try:
        out.put(signing_key(ENV, Path(key_file)).decode())
    except BaseException as exc:
        out.put(f"error {type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_120_concurrent_first_runs_make_one_key_never_empty(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    key_file = tmp_path / ".kizuna" / "unsubscribe.key"
    start = time.time() + 1.5
    procs = [ctx.Process(target=_first_run, args=(str(key_file), start, out)) for _ in range(120)]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert len(set(got)) == 1, sorted(set(got))[:3]
    assert len(got[0]) == 64 and not got[0].startswith("error")
    assert key_file.read_text() == got[0]
    assert key_file.stat().st_mode & 0o077 == 0
    assert [p.name for p in key_file.parent.iterdir()] == ["unsubscribe.key"]  # no temp left


def test_a_short_key_is_refused_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "short")
    with pytest.raises(ConfigError, match="at least 32") as err:
        signing_key(ENV, tmp_path / "k", file="kizuna.yaml", field="outbound.x")
    assert "secrets.token_hex(32)" in str(err.value) and "short" not in str(err.value)
    monkeypatch.delenv(ENV)
    (tmp_path / "k").write_text("")  # an empty file left by an old, non-atomic version
    with pytest.raises(ConfigError, match="is 0 bytes"):
        signing_key(ENV, tmp_path / "k")
    monkeypatch.setenv(ENV, "k" * 40)
    assert signing_key(ENV, tmp_path / "nothing-written") == b"k" * 40
    assert not (tmp_path / "nothing-written").exists()
