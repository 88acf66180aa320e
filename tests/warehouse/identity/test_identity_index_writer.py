"""A large full run writes its index from a second process: the same index, its errors raised."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tests.warehouse.identity.test_identity_resolve import (
    CARDS,
    CRM,
    MAIL,
    S,
    _members,
    _person,
    _put,
    _tanaka,
)
from warehouse.identity import blocking
from warehouse.identity import schema as ids
from warehouse.identity.resolve import resolve_full, resolve_incremental


def _index(engine: Engine) -> dict[str, list[Any]]:
    """The person index and evidence a full run writes, in a fixed order."""
    m = ids.IdentityMatch
    with engine.connect() as conn:
        return {
            "features": conn.execute(
                select(ids.IdentityFeature.record_id, ids.IdentityFeature.data)
                .where(ids.IdentityFeature.entity == "person")
                .order_by(ids.IdentityFeature.record_id)
            ).all(),
            "keys": conn.execute(
                select(ids.IdentityKey.digest, ids.IdentityKey.record_id)
                .where(ids.IdentityKey.entity == "person")
                .order_by(ids.IdentityKey.digest, ids.IdentityKey.record_id)
            ).all(),
            "matches": conn.execute(
                select(m.a_id, m.b_id, m.score, m.decision)
                .where(m.entity == "person")
                .order_by(m.a_id, m.b_id)
            ).all(),
            "members": sorted(_members(engine).items()),
        }


def _write_index_noting_pid(*args: Any, **kw: Any) -> int:
    Path(os.environ["KIZUNA_TEST_WRITER_PID"]).write_text(str(os.getpid()))
    return _WRITE_INDEX(*args, **kw)


def _failing_write(*args: Any, **kw: Any) -> int:
    raise ValueError("disk full\nsecond line")


_WRITE_INDEX = blocking._write_index


def test_a_large_run_writes_its_index_from_a_second_process_with_the_same_result(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _tanaka(engine)
    _put(engine, MAIL, _person("o1", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"]))
    _put(engine, CARDS, _person("o2", full_name="鈴木 一郎", phones=["090-9999-0000"]))
    pid_file = tmp_path / "writer.pid"
    monkeypatch.setenv("KIZUNA_TEST_WRITER_PID", str(pid_file))
    monkeypatch.setattr(blocking, "_write_index", _write_index_noting_pid)
    stats = resolve_full(engine, S)  # below the row threshold: written here
    assert pid_file.read_text() == str(os.getpid())
    alone = _index(engine)
    assert stats.keys == len(alone["keys"]) > 0 and alone["matches"]

    monkeypatch.setattr(blocking, "PARALLEL_ROWS", 1)
    monkeypatch.setenv("KIZUNA_IDENTITY_WORKERS", "2")
    apart = resolve_full(engine, S)
    assert pid_file.read_text() != str(os.getpid())  # the forked writer wrote them
    assert _index(engine) == alone and apart.keys == stats.keys
    # The next change is resolved incrementally from the index the writer left.
    _put(engine, CRM, _person("s9", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"]))
    assert resolve_incremental(engine, S).mode == "incremental"

    monkeypatch.setattr(blocking, "_write_index", _failing_write)
    with pytest.raises(RuntimeError, match=r"index failed: ValueError: disk full$"):
        resolve_full(engine, S)
