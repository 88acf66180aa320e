"""Blocking rules an admin can read: which pairs are compared at all.

A rule is a list of terms, each a frame column (``fam``, ``giv``, ``full``, ``nameset`` (the
reading tokens in any order), ``name``, ``dob``,
``postcode``, ``org``, ``domain``, ``corp``, ``ext``, ``address``, ``email``, ``phone``,
``local``) or a column cut to its first N characters (``fam:4``). Two rows are compared when
every term agrees and none is empty; a pair found by several rules is compared once. A key
shared by more than ``max_block`` rows is skipped (and counted), so one common value cannot
make a run quadratic; a rule may set its own smaller bound with a ``cap:N`` term
(``[address:12, cap:8]``: an address shared by more than eight rows is a workplace, not a
person). Shared mailboxes and switchboards never make a key: they are
workplace evidence only.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from warehouse.identity.linkage.frame import Frame, Idx, Ints, Multi

Rule = tuple[str, ...]

DEFAULT_RULES: tuple[Rule, ...] = (
    ("email",),
    ("phone",),
    # A local part is made from the name (t.tanaka@ at many firms): only in small blocks.
    ("local", "cap:5"),
    ("ext",),
    ("full", "org"),
    ("full", "dob"),
    ("full", "postcode"),
    ("name", "org"),
    ("name", "domain"),
    ("nameset", "org_sound"),
    ("nameset", "domain"),
    # A name alone, or an address, is a key only in small blocks: a name a dozen people
    # share, or an office's address, would compare every colleague or namesake pairwise.
    ("nameset", "cap:10"),
    ("fam:4", "giv:4", "cap:10"),
    ("dob", "giv:2"),
    ("dob", "fam:2"),
    ("postcode", "fam:3"),
    ("postcode", "giv:3"),
    ("dob", "postcode"),
    ("dob", "cap:10"),
    ("postcode", "address:6", "cap:10"),
    ("address:12", "cap:10"),
)
MULTI = ("email", "phone", "local")
SINGLE = (
    "nameset",
    "fam",
    "giv",
    "full",
    "name",
    "dob",
    "postcode",
    "org",
    "domain",
    "corp",
    "ext",
    "address",
    "org_sound",
)


def parse(rule: Sequence[str]) -> Rule:
    """Check a rule's terms; ValueError names the bad term and the columns allowed."""
    out = []
    for term in rule:
        col, _, cut = term.partition(":")
        if col == "cap" and cut.isdigit() and int(cut) >= 2:
            out.append(term)
            continue
        if col not in SINGLE + MULTI or (cut and not cut.isdigit()):
            raise ValueError(
                f"blocking term {term!r}: use one of {', '.join(SINGLE + MULTI)}, "
                "optionally with :N for the first N characters, or cap:N (N ≥ 2) for a "
                "smaller block bound"
            )
        out.append(term)
    if not [t for t in out if not t.startswith("cap:")]:
        raise ValueError("a blocking rule needs at least one column term")
    if sum(t.partition(":")[0] in MULTI for t in out) > 1:
        raise ValueError(f"rule {out}: at most one of email, phone, local per rule")
    return tuple(out)


def columns(rule: Rule) -> set[str]:
    return {t.partition(":")[0] for t in rule if not t.startswith("cap:")}


def cap(rule: Rule, max_block: int) -> int:
    """The rule's block bound: its own ``cap:N`` if smaller than the workspace's."""
    caps = [int(t[4:]) for t in rule if t.startswith("cap:")]
    return min([max_block, *caps])


def _keys(fr: Frame, rule: Rule) -> tuple[Ints, Ints]:
    """(row, key code) for every row with every term present (multi-valued terms explode).

    Keys are the terms' integer codes combined, so grouping a million rows is a sort of
    integers, never of strings."""
    rows = np.arange(len(fr), dtype=np.int64)
    parts: list[tuple[Idx, int]] = []
    multi: Multi | None = None
    for term in rule:
        if term.startswith("cap:"):
            continue
        if term.partition(":")[0] in MULTI:
            multi = getattr(fr, term.partition(":")[0])
            continue
        c = fr.coded(term)
        parts.append((c.codes, len(c.values)))
    if multi is not None:
        keep = ~multi.shared[multi.val]
        rows = multi.rec[keep]
        parts = [(p[rows], k) for p, k in parts] + [(multi.val[keep] + 1, len(multi.values) + 1)]
    ok = np.ones(rows.shape[0], bool)
    for p, _ in parts:
        ok &= p > 0
    key = parts[0][0][ok].astype(np.int64)  # codes are int32; their products are not
    span = parts[0][1]
    for p, k in parts[1:]:
        if span * k >= 2**62:  # renumber before the product could overflow
            _, key = np.unique(key, return_inverse=True)
            span = int(key.max()) + 1 if key.size else 1
        key = key * k + p[ok]
        span *= k
    return rows[ok], key


