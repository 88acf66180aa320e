"""Comparison levels of person pairs, computed over whole arrays of pairs at once.

Each comparison turns a pair into one ordered level (0 = disagree … top = agree exactly;
-1 = a side is missing, which counts neither way). The levels, not hand-set points, are what
the model learns m and u for. Name levels have one more, below disagreement: **conflict**,
the same kanji read differently by two trusted readings (佐藤 健: サトウ タケシ / サトウ ケン), which
says "two people" and carries a fixed weight rather than a learned one.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler, Levenshtein
from rapidfuzz.fuzz import token_set_ratio

from warehouse.identity.linkage.frame import Coded, Frame, Idx, Ints, Multi

I8 = NDArray[np.int8]
F32 = NDArray[np.float32]


@dataclass(frozen=True)
class Comparison:
    """One comparison's levels, what fixes it, and the prior its learned m/u start from.

    The priors only matter while the workspace is small: they count as a few dozen pairs
    (m) and a thousand random pairs (u), so a few thousand rows of data outweigh them.
    """

    name: str
    levels: tuple[str, ...]  # index = level
    columns: frozenset[str]  # frame columns a blocking rule on which fixes this comparison
    m_prior: tuple[float, ...]
    u_prior: tuple[float, ...]
    tf: str = ""  # column whose value frequency adjusts the exact level
    tf_down: bool = True  # may a common value weigh less than the learned exact level
    fixed: tuple[tuple[int, float], ...] = ()  # (level, bits) not learned


CONFLICT_BITS = -20.0
EMAIL_OWN = 3  # the 'exact' levels: one mailbox, number or birth date of the person's own
PHONE_OWN = 2
DOB_EXACT = 3
# A shared mailbox or switchboard says "same workplace": a bit of evidence, never a merge.
SHARED_BITS = 1.0
LOCAL_BITS = 2.0
_NAME_LEVELS = ("conflict", "else", "jw80", "jw92", "exact")
PERSON: tuple[Comparison, ...] = (
    Comparison(
        "family",
        _NAME_LEVELS,
        frozenset({"fam", "full", "name", "nameset"}),
        (1e-4, 0.03, 0.04, 0.08, 0.85),
        (1e-5, 0.97, 0.02, 0.005, 0.005),
        tf="fam",
        fixed=((0, CONFLICT_BITS),),
    ),
    Comparison(
        "given",
        _NAME_LEVELS,
        frozenset({"giv", "full", "name", "nameset"}),
        (1e-4, 0.03, 0.04, 0.08, 0.85),
        (1e-5, 0.97, 0.02, 0.005, 0.005),
        tf="giv",
        fixed=((0, CONFLICT_BITS),),
    ),
    Comparison(
        "dob",
        ("else", "two_edits", "one_edit", "exact"),
        frozenset({"dob"}),
        (0.05, 0.02, 0.05, 0.88),
        (0.99, 0.007, 0.0025, 5e-5),
    ),
    Comparison(
        "email",
        ("else", "local", "shared", "exact"),
        frozenset({"email", "local"}),
        (0.6, 0.05, 0.05, 0.3),
        (0.9989, 0.001, 1e-4, 1e-6),
        # A local part is made from the name ('taro.tanaka@' at two firms): it adds little
        # to names that already agree, so it is not learned as if it were independent.
        fixed=((1, LOCAL_BITS), (2, SHARED_BITS)),
    ),
    Comparison(
        "phone",
        ("else", "shared", "exact"),
        frozenset({"phone"}),
        (0.4, 0.05, 0.55),
        (0.998, 0.002, 1e-5),
        fixed=((1, SHARED_BITS),),
    ),
    Comparison(
        "org",
        ("else", "near", "similar", "exact"),
        frozenset({"org", "corp", "domain", "org_sound"}),
        (0.15, 0.05, 0.2, 0.6),
        # Ten people per company among thousands of companies: a random pair shares one
        # about once in a thousand (a prior of 1 in 100 would outweigh what the data says).
        (0.997, 0.001, 0.001, 0.001),
        # One company among ten thousand says more than one among ten: two random people
        # share a company with the odds of its size, which shrink as the workspace grows
        # just as the prior does (without it, name + company stops being a match at 100k).
        # A common trade name is not held against a pair: it may be one big company.
        tf="org",
        tf_down=False,
    ),
    Comparison(
        "address",
        ("else", "ts70", "ts90"),
        frozenset({"address"}),
        (0.3, 0.1, 0.6),
        (0.98, 0.015, 0.005),
    ),
    Comparison(
        "postcode",
        ("else", "near", "exact"),
        frozenset({"postcode"}),
        (0.3, 0.05, 0.65),
        (0.98, 0.015, 0.005),
    ),
    Comparison(
        "ext",
        ("else", "near", "exact"),
        frozenset({"ext"}),
        (0.02, 0.08, 0.9),
        (0.999, 0.0009, 0.0001),
    ),
)


def _sim_values(scorer: Callable[..., float], a: list[str], b: list[str]) -> F32:
    if not a:
        return np.zeros(0, np.float32)
    got: F32 = process.cpdist(a, b, scorer=scorer, workers=1, dtype=np.float32)
    return got


def _sim(scorer: Callable[..., float], c: Coded, ca: Idx, cb: Idx, same: float = 1.0) -> F32:
    """``scorer`` of the values behind codes ``ca``/``cb`` (one code table, symmetric scorer),
    computed once per distinct pair of values; ``same`` is the score of a value with itself."""
    out = np.full(ca.shape[0], same, np.float32)
    diff = np.nonzero(ca != cb)[0]
    if diff.size == 0:
        return out
    v = len(c.values)
    a, b = ca[diff].astype(np.int64), cb[diff].astype(np.int64)  # v² overflows int32
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    uniq, inv = np.unique(lo * v + hi, return_inverse=True)
    values = np.asarray(c.values, dtype=object)
    got = _sim_values(scorer, values[uniq // v].tolist(), values[uniq % v].tolist())
    out[diff] = got[inv.reshape(-1)]
    return out


def _jw(c: Coded, ca: Idx, cb: Idx) -> F32:
    return _sim(JaroWinkler.normalized_similarity, c, ca, cb)


def _present(c: Coded, i: Ints, j: Ints) -> NDArray[np.bool_]:
    out: NDArray[np.bool_] = (c.codes[i] > 0) & (c.codes[j] > 0)
    return out


def _grade(s: F32, exact: NDArray[np.bool_]) -> I8:
    out = np.ones(s.shape[0], np.int8)
    out[s >= 0.8] = 2
    out[s >= 0.92] = 3
    out[exact] = 4
    return out


SLIP_EDITS = 2  # one kana is one or two romaji letters


def _slip(c: Coded, ca: Idx, cb: Idx) -> NDArray[np.bool_]:
    """Two readings at most one kana apart (a typo), or equal."""
    got: NDArray[np.bool_] = _sim(Levenshtein.distance, c, ca, cb, same=0.0) <= SLIP_EDITS
    return got


def names(fr: Frame, i: Ints, j: Ints) -> tuple[I8, I8, NDArray[np.bool_]]:
    """(family level, given level, crossed): token order is tried both ways (TANAKA Taro /
    Taro Tanaka) and the better alignment kept."""
    n = i.shape[0]
    fam_l = np.full(n, -1, np.int8)
    giv_l = np.full(n, -1, np.int8)
    crossed = np.zeros(n, bool)
    fc, gc = fr.coded("fam"), fr.coded("giv")  # one code table for both
    f, g = fc.codes, gc.codes
    name = fr.coded("name").codes
    both = _present(gc, i, j) & _present(fc, i, j)
    bi, bj = i[both], j[both]
    ff, gg = _jw(fc, f[bi], f[bj]), _jw(fc, g[bi], g[bj])
    fg, gf = _jw(fc, f[bi], g[bj]), _jw(fc, g[bi], f[bj])
    cross = (fg + gf) > (ff + gg) + 0.05
    s_fam = np.where(cross, fg, ff)
    s_giv = np.where(cross, gf, gg)
    ex_fam = np.where(cross, f[bi] == g[bj], f[bi] == f[bj])
    ex_giv = np.where(cross, g[bi] == f[bj], g[bi] == g[bj])
    f_lv, g_lv = _grade(s_fam, ex_fam), _grade(s_giv, ex_giv)
    # Same kanji: two trusted readings that disagree are two people; a dictionary guess
    # that disagrees with a trusted reading says nothing (the guess may be wrong).
    same_kanji = (name[bi] == name[bj]) & fr.japanese[bi] & fr.japanese[bj]
    trusted = fr.trusted[bi] & fr.trusted[bj]
    # A reading one slip apart (キョウスケ/キウウスケ) is a typo, not another reading: it
    # disagrees ('else') and the rest of the evidence decides; every real second reading
    # of a kanji (ケン/タケシ, ジュン/アツシ, ガク/マナブ) is further away than that.
    slip_fam = _slip(fc, np.where(cross, f[bi], f[bi]), np.where(cross, g[bj], f[bj]))
    slip_giv = _slip(fc, np.where(cross, g[bi], g[bi]), np.where(cross, f[bj], g[bj]))
    for lv, slip in ((f_lv, slip_fam), (g_lv, slip_giv)):
        lv[same_kanji & trusted & (lv <= 1) & ~slip] = 0
        # One kanji, one reading only guessed: the written name is the evidence.
        lv[same_kanji & ~trusted & (lv <= 3)] = 4
    fam_l[both], giv_l[both] = f_lv, g_lv
    crossed[both] = cross
    # One side has a single token (a reading that could not be split, or a name given only
    # as 'Hanako'): compare whole, and a token found whole in the other name is partial.
    full = fr.coded("full")
    one = ~both & _present(full, i, j)
    oi, oj = i[one], j[one]
    lv = _grade(_jw(full, full.codes[oi], full.codes[oj]), full.codes[oi] == full.codes[oj])
    part = ((g[oi] == 0) & ((f[oi] == f[oj]) | (f[oi] == g[oj]))) | (
        (g[oj] == 0) & ((f[oj] == f[oi]) | (f[oj] == g[oi]))
    )
    lv[part & (lv < 3)] = 3
    same_kanji = (name[oi] == name[oj]) & fr.japanese[oi]
    lv[same_kanji & ~(fr.trusted[oi] & fr.trusted[oj]) & (lv <= 3)] = 4
    slip = _slip(full, full.codes[oi], full.codes[oj])
    lv[same_kanji & fr.trusted[oi] & fr.trusted[oj] & (lv <= 1) & ~slip] = 0
    fam_l[one] = lv
    # The whole reading agrees (ヨシダマイ, unsplit because ?田 cannot be read): the given
    # name agrees too, not only "a name".
    whole = full.codes[oi] == full.codes[oj]
    giv_l[np.nonzero(one)[0][whole]] = 4
    return fam_l, giv_l, crossed


def dob(fr: Frame, i: Ints, j: Ints) -> I8:
    out = np.full(i.shape[0], -1, np.int8)
    c = fr.coded("dob")  # one code table with dob_swap
    ok = _present(c, i, j)
    a, b = c.codes[i[ok]], c.codes[j[ok]]
    lv = np.zeros(a.shape[0], np.int8)
    dist = _sim(Levenshtein.distance, c, a, b, same=0.0)
    lv[dist <= 2] = 1
    lv[(dist <= 1) | (fr.coded("dob_swap").codes[i[ok]] == b)] = 2
    lv[a == b] = 3
    out[ok] = lv
    return out


def _shared_any(
    m: Multi, n: int, i: Ints, j: Ints
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    """Per pair: (both have values, share a personal value, share only shared values).

    Most rows hold one address or number: those pairs compare two codes; only pairs with a
    row of several values look each value up in the other row's."""
    one = m.single(n)
    a, b = one[i], one[j]
    has = (a != -1) & (b != -1)
    personal = np.zeros(i.shape[0], bool)
    shared = np.zeros(i.shape[0], bool)
    hit = np.flatnonzero((a >= 0) & (a == b))
    personal[hit] = ~m.shared[a[hit]]
    shared[hit] = m.shared[a[hit]]
    several = np.flatnonzero(has & ((a == -2) | (b == -2)))
    if several.shape[0]:
        p, s = _shared_many(m, n, i[several], j[several])
        personal[several], shared[several] = p, s
    return has, personal, shared & ~personal


