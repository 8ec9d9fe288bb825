"""Similar-answer detection (art. 35(5), "雷同"): pairs of candidates who share improbably
many identical *wrong* answers.

Why wrong answers: two able candidates agree on right answers because both know them; an
identical wrong choice is the classic fingerprint of copying.

The statistic (explained for readers in docs/similar-answers.md):

- For every objective item i, the population gives the share of each wrong response w among
  the candidates who got the item wrong: p_iw. If two candidates both got item i wrong
  independently, the chance they picked the same wrong response is r_i = sum_w p_iw^2.
- For a pair (a, b), let B be the items both got wrong. Under independence the number of
  identical wrong answers M_ab is a sum of independent Bernoulli(r_i) over B (Poisson-binomial),
  with mean mu = sum r_i and variance sum r_i (1 - r_i).
- A pair is flagged when P(M >= observed) is below alpha / (number of pairs) (Bonferroni), so
  among thousands of honest candidates the expected number of false flags is at most alpha.
  The tail is computed exactly (dynamic programming over the items in B) for the few pairs
  that pass a cheap z-score pre-screen; the pre-screen is deliberately loose.

Everything pair-wise is a matrix product (numpy), so 3,000 candidates x 100 items takes seconds.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# A candidate's wrong answer to an item, as any hashable value (a frozenset of option ids,
# a normalised string); None means right, unanswered or not objective (never counted).
WrongAnswer = Hashable | None

DEFAULT_ALPHA = 0.001  # expected false flags across the whole session
PRESCREEN_Z = 3.0  # pairs below this z-score are not worth the exact tail


@dataclass(frozen=True)
class SimilarPair:
    """Two candidates with improbably many identical wrong answers."""

    first: str  # ticket
    second: str  # ticket
    identical_wrong: int  # observed count of identical wrong answers
    both_wrong: int  # items both answered wrongly
    expected: float  # expected identical wrong answers under independence
    p_value: float  # P(M >= identical_wrong) under independence
    neighbours: bool = False  # seated next to each other (filled in by the report)


def find_similar_pairs(
    wrong_answers: Mapping[str, Sequence[WrongAnswer]],
    *,
    alpha: float = DEFAULT_ALPHA,
) -> list[SimilarPair]:
    """Flag pairs whose identical wrong answers are improbable under independence.

    `wrong_answers` maps each ticket to its per-item wrong answers, every list in the same
    item order. Returns the flagged pairs, most improbable first.
    """
    tickets = sorted(wrong_answers)
    n = len(tickets)
    if n < 2:
        return []
    onehot, wrong, r = _encode(tickets, wrong_answers)
    identical = onehot @ onehot.T  # identical wrong answers per pair
    both_wrong = wrong @ wrong.T
    mean = (wrong * r) @ wrong.T
    var = (wrong * (r * (1.0 - r))) @ wrong.T
    z = (identical - mean) / np.sqrt(np.maximum(var, 1e-12))
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    candidates = np.argwhere(upper & (z > PRESCREEN_Z) & (identical >= 2))
    threshold = alpha / (n * (n - 1) / 2)
    flagged: list[SimilarPair] = []
    for a, b in candidates:
        rates = r[(wrong[a] > 0) & (wrong[b] > 0)]
        observed = int(identical[a, b])
        p = poisson_binomial_tail(rates, observed)
        if p < threshold:
            flagged.append(
                SimilarPair(
                    tickets[a],
                    tickets[b],
                    observed,
                    int(both_wrong[a, b]),
                    float(mean[a, b]),
                    p,
                )
            )
    flagged.sort(key=lambda pair: pair.p_value)
    return flagged


def _encode(
    tickets: Sequence[str], wrong_answers: Mapping[str, Sequence[WrongAnswer]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """One-hot of wrong responses, the wrong indicator, and r_i per item."""
    n_items = len(wrong_answers[tickets[0]])
    codes: list[dict[Hashable, int]] = [{} for _ in range(n_items)]
    for ticket in tickets:
        row = wrong_answers[ticket]
        if len(row) != n_items:
            raise ValueError(f"candidate {ticket}: {len(row)} answers, expected {n_items}")
        for i, answer in enumerate(row):
            if answer is not None:
                codes[i].setdefault(answer, len(codes[i]))
    offsets = np.cumsum([0] + [len(c) for c in codes])
    onehot = np.zeros((len(tickets), int(offsets[-1])), dtype=np.float64)
    wrong = np.zeros((len(tickets), n_items), dtype=np.float64)
    for t, ticket in enumerate(tickets):
        for i, answer in enumerate(wrong_answers[ticket]):
            if answer is not None:
                onehot[t, offsets[i] + codes[i][answer]] = 1.0
                wrong[t, i] = 1.0
    r = np.zeros(n_items, dtype=np.float64)
    for i in range(n_items):
        counts = onehot[:, offsets[i] : offsets[i + 1]].sum(axis=0)
        total = counts.sum()
        if total > 0:
            r[i] = float(((counts / total) ** 2).sum())
    return onehot, wrong, r


def poisson_binomial_tail(rates: npt.NDArray[np.float64], k: int) -> float:
    """P(sum of independent Bernoulli(rates) >= k), exactly, by dynamic programming."""
    if k <= 0:
        return 1.0
    if k > len(rates):
        return 0.0
    dist = np.zeros(len(rates) + 1)
    dist[0] = 1.0
    for m, rate in enumerate(rates, start=1):
        dist[1 : m + 1] = dist[1 : m + 1] * (1.0 - rate) + dist[0:m] * rate
        dist[0] *= 1.0 - rate
    return float(min(1.0, max(0.0, dist[k:].sum())))
