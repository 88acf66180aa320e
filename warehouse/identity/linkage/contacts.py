"""Contact points as evidence: which mailboxes and phone numbers identify one person.

A role mailbox (``info@``, ``eigyo@``) or a company switchboard (代表) is shared by everyone
at a company, so agreeing on it says "same workplace", never "same person". Some are known by
their local part; the rest are found in the data: an address or number that several different
names use is shared, whatever it looks like. Mobile (070/080/090) and 050 numbers are
personal; a number written with an extension (内線) keeps its main number.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable

from rapidfuzz.distance import JaroWinkler

from warehouse.identity.keys.normalize import fold

ROLE_LOCAL_PARTS = frozenset(
    [
        "info",
        "information",
        "sales",
        "eigyo",
        "eigyou",
        "eigyoubu",
        "contact",
        "contactus",
        "support",
        "office",
        "admin",
        "administrator",
        "inquiry",
        "inquiries",
        "enquiry",
        "toiawase",
        "otoiawase",
        "soumu",
        "somu",
        "jinji",
        "keiri",
        "saiyo",
        "saiyou",
        "recruit",
        "recruiting",
        "pr",
        "press",
        "koho",
        "kouhou",
        "webmaster",
        "postmaster",
        "noreply",
        "no-reply",
        "donotreply",
        "mail",
        "staff",
        "team",
        "hello",
        "help",
        "service",
        "customer",
        "cs",
        "desk",
        "hr",
        "info-jp",
        "sales-jp",
        "shop",
        "order",
        "orders",
        "billing",
        "kaikei",
        "honsha",
        "uketsuke",
        "master",
        "web",
        "group",
        "all",
        "members",
    ]
)
_EXTENSION = re.compile(
    r"\s*[(（\[]?\s*(?:内線|内|ext\.?|extension|x)\s*[:：]?\s*\d{1,6}\s*[)）\]]?\s*$",
    re.IGNORECASE,
)
PERSONAL_PREFIXES = ("+8170", "+8180", "+8190", "+8150")


def strip_extension(number: str) -> str:
    """``03-1234-5678 (内線123)`` → ``03-1234-5678``: the main number is still the company's."""
    return _EXTENSION.sub("", fold(number))


def _role_pattern() -> re.Pattern[str]:
    # The whole local part is a role (``no-reply@``), or the part before its first
    # separator is one without separators of its own (``eigyo-bu@``, ``info.tokyo@``).
    whole = "|".join(sorted(map(re.escape, ROLE_LOCAL_PARTS), key=len, reverse=True))
    plain = "|".join(
        sorted(
            (re.escape(r) for r in ROLE_LOCAL_PARTS if not re.search(r"[._+\-]", r)),
            key=len,
            reverse=True,
        )
    )
    return re.compile(rf"(?:{whole})(?:@|\Z)|(?:{plain})[._+\-]")


_ROLE = _role_pattern()


_ROLE_STARTS = tuple(sorted(ROLE_LOCAL_PARTS))  # every role mailbox starts with one


def is_role_mailbox(address: str) -> bool:
    """A mailbox that names a function, not a person (``eigyo-bu@``, ``info.tokyo@``)."""
    low = address.lower()
    return low.startswith(_ROLE_STARTS) and _ROLE.match(low) is not None


def role_mailboxes(addresses: Iterable[str]) -> set[str]:
    """The role mailboxes among ``addresses`` (a million distinct addresses are asked:
    ``is_role_mailbox`` runs its regular expression only on the few that start as a
    role's name does)."""
    return {a for a in addresses if is_role_mailbox(a)}


def is_personal_phone(e164: str) -> bool:
    """Mobile and 050 IP numbers belong to a person; other Japanese numbers may be shared."""
    return e164.startswith(PERSONAL_PREFIXES)


def _close(x: str, y: str, wild: bool = True) -> bool:
    if wild and ("*" in (x, y)):
        return True
    return JaroWinkler.similarity(x, y) >= 0.85


def compatible(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Could two name readings be one person's? ('hanako' and 'sato hanako'; 'tanaka taro'
    and 'tanaka tarou'; 'taro tanaka' and 'tanaka taro'). ``*`` marks a name known only by
    a dictionary guess, which agrees with any."""
    if not a or not b or "*" in a or "*" in b:
        # A dictionary guess may misread the family name too (林学 read as one word,
        # りんがく): a guessed name never makes someone's own address look shared.
        return True
    if len(a) == 1 or len(b) == 1:
        one, other = (a, b) if len(a) == 1 else (b, a)
        return any(_close(one[0], y) for y in other)
    x0, x1, y0, y1 = a[0], "".join(a[1:]), b[0], "".join(b[1:])
    straight = _close(x0, y0) and _close(x1, y1)
    crossed = _close(x0, y1, wild=False) and _close(x1, y0, wild=False)
    return straight or crossed


def name_counts(pairs: Iterable[tuple[str, tuple[str, ...]]], upto: int) -> dict[str, int]:
    """Values (addresses or numbers) two or more mutually different names use, with how
    many, counted up to ``upto``: one pass answers "shared by two" and "shared by ``upto``"
    alike (the first two names it keeps are the ones a count up to two keeps).

    ``pairs`` are (value, name reading tokens) for every record; records without a name do
    not count, and names that could be one person's (a typo, a missing family name) count
    once, so one person's second row never makes their address look shared."""
    items = [(v, n) for v, n in pairs if v and n]
    # Most values belong to one record: only those seen twice or more need names compared.
    seen = Counter(v for v, _ in items)
    names: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for value, name in items:
        if seen[value] >= 2:
            got = names[value]
            if len(got) < upto and name not in got and all(not compatible(name, g) for g in got):
                got.append(name)
    return {v: len(n) for v, n in names.items() if len(n) >= 2}
