"""Readings and comparable keys for names, companies and addresses (pure, no I/O).

Why readings: the same 田中 太郎 arrives as kanji from one source, ﾀﾅｶ ﾀﾛｳ from another and
``TANAKA Taro`` from a business-card export. Every name is brought to one phonetic romaji
form (kana and kanji through pykakasi's dictionary, long vowels, width and Hepburn/kunrei
spellings folded) so the three compare equal.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from warehouse.identity.keys import dictionary
from warehouse.identity.keys.normalize import FREE_MAIL_DOMAINS, fold, normalize_org_name
from warehouse.identity.linkage.companies import strip_branch
from warehouse.identity.linkage.variants import fold_variants

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f々〆ヶ]")
_NOT_ALPHA = re.compile(r"[^a-z]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_KANA_ONLY = re.compile(r"[\u3040-\u30ffー]+")
_JAPANESE_RUN = re.compile(r"([\u3040-\u30ffー]+|[\u3400-\u9fff々〆ヶ]+)")
_SPLIT = re.compile(r"[\s\u3000,、・/()（）]+")
_DIGITS = re.compile(r"\D+")
# Long vowels and nasal spellings that romanisation styles disagree on (Tarō/Tarou/Taro,
# Namba/Nanba, Ohno/Ono): folded one way for comparison.
_PHONETIC = [
    # Hepburn and kunrei spellings of one sound (Mitsuru/Mituru, Shohei/Syohei).
    ("shi", "si"),
    ("chi", "ti"),
    ("tsu", "tu"),
    ("fu", "hu"),
    ("ji", "zi"),
    ("sh", "sy"),
    ("ch", "ty"),
    ("j", "zy"),
    ("ou", "o"),
    ("oo", "o"),
    ("oh", "o"),
    ("uu", "u"),
    ("aa", "a"),
    ("ii", "i"),
    ("ee", "e"),
    ("mb", "nb"),
    ("mp", "np"),
    ("mm", "nm"),
]
# Gmail ignores dots in the local part; these providers drop everything after a '+'.
_DOT_BLIND = frozenset({"gmail.com", "googlemail.com"})
_PLUS_TAG = frozenset(
    {"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "icloud.com"}
)
_GENERIC_LOCAL = frozenset(
    {"info", "sales", "contact", "support", "admin", "office", "mail", "eigyo", "soumu", "hr"}
)


@lru_cache(maxsize=1)
def _kakasi() -> Any:
    return dictionary.kakasi()


@lru_cache(maxsize=65536)
def fold_text(text: str | None) -> str:
    """NFKC, case and variant kanji folded; katakana folded to hiragana; for comparison only."""
    if not text:
        return ""
    s = fold_variants(fold(text))
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in s)


def phonetic(token: str, keep_digits: bool = False) -> str:
    """A romaji token with diacritics, long vowels and nasal spellings folded."""
    s = unicodedata.normalize("NFKD", token.lower())
    s = (_NOT_ALNUM if keep_digits else _NOT_ALPHA).sub("", s)
    for a, b in _PHONETIC:
        s = s.replace(a, b)
    return s


@lru_cache(maxsize=262144)
def reading_tokens(text: str) -> tuple[str, ...]:
    """Phonetic romaji tokens of a name in any script: 田中太郎 → ('tanaka', 'taro')."""
    out: list[str] = []
    for part in _SPLIT.split(fold_text(text)):
        if part:
            out.extend(_part_tokens(part))
    return tuple(out)


@lru_cache(maxsize=262144)
def _part_tokens(part: str) -> tuple[str, ...]:
    """Tokens of one space-free part, kept per part: a million names are a few thousand
    family and given names, each read once."""
    if not _JAPANESE.search(part):
        tok = phonetic(part)
        return (tok,) if tok else ()
    out: list[str] = []
    for item in _kakasi().convert(part):
        tok = phonetic(item["hepburn"] or "")
        if tok and out and len(tok) <= 2:
            out[-1] += tok  # くみ子 → kumi + ko: one name split at a script change
        elif tok:
            out.append(tok)
    return tuple(out)


# Abbreviated 法人格 the write-time normaliser leaves in place.
_MORE_LEGAL = re.compile(
    r"\((同|資|名|一社|一財|公社|公財|医|学|福|特非|npo)\)|(llc|gk|kk|yk|y\.k\.|g\.k\.)$"
)


@lru_cache(maxsize=262144)
def org_written(name: str) -> str:
    """The company name as written, without 法人格 or branch (日の出町福田鉱業): what a
    dictionary reads whole, so 日の出 is ひので and not 日 + の + 出."""
    return _MORE_LEGAL.sub("", normalize_org_name(strip_branch(name)))


@lru_cache(maxsize=262144)
def org_key(name: str) -> str:
    """One comparable form of a company name: 法人格 in any spelling and the branch or office
    (大阪支店, 本社) dropped, width and
    case folded, kana and Latin letters as phonetic romaji (エービーシー and ABC both read
    as letters), kanji kept as written: (株)ＡＢＣ商事 and ABC商事株式会社 give ``abc商事``."""
    n = org_written(name)
    out = []
    for run in _JAPANESE_RUN.split(n):
        if not run:
            continue
        if _KANA_ONLY.fullmatch(run):
            out.append("".join(reading_tokens(run)))
        elif _JAPANESE.match(run):
            # Kanji company names stay written: a dictionary reading of a company name is
            # slow (≈0.5 ms each) and often not how the company romanises itself anyway.
            out.append(fold_variants(run))
        else:
            out.append(phonetic(run, keep_digits=True))
    return "".join(out) or n


def canonical_email(address: str, provider_aliases: bool = True) -> str:
    """``T.Tanaka+crm@GMail.com`` → ``ttanaka@gmail.com``: one mailbox, one key."""
    a = fold(address)
    local, _, domain = a.partition("@")
    if domain == "googlemail.com":
        domain = "gmail.com"
    if provider_aliases:
        if domain in _PLUS_TAG or "+" in local:
            local = local.split("+", 1)[0]
        if domain in _DOT_BLIND:
            local = local.replace(".", "")
    return f"{local}@{domain}"


def company_domain(address: str, free_mail: frozenset[str] = FREE_MAIL_DOMAINS) -> str:
    """The domain of a work address, '' for free mail (which never identifies a company)."""
    domain = address.rpartition("@")[2].lower()
    return "" if domain in free_mail or not domain else domain


def is_japanese(text: str) -> bool:
    return bool(_JAPANESE.search(text))


@lru_cache(maxsize=65536)
def split_kana(kana: str, family_written: str | None) -> tuple[str, str] | None:
    """Split a フリガナ cell written without a space (タナカタロウ) after the family name.

    The family name's dictionary reading says where it ends (田中 → たなか); when the cell
    does not start with it, the reading cannot be split and is compared whole.
    """
    k = fold_text(kana).replace(" ", "")
    if not family_written or not k:
        return None
    guess = "".join(
        item["hira"] for item in _kakasi().convert(fold_text(family_written).replace(" ", ""))
    )
    guess = fold_text(guess)
    if guess and len(guess) < len(k) and k.startswith(guess):
        return k[: len(guess)], k[len(guess) :]
    return None
