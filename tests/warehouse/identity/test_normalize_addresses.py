"""Mail addresses by the RFC 5322 rules (issue 16): quoted local parts kept or unquoted when
they are plain dot-atoms, a stray quote refused (it used to become a person), internationalised
domains stored as their A-label and shown as Unicode; every result a fixed point."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.identity.keys.normalize import display_email, normalize_domain, normalize_email


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ('"john.doe"@Example.JP', "john.doe@example.jp"),
        ('"sales team"@example.jp', '"sales team"@example.jp'),
        ('"a@b"@example.jp', '"a@b"@example.jp'),
        ('"a\\"b"@example.jp', '"a\\"b"@example.jp'),
        ('"a\\\\b"@example.jp', '"a\\\\b"@example.jp'),
        ('"a..b"@example.jp', '"a..b"@example.jp'),
        ("sato@例え.jp", "sato@xn--r8jz45g.jp"),
        ("sato@例え。jp", "sato@xn--r8jz45g.jp"),  # the ideographic full stop of a Japanese IME
        ("Sato@XN--R8JZ45G.JP", "sato@xn--r8jz45g.jp"),
        ("ｓａｔｏ＠ｅｘａｍｐｌｅ．ｊｐ", "sato@example.jp"),
        ("'sato@example.jp'", "sato@example.jp"),
        ('"sato@example.jp"', "sato@example.jp"),
        ("<mailto:Sato@Example.jp>", "sato@example.jp"),
        ("o'brien@example.jp", "o'brien@example.jp"),
    ],
)
def test_addresses_are_stored_in_one_spelling(raw: str, stored: str) -> None:
    assert normalize_email(raw) == stored
    assert normalize_email(stored) == stored


@pytest.mark.parametrize(
    "raw",
    [
        'john.doe"@example.jp',  # what a parser that drops the opening quote leaves
        '"unclosed@example.jp',
        '""@example.jp',
        '"a"b@example.jp',
        '"a\x01"@example.jp',
        "a b@example.jp",
        "sato@exa mple.jp",
        "sato@",
        "a@b.",
        "sato@xn--.jp\u200b",
    ],
)
def test_broken_addresses_are_none(raw: str) -> None:
    assert normalize_email(raw) is None


def test_u_label_shown_a_label_stored() -> None:
    assert display_email("sato@xn--r8jz45g.jp") == "sato@例え.jp"
    assert display_email('"sales team"@example.jp') == '"sales team"@example.jp'
    assert display_email("x@xn--broken-.jp") == "x@xn--broken-.jp"  # unreadable: as stored
    assert normalize_domain("https://www.例え.jp/about") == "xn--r8jz45g.jp"
    assert normalize_domain("例え.jp") == normalize_email("a@例え.jp").split("@")[1]  # type: ignore[union-attr]


@given(st.text(max_size=60))
def test_every_result_is_a_fixed_point(raw: str) -> None:
    n = normalize_email(raw)
    assert n is None or normalize_email(n) == n


@pytest.mark.parametrize(
    "raw",
    [
        '"' + "\\" * 200_000 + '"@example.jp',
        '"' + "a " * 100_000 + '"@example.jp',
        '"' + '\\"' * 100_000,
        "a@" + "例" * 100_000 + ".jp",
    ],
    ids=["escapes", "blanks", "unclosed", "long-idn"],
)
def test_hostile_addresses_are_linear(raw: str) -> None:
    normalize_email.cache_clear()
    started = time.perf_counter()
    normalize_email(raw)
    assert time.perf_counter() - started < 0.5
