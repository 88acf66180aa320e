"""Parsing the cell values Japanese and English exports actually contain.

Dates (2026/01/05, 2026-01-05, 2026年1月5日, 令和8年1月5日, R8.1.5, Excel serials), amounts
(¥1,200,000, 1,200,000円, 120万円, full-width digits, △ for minus), percentages, genders and
names. Every parser returns None for an empty cell and raises ``ValueError`` with a short
reason for a value it cannot read; the mapping turns that into a ``BadRecord`` naming the
column.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from warehouse.records import DealStatus

_ERAS = {
    "明治": 1868,
    "大正": 1912,
    "昭和": 1926,
    "平成": 1989,
    "令和": 2019,
    "m": 1868,
    "t": 1912,
    "s": 1926,
    "h": 1989,
    "r": 2019,
}
_ERA = re.compile(
    r"^(明治|大正|昭和|平成|令和|[mtshr])\s*(元|\d{1,2})\s*[年./-]\s*(\d{1,2})\s*[月./-]\s*(\d{1,2})\s*日?$"
)
_YMD = re.compile(r"^(\d{4})\s*[年/.-]\s*(\d{1,2})\s*[月/.-]\s*(\d{1,2})\s*日?(?:[ t].*)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SERIAL = re.compile(r"^\d{1,6}(?:\.\d+)?$")
_EXCEL_EPOCH = date(1899, 12, 30)
_AMOUNT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_UNITS = {"億": Decimal(100_000_000), "万": Decimal(10_000), "千": Decimal(1000)}
_CURRENCY_MARKS = {"¥": "JPY", "円": "JPY", "jpy": "JPY", "$": "USD", "usd": "USD", "€": "EUR"}


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def parse_date(text: str) -> date | None:
    """A calendar date from the forms Japanese and English exports use."""
    s = nfkc(text).lower()
    if not s:
        return None
    try:
        if m := _YMD.match(s):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _ERA.match(s):
            year = 1 if m[2] == "元" else int(m[2])
            return date(_ERAS[m[1]] + year - 1, int(m[3]), int(m[4]))
        if m := _COMPACT.match(s):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if _SERIAL.match(s):
            serial = float(s)
            if 1 <= serial < 2958466:  # Excel's own range: 1900-01-01 .. 9999-12-31
                return _EXCEL_EPOCH + timedelta(days=int(serial))
    except ValueError:
        raise ValueError(f"no such date: {text!r}") from None
    raise ValueError(f"not a date: {text!r}")


def parse_amount(text: str) -> tuple[Decimal, str | None] | None:
    """An amount and the currency its marks name (None when unmarked)."""
    s = nfkc(text).lower()
    if not s:
        return None
    currency = None
    for mark, code in _CURRENCY_MARKS.items():
        if mark in s:
            currency = code
            s = s.replace(mark, "")
    negative = s.startswith(("△", "▲"))
    if negative:
        s = s[1:]
    s = s.replace(",", "").replace(" ", "")
    unit = Decimal(1)
    if s and s[-1] in _UNITS:
        unit = _UNITS[s[-1]]
        s = s[:-1]
    if not _AMOUNT.match(s):
        raise ValueError(f"not an amount: {text!r}")
    try:
        value = Decimal(s) * unit
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    return (-value if negative else value), currency


def parse_percent(text: str) -> float | None:
    """80, 80%, ８０％ → 80.0; 0.8 → 80.0 (a fraction written as one)."""
    s = nfkc(text).replace("%", "").strip()
    if not s:
        return None
    try:
        v = float(s)
    except ValueError:
        raise ValueError(f"not a percentage: {text!r}") from None
    if 0 < v <= 1 and "." in s:
        v *= 100
    if not 0 <= v <= 100:
        raise ValueError(f"not a percentage between 0 and 100: {text!r}")
    return v


_GENDER = {
    "男": "male",
    "男性": "male",
    "m": "male",
    "male": "male",
    "女": "female",
    "女性": "female",
    "f": "female",
    "female": "female",
}


def parse_gender(text: str) -> str | None:
    s = nfkc(text).casefold()
    return _GENDER.get(s, s) if s else None


_SPLIT = re.compile(r"[\s\u3000]+")


def split_name(text: str) -> tuple[str | None, str | None]:
    """(family, given): 田中 太郎 / 田中　太郎 family first; 'John Smith' given first.

    A name without a separator is kept whole as the family name only when it is Japanese;
    otherwise neither part is guessed.
    """
    parts = _SPLIT.split(text.strip())
    if len(parts) < 2:
        return None, None
    if parts[0].isascii():
        return parts[-1], " ".join(parts[:-1])
    return parts[0], " ".join(parts[1:])


def kana(text: str) -> str:
    """Half-width katakana (ﾀﾅｶ) folded to full width (タナカ); spaces kept as one."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


_WON = {"受注", "成約", "契約", "受注済", "契約済", "closed won", "closedwon", "won"}
_LOST = {"失注", "見送り", "不採用", "closed lost", "closedlost", "lost"}


def deal_status(stage: str | None) -> DealStatus:
    if not stage:
        return "open"
    s = nfkc(stage).casefold()
    if s in _WON:
        return "won"
    if s in _LOST:
        return "lost"
    return "open"
