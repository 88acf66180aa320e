"""The 消費税 arithmetic of a quote, as the インボイス制度 asks for it.

A qualified invoice (適格請求書) states, for each tax rate, the total of the lines at that rate
and the tax on that total, and rounds **once per rate per document** — never per line. So the
lines are summed per rate first (10% and the 8% 軽減税率 kept apart), then each rate's tax is
computed and rounded by the workspace's rounding mode.

Prices may be 税抜 or 税込 (a price list that quotes tax-included prices). A document whose
taxed lines are all 税込 is a 内税 document: per rate, the 税込 total is summed, the tax in it is
back-computed once (total × rate / (100 + rate), rounded), and the 税抜 対象額 is the total
minus that tax — the インボイス rule for tax-included documents. A document that mixes the two
is stated 税抜: each 税込 line's amount is converted to 税抜 (its price, rounded to yen like any
line amount), and the tax is then computed once per rate as above. Either way no line's tax is
rounded on its own.

Rounding modes act on the magnitude (a discount-heavy negative total rounds like its positive
twin): ``floor`` is 切り捨て (the default and the common choice), ``ceil`` is 切り上げ, and
``half_up`` is 四捨五入.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Literal

Rounding = Literal["floor", "ceil", "half_up"]
ROUNDING: dict[str, str] = {"floor": ROUND_DOWN, "ceil": ROUND_UP, "half_up": ROUND_HALF_UP}
RATES = (10, 8, 0)
"""The rates a line may carry: standard 10%, reduced 8% (軽減税率), 0 (非課税・不課税)."""
REDUCED = 8
YEN = Decimal(1)
SEN = Decimal("0.01")


@dataclass(frozen=True)
class Line:
    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: int
    unit: str | None = None
    product_code: str | None = None
    tax_included: bool = False
    """``unit_price`` is 税込."""


@dataclass(frozen=True)
class PricedLine:
    line: Line
    amount: Decimal
    """quantity × unit price in whole yen: 税込 in a 内税 document, else 税抜."""
    unit_price: Decimal
    """The unit price as the document states it (a 税込 price converted in a 税抜 document)."""


@dataclass(frozen=True)
class RateTotal:
    rate: int
    base: Decimal
    """Sum of the lines at this rate (対象額, 税抜)."""
    tax: Decimal
    gross: Decimal = Decimal(0)
    """対象額 税込 (base + tax): what a 内税 document states per rate."""

    @property
    def reduced(self) -> bool:
        return self.rate == REDUCED


@dataclass(frozen=True)
class Totals:
    lines: tuple[PricedLine, ...]
    by_rate: tuple[RateTotal, ...]
    """One entry per rate present, highest rate first (10%, then 8% ※, then 0%)."""
    subtotal: Decimal
    """小計, 税抜."""
    tax: Decimal
    total: Decimal
    tax_included: bool = False
    """A 内税 document: line amounts and per-rate totals are stated 税込."""


def round_yen(value: Decimal, mode: Rounding) -> Decimal:
    if mode not in ROUNDING:
        raise ValueError(f"unknown rounding {mode!r}; use one of {', '.join(ROUNDING)}")
    return value.quantize(YEN, rounding=ROUNDING[mode])


def check_rate(rate: int) -> int:
    if rate not in RATES:
        raise ValueError(f"tax rate {rate}% is not one of {', '.join(f'{r}%' for r in RATES)}")
    return rate


def compute(lines: Sequence[Line], rounding: Rounding = "floor") -> Totals:
    """Line amounts, per-rate bases and taxes, 小計, 消費税 and 合計 of one document.

    A line's amount is rounded to whole yen with the same mode (a fractional quantity such as
    1.5 hours × ¥3,333 does not leave sen on the page); the tax is rounded only per rate.
    """
    for ln in lines:
        check_rate(ln.tax_rate)
    taxed = [ln for ln in lines if ln.tax_rate]
    inclusive = bool(taxed) and all(ln.tax_included for ln in taxed)
    priced = tuple(_price(ln, inclusive, rounding) for ln in lines)
    sums: dict[int, Decimal] = {}
    for p in priced:
        sums[p.line.tax_rate] = sums.get(p.line.tax_rate, Decimal(0)) + p.amount
    by_rate = []
    for rate, amount in sorted(sums.items(), reverse=True):
        if inclusive:  # amount is 税込: the tax in it, back-computed once for the rate
            tax = round_yen(amount * rate / (100 + rate), rounding)
            by_rate.append(RateTotal(rate, amount - tax, tax, amount))
        else:
            tax = round_yen(amount * rate / 100, rounding)
            by_rate.append(RateTotal(rate, amount, tax, amount + tax))
    subtotal = sum((rt.base for rt in by_rate), Decimal(0))
    tax = sum((rt.tax for rt in by_rate), Decimal(0))
    return Totals(priced, tuple(by_rate), subtotal, tax, subtotal + tax, inclusive)


def _price(ln: Line, inclusive: bool, rounding: Rounding) -> PricedLine:
    unit = ln.unit_price
    if ln.tax_included and ln.tax_rate and not inclusive:
        # A 税込 price on a 税抜 document: the price restated without tax (a price, not a tax).
        unit = ln.unit_price * 100 / (100 + ln.tax_rate)
        return PricedLine(ln, round_yen(ln.quantity * unit, rounding), unit.quantize(SEN))
    return PricedLine(ln, round_yen(ln.quantity * unit, rounding), unit)


def yen(value: Decimal | int) -> str:
    """¥1,234,567 (negative as -¥1,234): the way amounts are printed on the document."""
    v = Decimal(value).quantize(YEN, rounding=ROUND_HALF_UP)
    sign = "-" if v < 0 else ""
    return f"{sign}¥{abs(int(v)):,}"


def parse_rate(text: str) -> int:
    """'10%', '８％', '0.08', '軽減', '標準', '非課税' → an integer percent among ``RATES``."""
    import unicodedata

    s = unicodedata.normalize("NFKC", str(text)).strip().replace(" ", "")
    words = {"軽減": 8, "軽減税率": 8, "標準": 10, "標準税率": 10, "非課税": 0, "不課税": 0}
    if s in words:
        return words[s]
    s = s.removesuffix("%").removesuffix("パーセント")
    try:
        d = Decimal(s)
    except ArithmeticError:
        raise ValueError(f"not a tax rate: {text!r} (write 10%, 8% or 0%)") from None
    if Decimal(0) < d < 1:
        d *= 100
    if d != d.to_integral_value() or int(d) not in RATES:
        raise ValueError(f"not a tax rate: {text!r} (write 10%, 8% or 0%)")
    return int(d)
