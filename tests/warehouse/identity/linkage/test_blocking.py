"""Blocking: integer keys, one comparison per pair, and block bounds a rule can tighten."""

from __future__ import annotations

import numpy as np
import pytest

from warehouse.identity.keys.matching import PersonFeatures
from warehouse.identity.linkage import blocking_rules as br
from warehouse.identity.linkage import comparisons as cmp
from warehouse.identity.linkage import frame


def _people(n: int, address: str) -> list[PersonFeatures]:
    return [
        PersonFeatures(k, name=f"n{k}", tokens=(f"fam{k}", f"giv{k}"), address=address)
        for k in range(n)
    ]


def test_a_cap_term_skips_only_that_rules_larger_blocks_and_counts_them() -> None:
    fr = frame.build(_people(12, "tokyo chiyoda 1-1") + _people(3, "osaka kita 2-2"))
    rule = br.parse(["address:12", "cap:8"])
    assert br.columns(rule) == {"address"}
    i, _, big = br.pairs(fr, rule, max_block=100)
    # the office of twelve is skipped and counted; the three at one home are compared
    assert big == 1 and i.shape[0] == 3
    i2, _, big2 = br.pairs(fr, ("address:12",), max_block=100)
    assert big2 == 0 and i2.shape[0] == 12 * 11 // 2 + 3


@pytest.mark.parametrize("rule", [["cap:8"], ["address", "cap:1"], ["cap:x", "dob"]])
def test_bad_rules_name_the_fix(rule: list[str]) -> None:
    with pytest.raises(ValueError, match=r"blocking|column"):
        br.parse(rule)


def test_union_finds_each_pair_once_and_levels_match_string_comparison() -> None:
    feats = [
        PersonFeatures(0, name="tanakataro", tokens=("tanaka", "taro"), dob="19800102"),
        PersonFeatures(1, name="tanakataro", tokens=("tanaka", "tarou"), dob="19800102"),
        PersonFeatures(2, name="tarotanaka", tokens=("taro", "tanaka"), dob="19800201"),
        PersonFeatures(3, name="satohanako", tokens=("sato", "hanako"), dob="19800102"),
    ]
    fr = frame.build(feats)
    i, j, _ = br.union(fr, [("dob",), ("dob",), ("nameset",)], 100)
    codes = (i * 4 + j).tolist()
    assert codes == sorted(set(codes)) and (0 * 4 + 1) in codes
    lv = cmp.levels(fr, np.array([0, 0, 0]), np.array([1, 2, 3]))
    fam = [c.name for c in cmp.PERSON].index("family")
    giv = fam + 1
    dob = [c.name for c in cmp.PERSON].index("dob")
    # taro/tarou is near (jw ≥ 0.92), the reversed name is matched crossed, sato differs
    assert lv[:, fam].tolist() == [4, 4, 1]
    assert lv[0, giv] == 3 and lv[1, giv] == 4
    # 19800201 is 19800102 with day and month swapped: one_edit level; same date: exact
    assert lv[0, dob] == 3 and lv[1, dob] == 2 and lv[2, dob] == 3


def _crowd(n: int) -> list[PersonFeatures]:
    """People sharing names, birth dates, companies and mail in overlapping ways."""
    fams, givs = ["tanaka", "sato", "suzuki", "takahashi"], ["taro", "hanako", "ichiro"]
    return [
        PersonFeatures(
            k,
            name=f"{fams[k % 4]}{givs[k % 3]}",
            tokens=(fams[k % 4], givs[k % 3] + ("u" if k % 5 == 0 else "")),
            dob=f"1980{1 + k % 12:02d}{1 + k % 7:02d}",
            org=f"org{k % 6}",
            emails=(f"{fams[k % 4]}.{k % 9}@example{k % 2}.co.jp",),
            postcode=f"10{k % 11:05d}",
        )
        for k in range(n)
    ]


def test_rules_paired_and_levels_compared_two_at_a_time_give_what_one_at_a_time_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a second core the rules are paired and the slices of pairs compared in two
    threads: the pairs, the skipped blocks and the levels are the same, in the same order."""
    import threading

    rules = list(br.DEFAULT_RULES)
    seen: set[str] = set()
    each = br.pairs

    def spy(*args: object, **kw: object) -> tuple[np.ndarray, np.ndarray, int]:
        seen.add(threading.current_thread().name)
        return each(*args, **kw)  # type: ignore[arg-type]

    compare = cmp._levels

    def spy_levels(*args: object) -> np.ndarray:
        seen.add(threading.current_thread().name)
        return compare(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(br, "pairs", spy)
    monkeypatch.setattr(cmp, "_levels", spy_levels)
    monkeypatch.setattr(br, "THREAD_ROWS", 1)
    monkeypatch.setattr(cmp, "PAIRS_AT_ONCE", 97)
    got: dict[str, tuple[np.ndarray, np.ndarray, int, np.ndarray]] = {}
    for n in ("1", "2"):
        monkeypatch.setenv("KIZUNA_IDENTITY_WORKERS", n)
        fr = frame.build(_crowd(300))  # a fresh frame: nothing coded yet
        i, j, big = br.union(fr, rules, 40)
        got[n] = (i, j, big, cmp.levels(fr, i, j))
    assert got["1"][0].shape[0] > 5 * 97 and got["1"][2] > 0  # several slices, some skipped
    (i1, j1, big1, lv1), (i2, j2, big2, lv2) = got["1"], got["2"]
    assert np.array_equal(i1, i2) and np.array_equal(j1, j2) and big1 == big2
    assert np.array_equal(lv1, lv2)
    # the threads did run
    assert any(name.startswith("identity-pairs") for name in seen)
    assert any(name.startswith("identity-levels") for name in seen)
