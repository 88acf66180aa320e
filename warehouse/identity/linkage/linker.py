"""Learn the model from the data, then score every blocked pair: the resolver's scorer.

``train`` estimates u from random pairs, m by EM over the training rules' pairs (a rule's
own comparisons are not learned in its pass), and λ from the deterministic rules' pairs
divided by their assumed recall. ``score`` gives each blocked pair its match weight in bits:
``log2(λ/(1−λ)) + Σ log2(m/u)``, with an exact name adjusted by how common the name is
(``log2(u_exact / frequency of the value)``: 佐藤 says less than 勅使河原).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from warehouse.identity.linkage import blocking_rules as br
from warehouse.identity.linkage import comparisons as cmp
from warehouse.identity.linkage.em import Model, default_m, em, level_frequencies, match_weights
from warehouse.identity.linkage.frame import Frame, Ints, bulk, first_seen, isin

TF_BOUND = 8.0
PRIOR_PAIRS = 30.0
LAMBDA_PRIOR = 1e-4
PRIOR_ALL_PAIRS = 10_000.0
TF_PRIOR = 1000.0  # pseudo-records at u_exact behind each value's frequency


@dataclass(frozen=True)
class LinkSettings:
    """The learned model's knobs (the workspace ``identity:`` section sets them)."""

    rules: tuple[br.Rule, ...] = br.DEFAULT_RULES
    # Person-specific rules only: a rule whose pairs are mostly colleagues (one postcode,
    # one company address) lets EM learn "same workplace" instead of "same person".
    training_rules: tuple[br.Rule, ...] = (
        ("fam:4", "giv:4"),
        ("email",),
        ("phone",),
        ("dob",),
    )
    deterministic_rules: tuple[br.Rule, ...] = (("email",), ("full", "dob"), ("full", "phone"))
    recall: float = 0.6  # the share of true pairs the deterministic rules are thought to find
    max_block: int = 100
    max_training_block: int = 400
    u_pairs: int = 300_000
    # EM learns a dozen numbers per pass: a random sample of a pass's pairs is as good as all
    # of them and keeps learning flat in the size of the workspace.
    training_pairs: int = 250_000
    merge: float = 0.9
    review: float = 0.5
    seed: int = 42


@dataclass
class Scored:
    i: Ints
    j: Ints
    levels: NDArray[np.int8]
    bits: NDArray[np.float64]
    oversized: int = 0
    parts: dict[str, NDArray[np.float64]] = field(default_factory=dict)

    @property
    def probability(self) -> NDArray[np.float64]:
        return 1.0 / (1.0 + np.exp2(-self.bits))


def _sizes() -> list[int]:
    return [len(c.levels) for c in cmp.PERSON]


def _fixed() -> dict[tuple[int, int], float]:
    return {(k, lv): bits for k, c in enumerate(cmp.PERSON) for lv, bits in c.fixed}


def random_pairs(n: int, k: int, seed: int) -> tuple[Ints, Ints]:
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=k, dtype=np.int64)
    j = rng.integers(0, n, size=k, dtype=np.int64)
    keep = i != j
    return np.minimum(i, j)[keep], np.maximum(i, j)[keep]


