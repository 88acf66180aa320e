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
