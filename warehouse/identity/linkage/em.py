"""Fellegi–Sunter parameters learned from the workspace's own data (no labels).

Each comparison has ordered levels (0 = disagree … highest = exact; -1 = null, which adds
nothing). ``m[c][l] = P(level l | same person)``, ``u[c][l] = P(level l | different people)``.
u comes from random pairs (almost all non-matches); m from expectation–maximisation over the
pairs of several blocking rules, where a comparison whose columns a rule fixed is not learned
in that pass (the rule made it agree). λ, the chance that two random records match, comes from
deterministic rules. Probabilities are capped (m ≤ 0.9999, u ≥ 1e-6) against instability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

M_MAX = 0.9999
U_MIN = 1e-6
P_MIN = 1e-6

Levels = NDArray[np.int8]  # pairs × comparisons; -1 = null


@dataclass
class Model:
    """m and u per comparison level, and λ; everything a score needs besides the data."""

    names: list[str]
    m: list[NDArray[np.float64]]
    u: list[NDArray[np.float64]]
    lam: float = 1e-4
    fixed: dict[tuple[int, int], float] = field(default_factory=dict)  # (comp, level) → bits

    def weights(self) -> list[NDArray[np.float64]]:
        """log2(m/u) per comparison level, with fixed levels overriding what was learned."""
        out = []
        for c, (m, u) in enumerate(zip(self.m, self.u, strict=True)):
            w = np.log2(np.clip(m, P_MIN, M_MAX) / np.clip(u, U_MIN, 1.0))
            for (fc, fl), bits in self.fixed.items():
                if fc == c:
                    w[fl] = bits
            out.append(w)
        return out

    def prior(self) -> float:
        lam = min(max(self.lam, 1e-12), 1 - 1e-9)
        return float(np.log2(lam / (1 - lam)))

    def as_dict(self) -> dict[str, object]:
        return {
            "lambda": self.lam,
            "comparisons": {
                n: {"m": [round(float(x), 6) for x in m], "u": [float(f"{x:.3g}") for x in u]}
                for n, m, u in zip(self.names, self.m, self.u, strict=True)
            },
            "fixed": {f"{self.names[c]}:{lv}": b for (c, lv), b in self.fixed.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, object], fixed: dict[tuple[int, int], float]) -> Model:
        comps = data["comparisons"]
        assert isinstance(comps, dict)
        names = list(comps)
        return cls(
            names,
            [np.asarray(comps[n]["m"], dtype=np.float64) for n in names],
            [np.asarray(comps[n]["u"], dtype=np.float64) for n in names],
            float(data["lambda"]),  # type: ignore[arg-type]
            fixed,
        )


def level_frequencies(
    levels: Levels,
    sizes: Sequence[int],
    prior: Sequence[Sequence[float]] | None = None,
    strength: float = 10_000.0,
) -> list[NDArray[np.float64]]:
    """Share of each level among non-null comparisons (u from random pairs).

    With a ``prior``, it counts as ``strength`` pseudo-pairs: a small workspace (a hundred
    rows) gives too few random pairs to say anything, a large one outweighs the prior.
    """
    out = []
    for c, k in enumerate(sizes):
        col = levels[:, c]
        col = col[col >= 0]
        counts = np.bincount(col.astype(np.int64), minlength=k)[:k].astype(np.float64)
        if prior is None:
            # Add-one smoothing: a level never seen among random pairs is rare, not impossible.
            out.append((counts + 1.0) / (counts.sum() + k))
        else:
            pc = np.asarray(prior[c], dtype=np.float64) * strength
            out.append((counts + pc) / (counts.sum() + pc.sum()))
    return out


def match_weights(
    levels: Levels, weights: Sequence[NDArray[np.float64]], prior: float
) -> NDArray[np.float64]:
    """Total match weight (bits) of each pair: prior + Σ log2(m/u) of its levels."""
    total = np.full(levels.shape[0], prior, dtype=np.float64)
    for c, w in enumerate(weights):
        col = levels[:, c]
        ok = col >= 0
        total[ok] += w[col[ok]]
    return total


def probability(bits: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp2(-bits))


def em(
    levels: Levels,
    sizes: Sequence[int],
    u: Sequence[NDArray[np.float64]],
    m0: Sequence[NDArray[np.float64]],
    learn: Sequence[int],
    lam0: float = 0.3,
    iterations: int = 25,
    tol: float = 1e-5,
) -> tuple[list[NDArray[np.float64]], float, NDArray[np.float64]]:
    """EM on one blocking pass: m of the comparisons in ``learn``.

    Only those comparisons enter the likelihood: the others were fixed by the pass's
    blocking rule (every pair agrees on them), so counting them would call every pair a
    match.

    u stays fixed (estimated from random pairs, the way Splink does by default): only the
    match share inside the pass and the m probabilities move. Returns (m, λ of the pass,
    expected matches behind each comparison's m).
    """
    m = [np.asarray(x, dtype=np.float64).copy() for x in m0]
    lam = lam0
    support = np.zeros(len(sizes))
    if levels.shape[0] == 0:
        return m, lam, support
    # Pairs with the same levels are the same to EM: iterate over the distinct patterns
    # (a few hundred) weighted by how many pairs show each, not over every pair.
    key = np.zeros(levels.shape[0], np.int64)
    for c in range(levels.shape[1]):
        key = key * 16 + (levels[:, c].astype(np.int64) + 1)
    _, first, count = np.unique(key, return_index=True, return_counts=True)
    levels = levels[first]
    mult = count.astype(np.float64)
    n = levels.shape[0]
    ok = [levels[:, c] >= 0 for c in range(len(sizes))]
    idx = [np.where(ok[c], levels[:, c], 0).astype(np.int64) for c in range(len(sizes))]
    for _ in range(iterations):
        lm = np.full(n, np.log(max(lam, 1e-12)))
        lu = np.full(n, np.log(max(1 - lam, 1e-12)))
        for c in learn:
            mc = np.log(np.clip(m[c], P_MIN, M_MAX))
            uc = np.log(np.clip(u[c], U_MIN, 1.0))
            lm += np.where(ok[c], mc[idx[c]], 0.0)
            lu += np.where(ok[c], uc[idx[c]], 0.0)
        p = mult / (1.0 + np.exp(np.clip(lu - lm, -700, 700)))  # expected matches per pattern
        new_lam = float(p.sum() / mult.sum())
        delta = abs(new_lam - lam)
        lam = new_lam
        for c in learn:
            w = p[ok[c]]
            total = w.sum()
            support[c] = total
            if total <= 0:
                continue
            counts = np.bincount(idx[c][ok[c]], weights=w, minlength=sizes[c])[: sizes[c]]
            new = np.clip((counts + 1e-3) / (total + 1e-3 * sizes[c]), P_MIN, M_MAX)
            delta = max(delta, float(np.abs(new - m[c]).max()))
            m[c] = new
        if delta < tol:
            break
    return m, lam, support


def default_m(sizes: Sequence[int]) -> list[NDArray[np.float64]]:
    """A starting point: matches mostly agree exactly (the top level), rarely not at all."""
    out = []
    for k in sizes:
        v = np.full(k, 0.1 / max(k - 1, 1))
        v[k - 1] = 0.9
        out.append(v)
    return out
