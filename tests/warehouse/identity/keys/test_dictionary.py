"""The indexed dictionary lookup reads every name exactly as pykakasi's own scan does."""

from __future__ import annotations

import pykakasi

from warehouse.identity.keys import dictionary

TEXTS = [
    "田中太郎",
    "髙橋 健",
    "日の出町福田鉱業",
    "足立区松本情報",
    "渡邊",
    "くみ子",
    "東京都千代田区丸の内一丁目",
    "長谷川 博",
    "株式会社山田商事",
    "葛\U000e0100飾区",  # a variation selector: pykakasi's own path
    "〆切",
    "ＡＢＣ商事",
    "佐々木",
    "小鳥遊",
    "生きる",
]


def test_indexed_lookup_reads_like_pykakasi() -> None:
    mine = dictionary.kakasi()
    theirs = pykakasi.kakasi()  # type: ignore[no-untyped-call]
    assert type(mine._kakasi._jconv).__name__ == "Indexed"  # the fast path is in use
    for text in TEXTS:
        assert mine.convert(text) == theirs.convert(text), text