def pairs(
    fr: Frame, rule: Rule, max_block: int, sample: int = 0, seed: int = 42
) -> tuple[Ints, Ints, int]:
    """(i, j, oversized keys) for one rule: every pair i < j of rows sharing a key, or a
    random ``sample`` of them (drawn without building the rest) when there are more."""
    max_block = cap(rule, max_block)
    rows, key = _keys(fr, rule)
    if rows.shape[0] < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    # One stable sort of the keys: rows come in ascending order, so each block's rows stay so.
    order = np.argsort(key, kind="stable")
    key, rows = key[order], rows[order]
    new = np.ones(key.shape[0], bool)
    new[1:] = key[1:] != key[:-1]
    grp = np.cumsum(new) - 1
    sizes = np.bincount(grp)
    big = sizes > max_block
    keep = ~big[grp] & (sizes[grp] > 1)
    i, j = block_pairs(rows[keep], grp[keep], sample, seed)
    return i, j, int(big.sum())


def block_pairs(rows: Ints, grp: Ints, sample: int = 0, seed: int = 42) -> tuple[Ints, Ints]:
    """Every pair (i < j) of rows in one group, ``grp`` sorted: all pairs at once, without a
    pass per distance. Row at position p of a block ending at e pairs with p+1 … e−1.
    With ``sample`` > 0 and more pairs than that, a uniform sample of that many pairs."""
    if rows.shape[0] < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    new = np.ones(grp.shape[0], bool)
    new[1:] = grp[1:] != grp[:-1]
    first = np.flatnonzero(new)
    ends = np.append(first[1:], grp.shape[0])
    end_of = np.repeat(ends, np.diff(np.append(first, grp.shape[0])))
    pos = np.arange(grp.shape[0], dtype=np.int64)
    after = end_of - pos - 1  # partners after each row in its block
    total = int(after.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    before = np.cumsum(after) - after  # flat index of each row's first pair
    if 0 < sample < total:
        flat = np.sort(np.random.default_rng(seed).choice(total, sample, replace=False))
        src = np.searchsorted(before, flat, side="right") - 1
        step = flat - before[src]
    else:
        src = np.repeat(pos, after)
        step = np.arange(total, dtype=np.int64) - np.repeat(before, after)
    a, b = rows[src], rows[src + 1 + step]
    keep = a != b
    return np.minimum(a, b)[keep], np.maximum(a, b)[keep]


def union(fr: Frame, rules: Sequence[Rule], max_block: int) -> tuple[Ints, Ints, int]:
    """Every pair any rule finds, once."""
    n = max(len(fr), 1)
    codes: list[Ints] = []
    oversized = 0
    for i, j, big in _each_rule(fr, rules, max_block):
        oversized += big
        codes.append(i * n + j)
    if not codes:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    # Sorted in place, the rules' lists let go first: a million people's rules find 5 M
    # pairs, and each copy of them is 40 MB.
    u = np.concatenate(codes)
    del codes
    u.sort()
    keep = np.ones(u.shape[0], bool)
    keep[1:] = u[1:] != u[:-1]
    u = u[keep]
    return u // n, u % n, oversized


# From this many rows, rules are paired two at a time on a machine with a second core: a
# rule's pairing is numpy sorts and gathers, which let go of the interpreter lock (0.69 →
# 0.45 s for 21 rules at 400 k people).
THREAD_ROWS = 50_000


def _each_rule(fr: Frame, rules: Sequence[Rule], max_block: int) -> list[tuple[Ints, Ints, int]]:
    """``pairs`` of each rule, in the rules' order."""
    # Imported here: the feature pass's module imports the settings these rules are part of.
    from warehouse.identity.linkage.memo import workers

    if len(fr) < THREAD_ROWS or len(rules) < 2 or workers() < 2:
        return [pairs(fr, rule, max_block) for rule in rules]
    for rule in rules:  # each column coded once, here, before two rules could both code it
        for term in rule:
            if not term.startswith("cap:") and term.partition(":")[0] not in MULTI:
                fr.coded(term)
    with ThreadPoolExecutor(2, thread_name_prefix="identity-pairs") as pool:
        return list(pool.map(lambda rule: pairs(fr, rule, max_block), rules))
