"""消費税 per the インボイス制度: summed per rate, rounded once per rate per document."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.quotes.tax import Line, compute, parse_rate, round_yen, yen


def line(price: int | str, rate: int = 10, qty: int | str = 1) -> Line:
    return Line("x", Decimal(qty), Decimal(price), rate)


def test_mixed_rates_are_kept_apart() -> None:
    t = compute([line(300_000), line(1_080, 8, 7), line(50_000)])
    assert [(rt.rate, rt.base, rt.tax) for rt in t.by_rate] == [
        (10, Decimal(350_000), Decimal(35_000)),
        (8, Decimal(7_560), Decimal(604)),  # 604.8 floored
    ]
    assert t.by_rate[1].reduced and not t.by_rate[0].reduced
    assert (t.subtotal, t.tax, t.total) == (Decimal(357_560), Decimal(35_604), Decimal(393_164))


def test_tax_is_rounded_once_per_rate_not_per_line() -> None:
    # Per line: 10.5 → 10, three times = 30. Per document: 315 × 10% = 31.5 → 31.
    t = compute([line(105), line(105), line(105)])
    assert t.tax == Decimal(31)


@pytest.mark.parametrize(
    ("base", "mode", "tax"),
    [
        (105, "floor", 10),
        (105, "half_up", 11),
        (105, "ceil", 11),
        (104, "floor", 10),
        (104, "half_up", 10),
        (104, "ceil", 11),
        (100, "ceil", 10),
    ],
)
def test_rounding_modes(base: int, mode: str, tax: int) -> None:
    assert compute([line(base)], mode).tax == Decimal(tax)  # type: ignore[arg-type]


def test_unknown_rounding_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="floor, ceil, half_up"):
        round_yen(Decimal("1.5"), "bankers")  # type: ignore[arg-type]


def test_no_lines_gives_zero_totals() -> None:
    t = compute([])
    assert (t.lines, t.by_rate, t.subtotal, t.tax, t.total) == ((), (), 0, 0, 0)


def test_discount_lines_reduce_their_own_rate() -> None:
    t = compute([line(100_000), line(-15_000), line(2_000, 8), line(-500, 8)])
    assert [(rt.rate, rt.base, rt.tax) for rt in t.by_rate] == [
        (10, Decimal(85_000), Decimal(8_500)),
        (8, Decimal(1_500), Decimal(120)),
    ]
    assert t.total == Decimal(95_120)


def test_a_negative_total_rounds_like_its_positive_twin() -> None:
    t = compute([line(-105)])
    assert (t.subtotal, t.tax, t.total) == (Decimal(-105), Decimal(-10), Decimal(-115))


def test_fractional_quantities_give_whole_yen_lines() -> None:
    t = compute([line(12_345, qty="2.5")])
    assert t.lines[0].amount == Decimal(30_862)
    assert t.tax == Decimal(3_086)


def test_zero_rated_lines_carry_no_tax() -> None:
    t = compute([line(10_000, 0), line(1_000)])
    assert [(rt.rate, rt.tax) for rt in t.by_rate] == [(10, 100), (0, 0)]


def test_a_rate_outside_the_law_is_refused() -> None:
    with pytest.raises(ValueError, match="5%"):
        compute([line(100, 5)])


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10%", 10),
        ("８％", 8),
        ("0.08", 8),
        ("0.1", 10),
        ("軽減", 8),
        ("標準税率", 10),
        ("非課税", 0),
    ],
)
def test_parse_rate(text: str, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["5%", "abc", "10.5", ""])
def test_parse_rate_refuses_what_is_not_a_rate(text: str) -> None:
    with pytest.raises(ValueError, match="not a tax rate"):
        parse_rate(text)


def test_yen_formatting() -> None:
    assert yen(Decimal(1_234_567)) == "¥1,234,567"
    assert yen(0) == "¥0"
    assert yen(Decimal(-20_000)) == "-¥20,000"


amounts = st.lists(
    st.tuples(st.integers(-50_000, 500_000), st.sampled_from([10, 8, 0])), max_size=12
)


@given(amounts, st.sampled_from(["floor", "ceil", "half_up"]))
def test_totals_add_up_and_each_rate_is_rounded_once(
    items: list[tuple[int, int]], mode: str
) -> None:
    t = compute([line(p, r) for p, r in items], mode)  # type: ignore[arg-type]
    assert t.total == t.subtotal + t.tax == sum(p for p, _ in items) + t.tax
    for rt in t.by_rate:
        assert rt.base == sum(p for p, r in items if r == rt.rate)
        exact = rt.base * rt.rate / 100
        assert abs(rt.tax - exact) < 1  # one rounding per rate: never off by a yen or more
