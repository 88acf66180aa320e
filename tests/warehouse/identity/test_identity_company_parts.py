"""Company names are read once and their parts kept: later runs take them from the store,
and what they take is what a reading gives."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from tests.warehouse.identity.linkage.test_bulk_paths import _rows
from tests.warehouse.identity.test_identity_index_writer import _index
from tests.warehouse.identity.test_identity_resolve import CRM, MAIL, S, _person, _put, _tanaka
from warehouse import records as r
from warehouse.identity import blocking
from warehouse.identity import schema as ids
from warehouse.identity.keys import matching as mt
from warehouse.identity.linkage import company_parts, features
from warehouse.identity.linkage import memo as memo_mod
from warehouse.identity.resolve import resolve_full, resolve_incremental
from warehouse.identity.upkeep import names as names_mod

NAMES = ["株式会社ABC", "ABC Co., Ltd.", "(株)ＡＢＣ", "足立区松本情報株式会社", "エービーシー商事"]


def _kept(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ids.IdentityCompanyName)).one()[0])


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every company name read from here on."""
    seen: list[str] = []
    real = mt.org_parts

    def counting(names: Any) -> list[tuple[str, str, str]]:
        names = list(names)
        seen.extend(n for n in names if n)
        return real(names)

    monkeypatch.setattr(mt, "org_parts", counting)
    return seen


