"""The indexed dictionary lookup reads every name exactly as pykakasi's own scan does."""

from __future__ import annotations

import subprocess
import sys

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


def test_the_dictionary_is_loaded_among_the_oldest_objects_and_the_collector_left_as_found() -> (
    None
):
    """In a fresh interpreter (the dictionary loads once a process): once loaded, none of
    its tables is left for young collections to walk, and the collector is on or off as
    the caller had it."""
    code = """
import gc
from pykakasi.kanji import Kanwa
from warehouse.identity.keys import dictionary
dictionary.kakasi()
assert gc.isenabled()
table = Kanwa._shared_state["_jisyo_table"]
young = {id(o) for g in (0, 1) for o in gc.get_objects(generation=g)}
assert id(table) not in young and not any(id(v) in young for v in table.values())
gc.disable()
dictionary.kakasi()
assert not gc.isenabled()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
