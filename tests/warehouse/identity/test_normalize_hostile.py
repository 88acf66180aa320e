"""Hostile input for the name normalisers (issue 16): a company name of 30,000 blanks took
minutes in the legal-suffix regex. Each case must finish in well under a second."""

from __future__ import annotations

import time

import pytest

from warehouse.identity.keys.normalize import normalize_org_name

HOSTILE = [
    " " * 30_000 + "x",
    ", " * 15_000 + "x",
    " " * 30_000 + "co., ltd.",
    "co" + " " * 30_000 + "x",
    "株式会社" + "\u3000" * 30_000 + "ABC",
]


@pytest.mark.parametrize("name", HOSTILE, ids=["blanks", "commas", "suffix", "co", "ideographic"])
def test_long_adversarial_names_are_linear(name: str) -> None:
    normalize_org_name.cache_clear()
    started = time.perf_counter()
    normalize_org_name(name)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ABC Co., Ltd.", "abc"),
        ("ABC Company Limited", "abc"),
        ("ABC Inc.", "abc"),
        ("ABC, Inc.  ", "abc"),
        ("(株)ABC", "abc"),
        ("Corporation", ""),
        ("Limitless Ltd", "limitless"),
    ],
)
def test_legal_suffixes_still_strip(name: str, expected: str) -> None:
    assert normalize_org_name(name) == expected
