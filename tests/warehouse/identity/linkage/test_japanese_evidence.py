"""The evidence Japanese sales data needs, and clustering that does not chain."""

from __future__ import annotations

from typing import Any

import numpy as np

from warehouse.identity.keys.matching import MatchSettings, PersonFeatures, person_features
from warehouse.identity.keys.readings import fold_text, org_key, reading_tokens
from warehouse.identity.linkage import frame, guard, linker
from warehouse.identity.linkage.companies import corporate_number_ok, sound_key, strip_branch
from warehouse.identity.linkage.contacts import is_role_mailbox, strip_extension

S = MatchSettings()


def _f(k: int, row: dict[str, Any], emails=(), phones=(), org=None, corp=None) -> PersonFeatures:  # type: ignore[no-untyped-def]
    return person_features(k, row, list(emails), list(phones), org, S, corp)


def _link(feats: list[PersonFeatures]) -> tuple[np.ndarray, dict[int, str], linker.Scored]:  # type: ignore[type-arg]
    fr = frame.build(feats)
    model = linker.train(fr, S.link)
    sc = linker.score(fr, model, S.link)
    checks = guard.strong_checks(linker.disagreement_weights(model))
    labels, refused = guard.cluster(
        fr, sc.i, sc.j, sc.bits, sc.probability >= S.merge_threshold, checks
    )
    return labels, refused, sc


def test_kana_with_or_without_spaces_hiragana_and_half_width_read_alike() -> None:
    forms = ["タナカ タロウ", "たなか　たろう", "ﾀﾅｶ ﾀﾛｳ", "TANAKA Taro"]
    assert {reading_tokens(x) for x in forms} == {("tanaka", "taro")}
    glued = _f(1, {"family_name": "田中", "given_name": "太郎", "family_name_kana": "タナカタロウ"})
    assert glued.tokens == ("tanaka", "taro") and glued.trusted


def test_furigana_outranks_the_dictionary_guess() -> None:
    guessed = _f(1, {"family_name": "佐藤", "given_name": "健"})
    told = _f(
        2,
        {
            "family_name": "佐藤",
            "given_name": "健",
            "given_name_kana": "ケン",
            "family_name_kana": "サトウ",
        },
    )
    assert not guessed.trusted and told.trusted
    assert told.tokens == ("sato", "ken")


def test_variant_kanji_fold_and_extensions_keep_the_main_number() -> None:
    assert fold_text("髙橋 關 𠮷田 渡邉 齋藤") == fold_text("高橋 関 吉田 渡辺 斎藤")
    assert strip_extension("03-1234-5678（内線123）") == "03-1234-5678"
    f = _f(1, {"full_name": "x"}, phones=["03-1234-5678 内線45"])
    assert f.phones == ("+81312345678",)


def test_company_names_across_scripts_branches_and_the_corporate_number() -> None:
    assert sound_key(org_key("株式会社ネクストテック")) == sound_key(org_key("Next Tech Co., Ltd."))
    # English sounds katakana spells its own way: a silent r, a soft c, f as the h-row, a
    # voiced s (the romaji of ブルーオーシャン, フロンティア, サンライズ).
    for english, romaji in [
        ("Blue Ocean", "buruoosyan"),
        ("Frontier", "huronteia"),
        ("Sunrise 960", "sanraizu960"),
        ("Eco Link", "ekorinku"),
    ]:
        assert sound_key(english) == sound_key(romaji), english
    assert sound_key("Frontier") != sound_key("Sunrise")
    assert (
        org_key("ABC商事 名古屋営業所") == org_key("ABC商事大阪支店") == org_key("(株)ABC商事 本社")
    )
    assert strip_branch("Next Tech Co., Ltd. Osaka Branch") == "next tech co., ltd."
    assert corporate_number_ok("7000012050002") and not corporate_number_ok("7000012050003")


