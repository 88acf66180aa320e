"""適格請求書発行事業者登録番号: T + 13 digits with the 法人番号 check digit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.quotes.registration import check_digit, parse, valid_corporate_number


def test_a_real_number_passes() -> None:
    # 国税庁's own 法人番号 is 7000012050002.
    assert parse("T7000012050002") == "T7000012050002"


def test_width_hyphens_and_case_are_folded() -> None:
    assert parse("ｔ７０００ー0120-5000 2") == "T7000012050002"


def test_a_wrong_check_digit_names_the_right_one() -> None:
    with pytest.raises(ValueError, match="should be 7"):
        parse("T8000012050002")


@pytest.mark.parametrize(
    "text", ["7000012050002", "T700001205000", "T70000120500021", "TX000012050002"]
)
def test_a_wrong_shape_says_how_to_write_it(text: str) -> None:
    with pytest.raises(ValueError, match="T followed by 13 digits"):
        parse(text)


def test_check_digit_follows_the_published_formula() -> None:
    # 9 − (Σ P_n × Q_n mod 9), P_n the n-th digit from the right, Q_n = 1 odd / 2 even.
    base = "000012050002"
    total = sum(int(d) * (2 if n % 2 == 0 else 1) for n, d in enumerate(base[::-1], start=1))
    assert check_digit(base) == 9 - total % 9 == 7


@given(st.text("0123456789", min_size=12, max_size=12), st.integers(1, 8))
def test_exactly_one_leading_digit_is_valid(base: str, shift: int) -> None:
    good = check_digit(base)
    assert valid_corporate_number(f"{good}{base}")
    assert not valid_corporate_number(f"{(good + shift) % 10}{base}")