def _shared_many(m: Multi, n: int, i: Ints, j: Ints) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(share a personal value, share a shared value) per pair: each of row i's values
    looked up among row j's."""
    start = m.starts(n)
    rep = np.diff(start)[i]
    pair = np.repeat(np.arange(i.shape[0]), rep)
    personal = np.zeros(i.shape[0], bool)
    shared = np.zeros(i.shape[0], bool)
    if pair.shape[0] == 0:
        return personal, shared
    offs = np.arange(pair.shape[0]) - np.repeat(np.cumsum(rep) - rep, rep)
    vals = m.val[start[i][pair] + offs]
    hit = m.holds(j[pair], vals)
    np.logical_or.at(personal, pair[hit & ~m.shared[vals]], True)
    np.logical_or.at(shared, pair[hit & m.shared[vals]], True)
    return personal, shared


def email(fr: Frame, i: Ints, j: Ints) -> I8:
    n = len(fr)
    has, personal, shared = _shared_any(fr.email, n, i, j)
    _, local, _ = _shared_any(fr.local, n, i, j)
    out = np.full(i.shape[0], -1, np.int8)
    out[has] = 0
    out[has & local] = 1
    out[has & shared] = 2
    out[has & personal] = 3
    return out


def phone(fr: Frame, i: Ints, j: Ints) -> I8:
    has, personal, shared = _shared_any(fr.phone, len(fr), i, j)
    out = np.full(i.shape[0], -1, np.int8)
    out[has] = 0
    out[has & shared] = 1
    out[has & personal] = 2
    return out


