"""The bulk shortcuts a million rows need give what the row-by-row forms give."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.linkage import features, guard, index
from warehouse.identity.linkage import memo as memo_mod
from warehouse.identity.linkage.contacts import is_role_mailbox
from warehouse.identity.linkage.frame import encode, encode_from


def test_components_label_each_row_with_the_smallest_row_it_reaches() -> None:
    i = np.array([5, 1, 3, 7], np.int64)
    j = np.array([6, 5, 4, 8], np.int64)
    got = guard.components(10, i, j)
    assert got.tolist() == [0, 1, 2, 3, 3, 1, 1, 7, 7, 9]


def test_codes_from_distinct_values_equal_codes_of_the_rows() -> None:
    rng = np.random.default_rng(3)
    values = ["", "b", "a", "b", "c", "", "d"]  # repeats and blanks, as groups carry them
    src = rng.integers(0, len(values), 200)
    col = np.asarray([values[k] for k in src.tolist()], dtype=object)
    want, got = encode(col), encode_from(values, src)
    assert got.values == want.values
    assert got.codes.tolist() == want.codes.tolist()


def test_role_mailboxes_by_whole_local_part_or_its_head() -> None:
    assert is_role_mailbox("info@x.co.jp") and is_role_mailbox("EIGYO-bu@x.jp")
    assert is_role_mailbox("info.tokyo@x.jp") and is_role_mailbox("no-reply@x.jp")
    assert is_role_mailbox("sales")  # no domain: the whole text is the local part
    # 'no-reply' is a role only whole: its head 'no' is nobody's role.
    assert not is_role_mailbox("no-reply.tokyo@x.jp")
    assert not is_role_mailbox("infox@x.jp") and not is_role_mailbox("t.sato@info.jp")


def _rows(n: int) -> list[features.Row]:
    """Person rows with repeats across any cut: shared names, companies, mailboxes."""
    fams = [("田中", "タナカ"), ("佐藤", "サトウ"), ("Smith", None), ("山本", None)]
    givs = [("太郎", "タロウ"), ("花子", "ハナコ"), ("John", None)]
    orgs = [
        "株式会社山本通信",
        "(株)ＡＢＣ商事",
        "ABC商事株式会社",
        None,
        "横浜市栄区水産 大阪支店",
    ]
    out: list[features.Row] = []
    for k in range(n):
        fam, fk = fams[k % 4]
        giv, gk = givs[k % 3]
        mails = (f"U{k % 7}.x+tag@Example.co.jp", "info@example.co.jp", f"p{k}@gmail.com")
        phones = ("03-1234-5678 (内線12)", f"090-0000-{k % 50:04d}", "０９０-１１１１-２２２２")
        out.append(
            (
                1000 + k,
                fam,
                giv,
                fk,
                gk,
                None,
                None,
                {"address": f"東京都港区{k % 5}-1", "postal_code": "105-0001"},
                orgs[k % 5],
                "1234567890123" if k % 5 == 0 else None,
                mails[: 1 + k % 3],
                phones[: k % 4],
            )
        )
    return out


def test_features_by_range_with_one_memo_equal_features_of_all_rows_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = _rows(240)
    settings = MatchSettings()
    whole = features.compute(rows, settings).features()
    # Ranges share one memo; company names go to the second process from the second range.
    monkeypatch.setattr(memo_mod, "PARALLEL_ROWS", 50)
    monkeypatch.setattr(memo_mod, "HELPER_BATCH", 1)
    monkeypatch.setenv("KIZUNA_IDENTITY_WORKERS", "2")
    memo = memo_mod.Memo(settings)
    try:
        parts = [features.compute(rows[a : a + 70], settings, memo) for a in range(0, 240, 70)]
        assert memo._pool is not None  # the second process did read companies
    finally:
        memo.close()
    cols = features.Columns.concat(parts)
    assert cols.features() == whole
    assert [cols.feature(k) for k in range(len(cols))] == whole
    picked = [5, 0, 239, 17]
    assert cols.take(picked).features() == [whole[k] for k in picked]
    assert features.Columns.of(whole).features() == whole


def test_ranges_of_two_memos_join_into_one_set_of_columns() -> None:
    """Ranges another process read (its own memo) join the run's: each value table added
    once, and an address or phone both hold is one value, so rows still share it."""
    rows = _rows(240)
    settings = MatchSettings()
    whole = features.Columns.concat([features.compute(rows, settings)])
    mine, theirs = memo_mod.Memo(settings), memo_mod.Memo(settings)
    parts = [
        features.compute(rows[a : a + 40], settings, mine if a < 120 else theirs)
        for a in range(0, 240, 40)
    ]
    cols = features.Columns.concat(parts)
    assert cols.features() == whole.features()
    for name in features.MULTI_FIELDS:
        rec, val, values = cols.exploded(name)
        assert len(values) == len(set(values)) == len(set(whole.exploded(name)[2]))
        shared = values.index("+81312345678" if name == "phones" else "info@example.co.jp")
        assert {int(r) for r in rec[val == shared]} & set(range(120))
        assert {int(r) for r in rec[val == shared]} & set(range(120, 240))
    # The single-valued tables: the run's once, the other memo's once.
    assert len(cols.source("org")[1]) == len(mine.values["org"]) + len(theirs.values["org"])


def test_keys_by_range_with_one_memo_and_one_keyed_equal_the_keys_of_all_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = _rows(240)
    settings = MatchSettings()
    whole = index.keys(features.compute(rows, settings))
    memo, keyed = memo_mod.Memo(settings), index.Keyed()
    hashed: list[int] = []
    real = index._hashed

    def counting(values: Any, fn: Any, distinct: bool = False) -> Any:
        hashed.append(len(values))
        return real(values, fn, distinct)

    monkeypatch.setattr(index, "_hashed", counting)
    made = []
    try:
        for a in range(0, 240, 70):
            cols = features.compute(rows[a : a + 70], settings, memo)
            made.append(index.keys(cols, ordered=False, keyed=keyed))
            if a == 0:
                first = sum(hashed)
    finally:
        memo.close()
    got = index.distinct(*(np.concatenate([m[k] for m in made]) for k in range(3)))
    for a, b in zip(got, whole, strict=True):
        assert a.tolist() == b.tolist()
    # Each range hashed only the values no earlier range had: all told, as many as keys
    # made once from the memo's whole tables hash (which the last range's columns share).
    ranged, hashed[:] = sum(hashed), []
    index.keys(cols)
    assert ranged == sum(hashed) and 0 < first < ranged
