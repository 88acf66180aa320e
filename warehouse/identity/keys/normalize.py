"""Keys used to recognise the same person or company across sources.

Pure functions; the identity resolver (later) builds on the same keys, so a person matched by
email at sync time and one matched by the resolver agree.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import idna
import phonenumbers

# 法人格 and their English equivalents, stripped only for comparison, never for display.
_LEGAL_FORMS = [
    "株式会社",
    "有限会社",
    "合同会社",
    "合資会社",
    "合名会社",
    "一般社団法人",
    "一般財団法人",
    "公益社団法人",
    "公益財団法人",
    "特定非営利活動法人",
    "npo法人",
    "医療法人",
    "学校法人",
    "社会福祉法人",
    "(株)",
    "(有)",
    "(合)",
    "㈱",
    "㈲",
]
# Matched only against the last few characters of a name (see ``_strip_legal_suffix_en``):
# a leading ``[\s,]*`` run searched over the whole name was quadratic on long blank runs.
_LEGAL_SUFFIX_EN = re.compile(
    r"(co\.?,?\s*ltd\.?|company\s+limited|corporation|corp\.?|inc\.?|incorporated|"
    r"llc|l\.l\.c\.|ltd\.?|limited|k\.k\.?|kk|gmbh|plc|co\.)$",
)
_SUFFIX_TAIL = 24  # longer than the longest suffix form above
_SCHEME = re.compile(r"^[a-z]+://")
_WHITESPACE = re.compile(r"\s")  # the characters str.isspace() accepts, in one C scan
_SPACE = re.compile(r"[\s\u3000・.,、。\-‐ー－]+")

FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.co.jp",
        "yahoo.com",
        "ymail.ne.jp",
        "hotmail.com",
        "hotmail.co.jp",
        "outlook.com",
        "outlook.jp",
        "live.jp",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "docomo.ne.jp",
        "ezweb.ne.jp",
        "au.com",
        "softbank.ne.jp",
        "i.softbank.jp",
        "nifty.com",
        "biglobe.ne.jp",
        "so-net.ne.jp",
        "ocn.ne.jp",
        "protonmail.com",
        "proton.me",
        "gmx.com",
        "mail.com",
        "zoho.com",
        "example.com",
    }
)


def fold(text: str) -> str:
    """NFKC-fold (full/half width, ㈱ → (株)) and lower-case, for comparison only."""
    if text.isascii():  # NFKC leaves ASCII as it is, and casefold is lower there
        return text.lower().strip()
    return unicodedata.normalize("NFKC", text).casefold().strip()


@lru_cache(maxsize=16384)
def normalize_email(address: str) -> str | None:
    """Return the comparable form of an address, or None when it is not an address.

    Case-folds the whole address (real servers treat the local part case-insensitively) and
    folds full-width characters typed on Japanese keyboards. Parsed by the RFC 5322 rules a
    mail header uses: a quoted local part (``"sales team"@x.jp``) stays quoted, unless its
    content is a plain dot-atom (``"john.doe"@x.jp`` is ``john.doe@x.jp``); a local part with
    a stray quote (what a broken parser leaves) is no address. An internationalised domain is
    stored as its A-label (``例え.jp`` → ``xn--r8jz45g.jp``, the form DNS and every mail
    server compare); :func:`display_email` gives the U-label back for people. Cached: one
    address is checked by the mapping, the record's validator and the store in turn.
    """
    a = fold(address).strip("<> \t")
    if a.startswith("mailto:"):
        a = a[7:]
    if len(a) > 2 and a[0] == a[-1] and a[0] in "\"'" and a.count(a[0]) == 2:
        a = a[1:-1].strip()  # the whole address quoted, as spreadsheet cells often are
    elif not a.startswith('"'):
        a = a.strip("'")
    if a.startswith('"'):
        split = _quoted_local(a)
        if split is None:
            return None
        local, domain = split
    else:
        if a.count("@") != 1 or '"' in a or _WHITESPACE.search(a):
            return None
        local, domain = a.split("@")
    host = _ascii_domain(domain.rstrip("."))
    # "a@b." would otherwise pass the dot test and come out as "a@b", which fails it.
    if not local or host is None or "." not in host or host.startswith("."):
        return None
    return f"{local}@{host}"


_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~")


def _quoted_local(a: str) -> tuple[str, str] | None:
    """``"a b"@x.jp`` → (``"a b"``, ``x.jp``): the quoted string read with its escapes, then
    written back in one canonical spelling (bare when it is a dot-atom)."""
    out: list[str] = []
    i = 1
    while i < len(a):
        c = a[i]
        if c == "\\" and i + 1 < len(a):
            out.append(a[i + 1])
            i += 2
            continue
        if c == '"':
            break
        out.append(c)
        i += 1
    else:
        return None  # never closed
    rest = a[i + 1 :]
    if not rest.startswith("@") or rest.count("@") != 1 or _WHITESPACE.search(rest):
        return None
    text = "".join(out)
    if not text or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return None
    atoms = text.split(".")
    if all(atoms) and all(ch in _ATEXT or ord(ch) > 127 for ch in text.replace(".", "")):
        return text, rest[1:]
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"', rest[1:]


def _ascii_domain(domain: str) -> str | None:
    """A domain in its A-label form (``xn--…``); None when it cannot be one."""
    if domain.isascii():
        return domain if domain and not _WHITESPACE.search(domain) else None
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def display_email(address: str) -> str:
    """An address as a person reads it: ``xn--`` labels of its domain shown as Unicode."""
    local, at, domain = address.rpartition("@")
    if not at or "xn--" not in domain:
        return address
    try:
        return f"{local}@{idna.decode(domain)}"
    except (idna.IDNAError, UnicodeError, ValueError):
        return address


def email_domain(address: str) -> str | None:
    """The company domain an address points to, or None for free-mail and invalid ones."""
    n = normalize_email(address)
    if n is None:
        return None
    domain = n.split("@", 1)[1]
    return None if domain in FREE_MAIL_DOMAINS else domain


@lru_cache(maxsize=65536)
def normalize_domain(domain: str) -> str | None:
    """``https://www.ABC.co.jp/about`` → ``abc.co.jp``; free-mail domains give None.

    Cached: an export repeats each company's site on every row of its contacts.
    """
    d = fold(domain)
    d = _SCHEME.sub("", d).split("/", 1)[0].split("@")[-1]
    d = d.removeprefix("www.").rstrip(".")
    if not d or "." not in d:
        return None
    ascii_d = _ascii_domain(d)  # 例え.jp → xn--r8jz45g.jp, as mail addresses store it
    if ascii_d is None or ascii_d in FREE_MAIL_DOMAINS:
        return None
    return ascii_d


@lru_cache(maxsize=65536)
def normalize_org_name(name: str) -> str:
    """株式会社ＡＢＣ, (株)ABC and ABC Co., Ltd. all give ``abc``."""
    n = fold(name)
    for form in _LEGAL_FORMS:
        n = n.replace(form, " ")
    n = _strip_legal_suffix_en(n)
    return _SPACE.sub("", n)


def _rstrip_blank_commas(text: str) -> str:
    end = len(text)
    while end and (text[end - 1].isspace() or text[end - 1] == ","):
        end -= 1
    return text[:end]


def _strip_legal_suffix_en(name: str) -> str:
    """``abc co., ltd.`` → ``abc``; linear in the name's length whatever it holds."""
    n = _rstrip_blank_commas(name)
    cut = max(len(n) - _SUFFIX_TAIL, 0)
    m = _LEGAL_SUFFIX_EN.search(n, cut)
    if m is None:
        return name
    return _rstrip_blank_commas(n[: m.start()])


_JP_PLAIN = re.compile(r"(?:\+81|0)([1-9]\d{8,9})")
_JP_SEPARATORS = re.compile(r"[\s\-()./]+")


@lru_cache(maxsize=262144)
def normalize_phone(number: str, region: str = "JP") -> str | None:
    """E.164 form, or None when the number cannot be a phone number in ``region``.

    A plain Japanese number (0 or +81, then 9–10 digits, with the usual separators) takes a
    fast path that gives what ``phonenumbers`` gives for it at a fiftieth of the cost: a
    million-row resolution parses a million phones.
    """
    raw = fold(number)
    if not raw:
        return None
    if region.upper() == "JP":
        plain = _JP_PLAIN.fullmatch(_JP_SEPARATORS.sub("", raw))
        if plain is not None:
            return "+81" + plain.group(1)
    try:
        parsed = phonenumbers.parse(raw, region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