@bulk
def train(fr: Frame, s: LinkSettings) -> Model:
    """A model learned from ``fr`` alone (no labels)."""
    n = len(fr)
    sizes = _sizes()
    names = [c.name for c in cmp.PERSON]
    if n < 2:
        return Model(names, default_m(sizes), [np.full(k, 1.0 / k) for k in sizes], 1e-4, _fixed())
    di, dj, _ = br.union(fr, s.deterministic_rules, s.max_block)
    ui, uj = random_pairs(n, min(s.u_pairs, n * (n - 1) // 2 * 2), s.seed)
    # u is about non-matches: a sampled pair the deterministic rules call a match is left out.
    sure = isin(ui * n + uj, di * n + dj)
    ui, uj = ui[~sure], uj[~sure]
    u = level_frequencies(cmp.levels(fr, ui, uj), sizes, [c.u_prior for c in cmp.PERSON])
    m_prior = [np.asarray(c.m_prior, dtype=np.float64) for c in cmp.PERSON]
    acc = [m_prior[k] * PRIOR_PAIRS for k in range(len(sizes))]
    weight = np.full(len(sizes), PRIOR_PAIRS)
    for rule in s.training_rules:
        i, j, _ = br.pairs(fr, rule, s.max_training_block, s.training_pairs, s.seed)
        if i.shape[0] < 20:
            continue
        fixed_cols = br.columns(rule)
        learn = [k for k, c in enumerate(cmp.PERSON) if not (c.columns & fixed_cols)]
        m, _, support = em(cmp.levels(fr, i, j), sizes, u, m_prior, learn)
        for k in learn:
            # Each pass counts by the matches behind it, the prior by PRIOR_PAIRS.
            acc[k] += m[k] * support[k]
            weight[k] += support[k]
    m_final = [acc[k] / weight[k] for k in range(len(sizes))]
    all_pairs = n * (n - 1) / 2
    # A prior of LAMBDA_PRIOR over PRIOR_ALL_PAIRS pseudo-pairs keeps a tiny workspace (three
    # rows, no rule pair) from believing half its pairs match.
    found = di.shape[0] / max(s.recall, 1e-3)
    lam = (found + LAMBDA_PRIOR * PRIOR_ALL_PAIRS) / (all_pairs + PRIOR_ALL_PAIRS)
    return Model(names, m_final, u, min(lam, 0.5), _fixed())


def tf_tables(fr: Frame) -> dict[str, dict[str, float]]:
    """Value counts of the term-frequency columns, with the column's total under ``""``
    (counted over the column's codes: values in the order rows first show them)."""
    out: dict[str, dict[str, float]] = {}
    for c in cmp.PERSON:
        if c.tf:
            coded = fr.coded(c.tf)
            counts = np.bincount(coded.codes, minlength=len(coded.values))
            # In the order this column's rows first show them (a joint code table also
            # numbers the other column's values).
            seen, first = first_seen(coded.codes, len(coded.values))
            keep = seen > 0
            order = seen[keep][np.argsort(first[keep], kind="stable")]
            table: dict[str, float] = {coded.values[k]: float(counts[k]) for k in order.tolist()}
            table[""] = float(counts[1:].sum())
            out[c.tf] = table
    return out


Paired = tuple[Ints, Ints, NDArray[np.int8], int]  # (i, j, their levels, oversized blocks)


@bulk
def pair(fr: Frame, s: LinkSettings) -> Paired:
    """The blocked pairs and their comparison levels: all a score needs but the weights."""
    i, j, oversized = br.union(fr, s.rules, s.max_block)
    return i, j, cmp.levels(fr, i, j), oversized


@bulk
def score(
    fr: Frame,
    model: Model,
    s: LinkSettings,
    i: Ints | None = None,
    j: Ints | None = None,
    tf: dict[str, dict[str, float]] | None = None,
    paired: Paired | None = None,
) -> Scored:
    """Match weights of the blocked pairs (or of the given pairs, or of ``paired``)."""
    oversized = 0
    if paired is not None:
        i, j, lv, oversized = paired
    else:
        if i is None or j is None:
            i, j, oversized = br.union(fr, s.rules, s.max_block)
        lv = cmp.levels(fr, i, j)
    weights = model.weights()
    bits = match_weights(lv, weights, model.prior())
    tables = tf if tf is not None else tf_tables(fr)
    for k, c in enumerate(cmp.PERSON):
        if not c.tf:
            continue
        top = len(c.levels) - 1
        col = fr.coded(c.tf)
        ci = col.codes[i]
        # Only where the two values really are one value (not a level granted for the same
        # kanji under a guessed reading, nor a whole-name match of unsplit readings).
        hit = np.nonzero((lv[:, k] == top) & (ci == col.codes[j]) & (ci > 0))[0]
        if hit.size == 0:
            continue
        table = tables.get(c.tf, {})
        u_exact = float(np.clip(model.u[k][top], 1e-6, 1.0))
        per_code = np.fromiter((table.get(v, 0.0) for v in col.values), np.float64)
        counts = per_code[ci[hit]]
        # A value's frequency, shrunk toward u_exact while the column is small.
        freq = (counts + TF_PRIOR * u_exact) / (table.get("", 0.0) + TF_PRIOR)
        adj = np.log2(u_exact / freq)
        bits[hit] += np.clip(adj, -TF_BOUND if c.tf_down else 0.0, TF_BOUND)
    return Scored(i, j, lv, bits, oversized)


def evidence_labels(model: Model) -> list[list[tuple[str, float]]]:
    """Per comparison and level, the evidence label and the bits it adds (positive: for;
    negative: against): computed once per run, then looked up for every decided pair."""
    weights = model.weights()
    return [
        [(f"{c.name}:{name}", round(float(weights[k][lv]), 1)) for lv, name in enumerate(c.levels)]
        for k, c in enumerate(cmp.PERSON)
    ]


def evidence(labels: list[list[tuple[str, float]]], levels: Sequence[int]) -> dict[str, float]:
    """Bits each comparison added for one pair (``labels`` from ``evidence_labels``)."""
    out: dict[str, float] = {}
    for k, lv in enumerate(levels):
        if lv >= 0:
            name, bits = labels[k][lv]
            out[name] = bits
    return out


def disagreement_weights(model: Model) -> dict[str, float]:
    """The learned weight of plain disagreement ('else') per comparison."""
    weights = model.weights()
    out = {}
    for k, c in enumerate(cmp.PERSON):
        if "else" in c.levels:
            out[c.name] = float(weights[k][c.levels.index("else")])
    return out
