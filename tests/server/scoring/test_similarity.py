"""Similar-answer detection finds planted copiers and flags no honest pair."""

from __future__ import annotations

import numpy as np
import pytest

from server.scoring.similarity import find_similar_pairs, poisson_binomial_tail

N_ITEMS = 100
N_OPTIONS = 4


def simulate(n: int, seed: int) -> tuple[dict[str, list[object]], np.random.Generator]:
    """Independent candidates under a simple IRT model with attractive distractors."""
    rng = np.random.default_rng(seed)
    ability = rng.normal(0.0, 1.0, n)
    difficulty = rng.normal(0.0, 1.0, N_ITEMS)
    distractors = rng.dirichlet(np.ones(N_OPTIONS - 1) * 1.5, N_ITEMS)
    p_right = 1.0 / (1.0 + np.exp(-(ability[:, None] - difficulty[None, :])))
    right = rng.random((n, N_ITEMS)) < p_right
    answers: dict[str, list[object]] = {}
    for c in range(n):
        row: list[object] = []
        for i in range(N_ITEMS):
            row.append(None if right[c, i] else int(rng.choice(N_OPTIONS - 1, p=distractors[i])))
        answers[f"T{c:05d}"] = row
    return answers, rng


def test_poisson_binomial_tail_matches_binomial() -> None:
    """With equal rates the tail equals the binomial tail computed by hand."""
    rates = np.full(10, 0.3)
    from math import comb

    expected = sum(comb(10, j) * 0.3**j * 0.7 ** (10 - j) for j in range(4, 11))
    assert poisson_binomial_tail(rates, 4) == pytest.approx(expected, rel=1e-12)
    assert poisson_binomial_tail(rates, 0) == 1.0
    assert poisson_binomial_tail(rates, 11) == 0.0


@pytest.mark.slow
def test_no_pair_flagged_among_3000_independent_candidates() -> None:
    """3,000 simulated independent candidates produce no flagged pair."""
    answers, _ = simulate(3000, seed=7)
    assert find_similar_pairs(answers) == []


def test_planted_copiers_are_found() -> None:
    """Candidates who copied 90% of a weaker neighbour's answers are flagged with their source.

    Detection rests on shared wrong answers, so the sources planted here got at least 30 items
    wrong; copying from a near-perfect candidate leaves too little evidence for any method.
    """
    answers, rng = simulate(400, seed=11)
    weak = [t for t in sorted(answers) if sum(a is not None for a in answers[t]) >= 30]
    planted = {(weak[0], weak[1]), (weak[10], weak[20]), (weak[30], weak[31])}
    for source, copier in planted:
        copied = rng.random(N_ITEMS) < 0.9
        answers[copier] = [
            answers[source][i] if copied[i] else answers[copier][i] for i in range(N_ITEMS)
        ]
    flagged = {(p.first, p.second) for p in find_similar_pairs(answers)}
    assert planted <= flagged
    assert flagged == planted


def test_pairs_are_compared_within_a_venue_only() -> None:
    """With groups, planted copiers in one venue are still found; the same copying across
    two venues is not compared (copying needs sight of a screen), so it is not flagged."""
    answers, rng = simulate(400, seed=11)
    weak = [t for t in sorted(answers) if sum(a is not None for a in answers[t]) >= 30]
    venues = {t: ("V1" if n % 2 == 0 else "V2") for n, t in enumerate(sorted(answers))}
    same = next((a, b) for a in weak for b in weak if a < b and venues[a] == venues[b])
    across = next(
        (a, b) for a in weak for b in weak
        if a < b and venues[a] != venues[b] and not {a, b} & set(same)
    )  # fmt: skip
    for source, copier in (same, across):
        copied = rng.random(N_ITEMS) < 0.9
        answers[copier] = [
            answers[source][i] if copied[i] else answers[copier][i] for i in range(N_ITEMS)
        ]
    flagged = {(p.first, p.second) for p in find_similar_pairs(answers, groups=venues)}
    assert flagged == {same}
    assert {same, across} <= {(p.first, p.second) for p in find_similar_pairs(answers)}