def test_each_company_name_is_read_once_and_later_runs_take_its_stored_parts(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tanaka(engine)
    _put(engine, MAIL, _person("o1", full_name="鈴木 一郎", organization=r.OrgRef(name="XYZ")))
    reads = _reads(monkeypatch)
    resolve_full(engine, S)
    assert sorted(reads) == sorted({"株式会社ABC", "ABC Co., Ltd.", "(株)ＡＢＣ", "XYZ"})
    assert _kept(engine) == 4
    before = _index(engine)

    # A full run over the same people reads no company name: every one is stored.
    reads.clear()
    resolve_full(engine, S)
    assert reads == [] and _index(engine) == before

    # An incremental run reads only the name it has not seen, and keeps it too.
    _put(engine, CRM, _person("s8", full_name="佐藤 花子", organization=r.OrgRef(name="XYZ")))
    _put(engine, CRM, _person("s9", full_name="高橋 健", organization=r.OrgRef(name="株式会社QRS")))
    resolve_incremental(engine, S)
    assert reads == ["株式会社QRS"] and _kept(engine) == 5

    # The index is the one a run that reads every name again writes.
    after = _index(engine)
    with engine.begin() as conn:
        conn.execute(ids.IdentityCompanyName.__table__.delete())
        blocking.clear(conn, "person")
    reads.clear()
    resolve_full(engine, S)
    assert len(reads) == 5 and _index(engine) == after


def test_a_stored_part_is_the_reading_and_a_new_version_reads_names_again(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with engine.begin() as conn:
        company_parts.store(conn, list(zip(NAMES, mt.org_parts(NAMES), strict=True)))
        company_parts.store(conn, [(NAMES[0], ("other", "", ""))])  # the first stays
        look = company_parts.stored(conn)
        assert look([*NAMES, None, "", "unknown"]) == dict(
            zip(NAMES, mt.org_parts(NAMES), strict=True)
        )
        # A change to how parts are made (or a new dictionary) finds nothing stored.
        monkeypatch.setattr(company_parts, "VERSION", company_parts.VERSION + 1)
        company_parts._salt.cache_clear()
        try:
            assert company_parts.stored(conn)(NAMES) == {}
        finally:
            monkeypatch.undo()
            company_parts._salt.cache_clear()


@pytest.mark.parametrize("helper", [False, True])
def test_stored_and_read_parts_give_the_features_of_a_run_that_reads_them_all(
    monkeypatch: pytest.MonkeyPatch, helper: bool
) -> None:
    rows = _rows(240)
    whole = features.compute(rows, S).features()
    names = sorted({x[8] for x in rows if x[8]})
    want = dict(zip(names, mt.org_parts(names), strict=True))
    stored = {n: want[n] for n in names[::2]}
    asked: list[list[Any]] = []

    def known(new: Any) -> dict[str, tuple[str, str, str]]:
        asked.append(list(new))
        return {n: stored[n] for n in new if n in stored}

    if helper:  # the names not stored go to the second process
        monkeypatch.setattr(memo_mod, "PARALLEL_ROWS", 50)
        monkeypatch.setattr(memo_mod, "HELPER_BATCH", 1)
        monkeypatch.setenv("KIZUNA_IDENTITY_WORKERS", "2")
    reads = [] if helper else _reads(monkeypatch)  # (a pool is handed the function itself)
    memo = memo_mod.Memo(S)
    try:
        parts = [
            features.compute(rows[a : a + 70], S, memo, known=known) for a in range(0, 240, 70)
        ]
        assert (memo._pool is not None) == helper
    finally:
        memo.close()
    assert features.Columns.concat(parts).features() == whole
    read = memo.take_read()
    assert sorted(n for n, _ in read) == sorted(set(names) - set(stored))
    assert dict(read) == {n: want[n] for n in names if n not in stored}
    assert memo.take_read() == []  # each name handed over once
    if not helper:
        assert sorted(reads) == sorted(set(names) - set(stored))
    assert sorted(n for batch in asked for n in batch if n) == names


def test_a_run_finding_many_names_unread_reads_each_once_before_its_ranges(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tanaka(engine)
    _put(engine, MAIL, _person("o1", full_name="鈴木 一郎", organization=r.OrgRef(name="XYZ")))
    batches: list[list[str]] = []
    real = mt.org_parts

    def counting(names: Any) -> list[tuple[str, str, str]]:
        names = list(names)
        batches.append([n for n in names if n])
        return real(names)

    monkeypatch.setattr(mt, "org_parts", counting)
    monkeypatch.setattr(names_mod, "UP_FRONT", 10**9)  # read by the ranges as they meet them
    resolve_full(engine, S)
    read_by_ranges = _index(engine)
    with engine.begin() as conn:
        conn.execute(ids.IdentityCompanyName.__table__.delete())
        blocking.clear(conn, "person")
    batches.clear()

    monkeypatch.setattr(names_mod, "UP_FRONT", 2)
    resolve_full(engine, S)
    # Read before any range (whose feature pass then asks for none), in two halves: every
    # live company's name once (names equal to their domain are not read), and the same
    # index as names read by the ranges.
    read = [b for b in batches if b]
    assert len(read) == 2 and batches[:2] == read
    assert sorted(n for b in read for n in b) == sorted(
        {"株式会社ABC", "ABC Co., Ltd.", "(株)ＡＢＣ", "XYZ"}
    )
    assert _kept(engine) == 4 and _index(engine) == read_by_ranges
    batches.clear()
    assert names_mod.read_up_front(engine, fork=False) == 0 and not any(batches)


def test_names_read_up_front_are_split_with_a_forked_process(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for k, name in enumerate(NAMES):
        _put(engine, CRM, _person(f"n{k}", full_name="山田 太郎", organization=r.OrgRef(name=name)))
    log = tmp_path / "reads"
    real = mt.org_parts

    def logged(names: Any) -> list[tuple[str, str, str]]:
        names = list(names)
        with log.open("a") as f:  # the fork's own reads land here too
            f.writelines(f"{os.getpid()}\t{n}\n" for n in names)
        return real(names)

    monkeypatch.setattr(mt, "org_parts", logged)
    monkeypatch.setattr(names_mod, "UP_FRONT", 1)
    assert names_mod.read_up_front(engine, fork=True) == len(NAMES)
    reads = [line.split("\t") for line in log.read_text().splitlines()]
    assert len({pid for pid, _ in reads}) == 2  # half here, half in the fork
    assert sorted(n for _, n in reads) == sorted(NAMES)  # each name once
    with engine.connect() as conn:
        assert company_parts.stored(conn)(NAMES) == dict(zip(NAMES, real(NAMES), strict=True))


def test_a_forked_half_that_fails_stops_the_run_in_one_line_and_the_next_reads_the_rest(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, name in enumerate(NAMES):
        _put(engine, CRM, _person(f"n{k}", full_name="山田 太郎", organization=r.OrgRef(name=name)))
    here, real = os.getpid(), mt.org_parts

    def failing_in_the_fork(names: Any) -> list[tuple[str, str, str]]:
        if os.getpid() != here:
            raise ValueError("dictionary gone\nsecond line")
        return real(names)

    monkeypatch.setattr(mt, "org_parts", failing_in_the_fork)
    monkeypatch.setattr(names_mod, "UP_FRONT", 1)
    with pytest.raises(
        RuntimeError, match=r"^reading company names failed: ValueError: dictionary gone$"
    ):
        names_mod.read_up_front(engine, fork=True)
    # This process's half was read and kept; nothing is left running.
    with engine.connect() as conn:
        kept = set(company_parts.stored(conn)(NAMES))
    assert len(kept) == _kept(engine) == len(NAMES) // 2
    assert not multiprocessing.active_children()
    # The next run reads only the half that is missing.
    reads = _reads(monkeypatch)
    assert names_mod.read_up_front(engine, fork=False) == len(NAMES) - len(kept)
    assert sorted(reads) == sorted(set(NAMES) - kept) and _kept(engine) == len(NAMES)