def _crowd(n: int = 60) -> list[PersonFeatures]:
    """Unrelated people, so the model has something to learn u from."""
    fams = ["山田", "佐々木", "松本", "井上", "木村", "林", "清水", "山口", "森", "池田"]
    kana_f = [
        "ヤマダ",
        "ササキ",
        "マツモト",
        "イノウエ",
        "キムラ",
        "ハヤシ",
        "シミズ",
        "ヤマグチ",
        "モリ",
        "イケダ",
    ]
    givs = ["一郎", "花子", "次郎", "陽子", "三郎", "直子"]
    kana_g = ["イチロウ", "ハナコ", "ジロウ", "ヨウコ", "サブロウ", "ナオコ"]
    out = []
    for k in range(n):
        a, b = k % len(fams), (k // len(fams)) % len(givs)
        out.append(
            _f(
                100 + k,
                {
                    "family_name": fams[a],
                    "given_name": givs[b],
                    "family_name_kana": kana_f[a],
                    "given_name_kana": kana_g[b],
                },
                emails=[f"p{k}@corp{k % 7}.co.jp"],
                phones=[f"090-0000-{k:04d}"],
                org=f"会社{k % 7}",
            )
        )
    return out


def test_same_kanji_with_different_readings_never_merge_even_on_one_switchboard() -> None:
    a = _f(
        1,
        {
            "family_name": "佐藤",
            "given_name": "健",
            "family_name_kana": "サトウ",
            "given_name_kana": "タケシ",
        },
        emails=["eigyo@abc.co.jp"],
        phones=["03-1111-2222"],
        org="株式会社ABC",
    )
    b = _f(
        2,
        {
            "family_name": "佐藤",
            "given_name": "健",
            "family_name_kana": "サトウ",
            "given_name_kana": "ケン",
        },
        emails=["eigyo@abc.co.jp"],
        phones=["03-1111-2222 内線9"],
        org="ABC株式会社",
    )
    labels, _, _ = _link([a, b, *_crowd()])
    assert labels[0] != labels[1]


def test_a_shared_team_mailbox_or_switchboard_alone_is_never_a_merge() -> None:
    a = _f(1, {"full_name": "山本 一郎"}, emails=["info@xyz.co.jp"], phones=["03-9999-0000"])
    b = _f(2, {"full_name": "中川 次郎"}, emails=["info@xyz.co.jp"], phones=["03-9999-0000"])
    c = _f(3, {"full_name": "石田 三郎"}, emails=["info@xyz.co.jp"], phones=["03-9999-0000"])
    assert is_role_mailbox("info@xyz.co.jp")
    labels, _, _ = _link([a, b, c, *_crowd()])
    assert len({labels[0], labels[1], labels[2]}) == 3


def test_a_job_changer_links_on_name_reading_and_mobile_and_keeps_both_employments() -> None:
    kana = {
        "family_name": "勅使河原",
        "given_name": "宏",
        "family_name_kana": "テシガハラ",
        "given_name_kana": "ヒロシ",
    }
    old = _f(
        1, kana, emails=["h.teshigahara@old.co.jp"], phones=["090-1234-5678"], org="旧社株式会社"
    )
    new = _f(2, kana, emails=["teshigahara@new.co.jp"], phones=["09012345678"], org="新社株式会社")
    labels, _, _ = _link([old, new, *_crowd()])
    assert labels[0] == labels[1]
    assert (old.org, new.org) == (org_key("旧社株式会社"), org_key("新社株式会社"))  # both kept


def test_company_twins_stay_apart() -> None:
    kana = {
        "family_name": "中村",
        "given_name": "太一",
        "family_name_kana": "ナカムラ",
        "given_name_kana": "タイチ",
    }
    a = _f(1, kana, emails=["t.nakamura@mirai-a.co.jp"], org="株式会社ミライ", corp="7000012050002")
    b = _f(2, kana, emails=["t.nakamura@mirai-b.co.jp"], org="ミライ合同会社", corp="1010001000006")
    fr = frame.build([a, b])
    from warehouse.identity.linkage.comparisons import org as org_level

    assert org_level(fr, np.array([0]), np.array([1]))[0] == 0  # twins: different companies
    labels, _, _ = _link([a, b, *_crowd()])
    assert labels[0] != labels[1]


def test_a_chain_joining_two_strongly_disagreeing_records_goes_to_review() -> None:
    # A (サトウ タケシ) and C (サトウ ケン) are two people with the same kanji; B has only the
    # kanji and lists both their mobiles: two strong links would chain A–B–C.
    a = _f(
        1,
        {
            "family_name": "佐藤",
            "given_name": "健",
            "family_name_kana": "サトウ",
            "given_name_kana": "タケシ",
        },
        phones=["090-1111-2222"],
    )
    b = _f(
        2, {"family_name": "佐藤", "given_name": "健"}, phones=["090-1111-2222", "080-3333-4444"]
    )
    c = _f(
        3,
        {
            "family_name": "佐藤",
            "given_name": "健",
            "family_name_kana": "サトウ",
            "given_name_kana": "ケン",
        },
        phones=["080-3333-4444"],
    )
    labels, refused, _ = _link([a, b, c, *_crowd()])
    assert labels[0] != labels[2]
    assert any(why.startswith("reading:") for why in refused.values())


def _chain(
    feats: list[PersonFeatures],
    pairs: list[tuple[int, int]] | None = None,
    bits: tuple[float, ...] = (10.0, 5.0),
) -> tuple[np.ndarray, dict[int, str]]:  # type: ignore[type-arg]
    """The guard alone, given strong links: by default the third row to each of the first two
    (a namesake pair the model would score apart is joined only through that row)."""
    fr = frame.build(feats)
    got = pairs or [(0, 2), (1, 2)]
    i = np.array([a for a, _ in got], np.int64)
    j = np.array([b for _, b in got], np.int64)
    return guard.cluster(fr, i, j, np.asarray(bits[: len(got)]), np.ones(len(got), bool))


_NAKAMURA = {
    "family_name": "中村",
    "given_name": "太一",
    "family_name_kana": "ナカムラ",
    "given_name_kana": "タイチ",
}


def test_a_row_naming_only_the_trade_name_never_joins_namesakes_at_two_companies() -> None:
    # Two 中村 太一 at two companies called ミライ (different 法人番号, domain, mobile); a
    # business card names only ミライ: it may attach to one of them, never join the two.
    a = _f(
        1,
        _NAKAMURA,
        emails=["t.nakamura@mirai-a.co.jp"],
        phones=["090-1000-0001"],
        org="株式会社ミライ",
        corp="7000012050002",
    )
    b = _f(
        2,
        _NAKAMURA,
        emails=["t.nakamura@mirai-b.co.jp"],
        phones=["090-2000-0002"],
        org="ミライ株式会社",
        corp="1010001000006",
    )
    card = _f(3, {**_NAKAMURA}, org="(株)ミライ 大阪支店")
    labels, refused = _chain([a, b, card])
    assert labels[0] != labels[1]
    assert list(refused.values()) == ["weak_link:corporate_number"]


def test_a_weak_link_never_joins_two_namesakes_with_their_own_mobiles_at_one_company() -> None:
    a = _f(
        1, _NAKAMURA, emails=["t.nakamura@abc.co.jp"], phones=["090-1000-0001"], org="ABC株式会社"
    )
    b = _f(
        2, _NAKAMURA, emails=["nakamura.t@abc.co.jp"], phones=["080-2000-0002"], org="ABC株式会社"
    )
    card = _f(3, {**_NAKAMURA}, org="(株)ABC")
    labels, refused = _chain([a, b, card])
    assert labels[0] != labels[1]
    assert list(refused.values()) == ["weak_link:own_contact"]


def test_a_job_changer_still_joins_both_companies_through_their_own_mobile() -> None:
    old = _f(1, _NAKAMURA, phones=["090-1000-0001"], org="株式会社ミライ", corp="7000012050002")
    new = _f(2, _NAKAMURA, phones=["090-1000-0001"], org="サンライズ株式会社", corp="1010001000006")
    card = _f(3, {**_NAKAMURA}, org="(株)ミライ")
    labels, refused = _chain([old, new, card], [(0, 1), (0, 2)])
    assert labels[0] == labels[1] == labels[2] and not refused


def test_a_row_fitting_two_people_equally_joins_neither_whatever_the_order() -> None:
    a = _f(1, _NAKAMURA, phones=["090-1000-0001"], org="ABC株式会社")
    b = _f(2, _NAKAMURA, phones=["080-2000-0002"], org="ABC株式会社")
    card = _f(3, {**_NAKAMURA}, org="(株)ABC")
    labels, refused = _chain([a, b, card], bits=(7.0, 7.0))
    assert len(set(labels.tolist())) == 3
    assert sorted(refused.values()) == ["ambiguous:weak_link:own_contact", "weak_link:own_contact"]
    # The same rows in the other order: still three people.
    labels, _ = _chain([b, a, card], bits=(7.0, 7.0))
    assert len(set(labels.tolist())) == 3


def test_a_weak_link_never_bridges_two_readings_of_one_kanji_even_one_kana_apart() -> None:
    hiroshi = {"family_name": "林", "given_name": "博", "family_name_kana": "ハヤシ"}
    a = _f(1, {**hiroshi, "given_name_kana": "ヒロシ"}, emails=["h1@abc.co.jp"], org="ABC株式会社")
    b = _f(
        2, {**hiroshi, "given_name_kana": "ヒロム"}, emails=["info@abc.co.jp"], org="ABC株式会社"
    )
    kanji_only = _f(3, {"full_name": "林博"}, emails=["h1@abc.co.jp"])
    labels, refused = _chain([a, b, kanji_only])
    assert labels[0] == labels[2] != labels[1]
    assert list(refused.values()) == ["weak_link:reading"]


def test_a_one_kana_slip_in_the_reading_is_a_disagreement_not_another_reading() -> None:
    from warehouse.identity.linkage.comparisons import names

    abe = {"family_name": "阿部", "given_name": "京助", "family_name_kana": "アベ"}
    a = _f(1, {**abe, "given_name_kana": "キョウスケ"}, phones=["080-1000-3388"])
    slip = _f(2, {**abe, "given_name_kana": "キウウスケ"}, phones=["080-1000-3388"])
    other = _f(
        3,
        {
            "family_name": "佐藤",
            "given_name": "健",
            "family_name_kana": "サトウ",
            "given_name_kana": "ケン",
        },
    )
    takeshi = _f(
        4,
        {
            "family_name": "佐藤",
            "given_name": "健",
            "family_name_kana": "サトウ",
            "given_name_kana": "タケシ",
        },
    )
    fr = frame.build([a, slip, other, takeshi])
    _, giv, _ = names(fr, np.array([0, 2]), np.array([1, 3]))
    # A slip disagrees ('else', learned: a shared mobile can still outweigh it); ケン/タケシ
    # is a conflict (a fixed veto).
    assert giv.tolist() == [1, 0]


def test_cp932_loses_the_kanji_but_the_whole_reading_still_agrees() -> None:
    from warehouse.identity.linkage.comparisons import names

    a = _f(
        1,
        {
            "family_name": "𠮷田",
            "given_name": "舞",
            "family_name_kana": "ヨシダ",
            "given_name_kana": "マイ",
        },
    )
    b = _f(2, {"family_name": "?田", "given_name": "舞", "family_name_kana": "ﾖｼﾀﾞﾏｲ"})
    fam, giv, _ = names(frame.build([a, b]), np.array([0]), np.array([1]))
    assert (fam.tolist(), giv.tolist()) == ([4], [4])


def test_branch_places_ship_with_the_package_and_need_no_faker(monkeypatch: Any) -> None:
    """The place names are package data: an install without the demo extra (no Faker)
    still cuts '八王子営業所' off a name, and a long name costs one tail search."""
    import sys

    from warehouse.identity.linkage import companies

    monkeypatch.setitem(sys.modules, "faker", None)  # importing it would fail
    companies._branch_tail.cache_clear()
    strip_branch.cache_clear()
    try:
        assert strip_branch("ABC商事八王子営業所") == "abc商事"
        assert strip_branch("ABC商事 札幌支店") == "abc商事"
        assert strip_branch("ABC商事八王子") == "abc商事八王子"  # no branch word: kept
        long = "株式会社" + "あ" * 100_000 + "大阪支店"
        assert strip_branch(long) == long[:-4].lower()
    finally:
        companies._branch_tail.cache_clear()
        strip_branch.cache_clear()
