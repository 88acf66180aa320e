"""EM recovers the m and u it was given, from unlabelled pairs."""

from __future__ import annotations

import numpy as np

from warehouse.identity.linkage.em import em, level_frequencies


def test_em_recovers_known_m_and_lambda_on_synthetic_pairs() -> None:
    rng = np.random.default_rng(1)
    sizes = [3, 3, 2]
    m_true = [np.array([0.05, 0.15, 0.8]), np.array([0.1, 0.2, 0.7]), np.array([0.2, 0.8])]
    u_true = [np.array([0.9, 0.08, 0.02]), np.array([0.85, 0.1, 0.05]), np.array([0.95, 0.05])]
    n, lam = 40_000, 0.2
    match = rng.random(n) < lam
    cols = []
    for k in range(3):
        lv = np.where(
            match,
            rng.choice(sizes[k], n, p=m_true[k]),
            rng.choice(sizes[k], n, p=u_true[k]),
        )
        cols.append(lv.astype(np.int8))
    levels = np.stack(cols, axis=1)
    # u from "random pairs": the non-matches alone, as a large sample would give.
    u = level_frequencies(levels[~match], sizes)
    start = [np.full(k, 1.0 / k) for k in sizes]
    start = [np.linspace(0.1, 1.0, k) / np.linspace(0.1, 1.0, k).sum() for k in sizes]
    m, got_lam, support = em(levels, sizes, u, start, learn=[0, 1, 2], iterations=200, tol=1e-8)
    assert abs(got_lam - lam) < 0.01
    for k in range(3):
        assert np.abs(m[k] - m_true[k]).max() < 0.03, (k, m[k])
    assert support.sum() > 0


def test_a_comparison_fixed_by_the_blocking_rule_neither_learns_nor_decides() -> None:
    # Every pair agrees on comparison 0 (the rule fixed it); EM must not call them all matches.
    rng = np.random.default_rng(2)
    n = 5000
    match = rng.random(n) < 0.1
    cols = [np.full(n, 1, np.int8)]
    for _ in range(2):
        got = np.where(match, rng.choice(2, n, p=[0.1, 0.9]), rng.choice(2, n, p=[0.95, 0.05]))
        cols.append(got.astype(np.int8))
    levels = np.stack(cols, axis=1)
    u = [np.array([0.99, 0.01]), np.array([0.95, 0.05]), np.array([0.95, 0.05])]
    start = [np.array([0.5, 0.5]), np.array([0.3, 0.7]), np.array([0.3, 0.7])]
    m, lam, _ = em(levels, [2, 2, 2], u, start, learn=[1, 2], iterations=300, tol=1e-9)
    assert 0.05 < lam < 0.15
    assert np.allclose(m[0], start[0])  # not learned
