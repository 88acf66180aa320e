"""適格請求書発行事業者登録番号: ``T`` + 13 digits, checked before it goes on a document.

For a corporation the 13 digits are its 法人番号, whose first digit is a check digit
``9 − (Σ P_n × Q_n mod 9)`` over the 12-digit base, ``P_n`` its n-th digit from the right and
``Q_n`` 1 for odd n, 2 for even n. Sole proprietors get 13 digits from the same scheme.
A typo caught here is a document that need not be re-issued.
"""

from __future__ import annotations

import re
import unicodedata

_SHAPE = re.compile(r"T\d{13}")


def check_digit(base12: str) -> int:
    """The check digit of a 12-digit 法人番号 base."""
    if not re.fullmatch(r"\d{12}", base12):
        raise ValueError(f"a 法人番号 base has 12 digits, not {base12!r}")
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(base12), start=1))
    return 9 - total % 9


def valid_corporate_number(digits: str) -> bool:
    return bool(re.fullmatch(r"\d{13}", digits)) and int(digits[0]) == check_digit(digits[1:])


def normalize(text: str) -> str:
    """``Ｔ1234-5678-9012-3`` → ``T1234567890123``: width, case, spaces and hyphens folded."""
    s = unicodedata.normalize("NFKC", text).upper()
    return re.sub(r"[\s\-‐−ー]", "", s)


def parse(text: str) -> str:
    """The registration number, normalised, or ValueError saying what is wrong with it."""
    s = normalize(text)
    if not _SHAPE.fullmatch(s):
        raise ValueError(
            f"{text!r} is not a registration number: write T followed by 13 digits "
            "(e.g. T1234567890123)"
        )
    if not valid_corporate_number(s[1:]):
        want = check_digit(s[2:])
        raise ValueError(
            f"{text!r} fails the check digit (the first digit after T should be {want}); "
            "copy it again from the 適格請求書発行事業者公表サイト"
        )
    return s