def org(fr: Frame, i: Ints, j: Ints) -> I8:
    """Same company: one comparable name (法人格 and branch dropped) or one 法人番号; similar:
    one name across scripts, one mail domain, or a near spelling. Twins (one name, different
    法人番号 or 法人格) are different companies."""
    out = np.full(i.shape[0], -1, np.int8)
    oc, dc, cc, lc = fr.coded("org"), fr.coded("domain"), fr.coded("corp"), fr.coded("legal")
    sc = fr.coded("org_sound")
    known = _present(oc, i, j) | _present(dc, i, j) | _present(cc, i, j)
    ki, kj = i[known], j[known]
    lv = np.zeros(ki.shape[0], np.int8)
    both_org = _present(oc, ki, kj)
    sim = np.zeros(ki.shape[0], np.float32)
    sim[both_org] = _jw(oc, oc.codes[ki[both_org]], oc.codes[kj[both_org]])
    long_sound = np.fromiter((len(v) >= 3 for v in sc.values), bool, len(sc.values))
    s_i = sc.codes[ki]
    sound = (s_i > 0) & (s_i == sc.codes[kj]) & long_sound[s_i]
    dom = _present(dc, ki, kj) & (dc.codes[ki] == dc.codes[kj])
    lv[sim >= 0.9] = 1  # a near spelling: often another company of one group
    lv[sound | dom] = 2
    same = (both_org & (oc.codes[ki] == oc.codes[kj])) | (
        _present(cc, ki, kj) & (cc.codes[ki] == cc.codes[kj])
    )
    lv[same] = 3
    twins = (_present(cc, ki, kj) & (cc.codes[ki] != cc.codes[kj])) | (
        _present(lc, ki, kj) & (lc.codes[ki] != lc.codes[kj])
    )
    lv[twins] = 0
    out[known] = lv
    return out


