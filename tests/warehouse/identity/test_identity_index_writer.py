"""A large full run writes its index from a second process: the same index, its errors raised."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from tests.warehouse.identity.linkage.test_japanese_evidence import _crowd, _f
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
from warehouse.identity import apart as apart_mod
from warehouse.identity import blocking, learned, resolve
from warehouse.identity import schema as ids
from warehouse.identity.linkage import key_table
from warehouse.identity.linkage.features import Columns
from warehouse.identity.resolve import resolve_full, resolve_incremental
from warehouse.identity.upkeep import spool


def _index(engine: Engine) -> dict[str, list[Any]]:
    """The person index and evidence a full run writes, in a fixed order."""
    m = ids.IdentityMatch
    with engine.connect() as conn:
        return {
            "features": conn.execute(
                select(
                    ids.IdentityFeature.record_id,
                    ids.IdentityFeature.data,
                    ids.IdentityFeature.fingerprint,
                )
                .where(ids.IdentityFeature.entity == "person")
                .order_by(ids.IdentityFeature.record_id)
            ).all(),
            "keys": _keys(conn),
            "matches": conn.execute(
                select(m.a_id, m.b_id, m.score, m.decision)
                .where(m.entity == "person")
                .order_by(m.a_id, m.b_id)
            ).all(),
            "members": sorted(_members(engine).items()),
        }


def _keys(conn: Connection) -> list[tuple[int, int]]:
    """The people's keys as the index holds them: ``identity_key`` with the keys renewed
    since the last full run (``identity_key_delta``) applied."""
    d = ids.IdentityKeyDelta
    held = key_table.stored_keys(conn, "person")
    keys = set(zip(held[0].tolist(), held[1].tolist(), strict=True))
    for digest, record_id, n in conn.execute(
        select(d.digest, d.record_id, d.n).where(d.entity == "person")
    ):
        assert (n > 0) != ((digest, record_id) in keys) or n == 0  # added: new; dropped: held
        if n > 0:
            keys.add((digest, record_id))
        elif n < 0:
            keys.discard((digest, record_id))
    return sorted(keys)


def _spooled(engine: Engine) -> int:
    """How many files with no name (unlinked, as a spool's) this process holds open where
    the run's spool goes (beside a SQLite database, else the temporary directory)."""
    root = spool._beside(engine) or tempfile.gettempdir()
    fds = Path("/proc/self/fd")
    held = [os.readlink(fd) for fd in fds.iterdir() if fd.is_symlink()]
    return sum(1 for t in held if t.startswith(root + "/") and t.endswith("(deleted)"))


def _spool_dir(engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, int]:
    """A temporary directory of the test's own, and how many unnamed files this process
    holds where the run's spool will go, before the run."""
    spools = tmp_path / "spools"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    return spools, _spooled(engine)


def _apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run large enough for its second processes, on two cores."""
    monkeypatch.setattr(apart_mod, "PARALLEL_ROWS", 1)
    monkeypatch.setenv("KIZUNA_IDENTITY_WORKERS", "2")


def _nothing_left(engine: Engine, spools: Path, unnamed: int) -> None:
    """No process of the run is left, and neither is any file of its spool."""
    assert not multiprocessing.active_children()
    assert not list(spools.iterdir()) and _spooled(engine) == unnamed


def _noting_pid(variable: str, work: Callable[..., Any]) -> Callable[..., Any]:
    """``work`` that first writes the id of the process running it to the file the
    environment variable names (set before the run forks)."""

    def noted(*args: Any, **kw: Any) -> Any:
        Path(os.environ[variable]).write_text(str(os.getpid()))
        return work(*args, **kw)

    return noted


def _companies(engine: Engine) -> dict[str, list[Any]]:
    """What the companies' resolution writes: their evidence and clusters."""
    m, c = ids.IdentityMatch, ids.IdentityMember
    with engine.connect() as conn:
        return {
            "matches": conn.execute(
                select(m.a_id, m.b_id, m.method, m.score, m.decision, m.fields)
                .where(m.entity == "organization")
                .order_by(m.a_id, m.b_id)
            ).all(),
            "members": conn.execute(
                select(c.record_id, c.cluster_id)
                .where(c.entity == "organization")
                .order_by(c.record_id)
            ).all(),
        }


def _failing_write(*args: Any, **kw: Any) -> int:
    raise ValueError("disk full\nsecond line")


_write_noting_pid = _noting_pid("KIZUNA_TEST_WRITER_PID", spool._write)
_companies_noting_pid = _noting_pid("KIZUNA_TEST_COMPANIES_PID", resolve._companies_full)


def test_a_large_run_writes_an_empty_index_from_a_second_process_with_the_same_result(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _tanaka(engine)
    _put(engine, MAIL, _person("o1", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"]))
    _put(engine, CARDS, _person("o2", full_name="鈴木 一郎", phones=["090-9999-0000"]))
    pid_file, org_pid = tmp_path / "writer.pid", tmp_path / "companies.pid"
    monkeypatch.setenv("KIZUNA_TEST_WRITER_PID", str(pid_file))
    monkeypatch.setenv("KIZUNA_TEST_COMPANIES_PID", str(org_pid))
    monkeypatch.setattr(spool, "_write", _write_noting_pid)
    monkeypatch.setattr(resolve, "_companies_full", _companies_noting_pid)
    stats = resolve_full(engine, S)  # below the row threshold: written here
    assert pid_file.read_text() == org_pid.read_text() == str(os.getpid())
    alone, orgs = _index(engine), _companies(engine)
    assert stats.keys == len(alone["keys"]) > 0 and alone["matches"]
    assert orgs["matches"] and stats.organizations["merges"] > 0

    _apart(monkeypatch)
    with engine.begin() as conn:
        blocking.clear(conn, "person")  # as a migration that changed the keys leaves it
    here, prepare, children, during = os.getpid(), resolve.prepare_range, [], []

    def noting_children(*args: Any) -> Any:
        if os.getpid() == here and not children:
            children.extend(p.pid for p in multiprocessing.active_children())
            during.append(_spooled(engine) - unnamed)
        return prepare(*args)

    monkeypatch.setattr(resolve, "prepare_range", noting_children)
    spools, unnamed = _spool_dir(engine, monkeypatch, tmp_path)
    apart = resolve_full(engine, S)
    # A forked writer wrote the index in full and another process resolved the companies.
    # The writer was forked before the first range was read (its heap is the run's before
    # the feature pass), and the files it wrote from are gone.
    assert str(os.getpid()) not in (pid_file.read_text(), org_pid.read_text())
    assert pid_file.read_text() != org_pid.read_text()
    assert int(pid_file.read_text()) in children
    assert during == [2]  # the spool's two files, open while the ranges were read
    assert not list(spools.iterdir()) and _spooled(engine) == unnamed
    assert _index(engine) == alone and apart.keys == stats.keys
    assert _companies(engine) == orgs  # (a rerun changes no cluster: that count differs)
    assert apart.organizations | {"clusters_changed": 0} == stats.organizations | {
        "clusters_changed": 0
    }
    # Over a stored index nothing is written in full: the ranges found nothing changed.
    pid_file.unlink()
    again = resolve_full(engine, S)
    assert not pid_file.exists() and again.keys == 0 and _index(engine) == alone
    # The next change is resolved incrementally from the index the writer left.
    _put(engine, CRM, _person("s9", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"]))
    assert resolve_incremental(engine, S).mode == "incremental"

    monkeypatch.setattr(spool, "_write", _failing_write)
    with engine.begin() as conn:
        blocking.clear(conn, "person")
    with pytest.raises(RuntimeError, match=r"index failed: ValueError: disk full$"):
        resolve_full(engine, S)
    monkeypatch.setattr(resolve, "_companies_full", _failing_write)
    with pytest.raises(RuntimeError, match=r"^resolving companies failed: ValueError: disk full$"):
        resolve_full(engine, S)


def _failing_prepare(*args: Any, **kw: Any) -> Any:
    raise ValueError("the feature pass broke")


def _slow_companies(*args: Any, **kw: Any) -> Any:
    time.sleep(1.0)  # still running when the feature pass fails, unless it is waited for
    return _companies_noting_pid(*args, **kw)


def test_a_run_that_fails_waits_for_its_companies_process_and_leaves_none_behind(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _tanaka(engine)
    org_pid = tmp_path / "companies.pid"
    monkeypatch.setenv("KIZUNA_TEST_COMPANIES_PID", str(org_pid))
    monkeypatch.setattr(resolve, "_companies_full", _slow_companies)
    _apart(monkeypatch)
    monkeypatch.setattr(resolve, "prepare_range", _failing_prepare)
    spools, unnamed = _spool_dir(engine, monkeypatch, tmp_path)
    with pytest.raises(ValueError, match="the feature pass broke"):
        resolve_full(engine, S)
    # The companies ran in another process, which had finished (and was reaped) by the
    # time the error reached the caller: nothing is left writing after the run, not the
    # index's writer either (forked as the run began, it was given nothing to write), and
    # the run's spool is gone.
    assert org_pid.read_text() != str(os.getpid())
    _nothing_left(engine, spools, unnamed)
    with engine.connect() as conn:
        orgs = conn.execute(
            select(ids.IdentityMember.record_id).where(ids.IdentityMember.entity == "organization")
        ).all()
    assert orgs  # its transaction committed: the companies are resolved


def _failing_scoring(*args: Any, **kw: Any) -> Any:
    raise ValueError("the scoring broke")


def test_a_run_that_fails_after_handing_its_rows_over_leaves_the_whole_index(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _tanaka(engine)
    resolve_full(engine, S)
    whole = _index(engine)
    with engine.begin() as conn:
        conn.execute(ids.IdentityKey.__table__.delete())  # as a migration that changed the keys
    _apart(monkeypatch)
    monkeypatch.setattr(learned, "score_columns", _failing_scoring)
    spools, unnamed = _spool_dir(engine, monkeypatch, tmp_path)
    with pytest.raises(ValueError, match="the scoring broke"):
        resolve_full(engine, S)
    # The ranges had spooled every row and its keys: the writer, handed them, wrote the
    # whole index (the same as a run that scores) and the run waited for it before it
    # stopped. Nothing is left running, and the spool is gone.
    assert _index(engine)["features"] == whole["features"] and whole["features"]
    assert _index(engine)["keys"] == whole["keys"] and whole["keys"]
    _nothing_left(engine, spools, unnamed)


def test_the_companies_process_reads_people_from_the_far_end_with_the_same_result(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rows = _tanaka(engine)
    _put(engine, MAIL, _person("o1", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"]))
    _put(engine, CARDS, _person("o2", full_name="鈴木 一郎", phones=["090-9999-0000"]))
    _put(engine, CRM, _person("s9", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"]))
    alone = resolve_full(engine, S)
    expected, orgs = _index(engine), _companies(engine)

    # One range per id; this process reads slowly, so the companies' process (done at
    # once) takes ranges from the far end. Who read which range is noted.
    monkeypatch.setattr(resolve, "id_ranges", lambda conn: blocking.id_ranges(conn, 1))
    here, noted = os.getpid(), tmp_path / "ranges"
    prepare = resolve.prepare_range

    def slow_here(conn: Any, settings: Any, lo: int, hi: int, *rest: Any) -> Any:
        if os.getpid() == here:
            time.sleep(0.4)
        with noted.open("a") as f:
            f.write(f"{os.getpid()} {lo}\n")
        return prepare(conn, settings, lo, hi, *rest)

    monkeypatch.setattr(resolve, "prepare_range", slow_here)
    _apart(monkeypatch)
    steps: list[str] = []
    apart = resolve_full(engine, S, step=steps.append)
    readers = [line.split() for line in noted.read_text().splitlines()]
    far = sorted(int(lo) for pid, lo in readers if int(pid) != here)
    assert far and far[-1] == max(int(lo) for _, lo in readers)  # from the far end
    assert sorted(int(lo) for _, lo in readers) == sorted(set(int(lo) for _, lo in readers))
    assert apart.records == alone.records == len(rows) + 3
    assert steps.count("prepare") == len(readers)  # every range counted, whoever read it
    assert _index(engine) == expected and _companies(engine) == orgs


def test_a_full_runs_decisions_carry_the_guards_refusal() -> None:
    # Two people of one kanji (サトウ タケシ, サトウ ケン) and a row that lists both their
    # mobiles: the guard refuses the link that would chain them.
    sato = {"family_name": "佐藤", "given_name": "健", "family_name_kana": "サトウ"}
    feats = [
        _f(1, sato | {"given_name_kana": "タケシ"}, phones=["090-1111-2222"]),
        _f(
            2,
            {"family_name": "佐藤", "given_name": "健"},
            phones=["090-1111-2222", "080-3333-4444"],
        ),
        _f(3, sato | {"given_name_kana": "ケン"}, phones=["080-3333-4444"]),
        *_crowd(),
    ]
    cols = Columns.of(feats)
    here = learned.score_columns(S, cols)[0]
    assert any("refused" in d.fields and d.decision == "review" for d in here)