def _text(
    name: str, fr: Frame, i: Ints, j: Ints, scorer: Callable[..., float], cuts: tuple[float, ...]
) -> I8:
    out = np.full(i.shape[0], -1, np.int8)
    c = fr.coded(name)
    ok = _present(c, i, j)
    s = _sim(scorer, c, c.codes[i[ok]], c.codes[j[ok]], same=float(scorer("a", "a")))
    lv = np.zeros(s.shape[0], np.int8)
    for k, cut in enumerate(cuts, start=1):
        lv[s >= cut] = k
    out[ok] = lv
    return out


PAIRS_AT_ONCE = 500_000


def levels(fr: Frame, i: Ints, j: Ints) -> NDArray[np.int8]:
    """pairs × len(PERSON) matrix of levels, in ``PERSON`` order.

    In slices of ``PAIRS_AT_ONCE`` pairs: each comparison makes a dozen temporary arrays
    per pair, ≈ 0.3 GB at once for the 2.5 M pairs of a million people, where a slice needs
    a fifth of that (a pair's levels do not depend on the other pairs). With a second core,
    two slices at a time: most of a slice's work is numpy and rapidfuzz, which let go of the
    interpreter lock (2.25 → 1.42 s for 1.6 M pairs)."""
    if i.shape[0] <= PAIRS_AT_ONCE:
        return _levels(fr, i, j)
    # Imported here: the feature pass's module imports the settings that list comparisons.
    from warehouse.identity.linkage.memo import workers

    at = range(0, i.shape[0], PAIRS_AT_ONCE)

    def part(a: int) -> NDArray[np.int8]:
        return _levels(fr, i[a : a + PAIRS_AT_ONCE], j[a : a + PAIRS_AT_ONCE])

    if workers() < 2:
        return np.concatenate([part(a) for a in at])
    _levels(fr, i[:1], j[:1])  # each column the comparisons read coded once, here
    with ThreadPoolExecutor(2, thread_name_prefix="identity-levels") as pool:
        return np.concatenate(list(pool.map(part, at)))


def _levels(fr: Frame, i: Ints, j: Ints) -> NDArray[np.int8]:
    fam_l, giv_l, _ = names(fr, i, j)
    org_l = org(fr, i, j)
    # Colleagues share the company's address: once the company agrees, address and postcode
    # describe the workplace again, and counting them would count the company three times.
    address_l = _text("address", fr, i, j, token_set_ratio, (70.0, 90.0))
    postcode_l = _text("postcode", fr, i, j, Levenshtein.normalized_similarity, (0.7, 1.0))
    workplace = org_l >= 2
    address_l[workplace] = -1
    postcode_l[workplace] = -1
    cols = [
        fam_l,
        giv_l,
        dob(fr, i, j),
        email(fr, i, j),
        phone(fr, i, j),
        org_l,
        address_l,
        postcode_l,
        _text("ext", fr, i, j, Levenshtein.normalized_similarity, (0.75, 1.0)),
    ]
    return np.stack(cols, axis=1) if cols[0].shape[0] else np.zeros((0, len(PERSON)), np.int8)
