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
    groups: Mapping[str, str] | None = None,
) -> list[SimilarPair]:
    """Flag pairs whose identical wrong answers are improbable under independence.

    `wrong_answers` maps each ticket to its per-item wrong answers, every list in the same
    item order. With `groups` (ticket -> venue) only candidates of the same group are paired:
    copying needs sight of another's screen, and pairing a national session's candidates all
    with all would not fit in memory. The item statistics r_i come from every candidate, and
    the Bonferroni bound counts the pairs actually compared. Returns the flagged pairs, most
    improbable first.
    """
    tickets = sorted(wrong_answers)
    if len(tickets) < 2:
        return []
    codes, r = _population(tickets, wrong_answers)
    members: dict[str, list[str]] = {}
    for ticket in tickets:
        members.setdefault(groups.get(ticket, "") if groups else "", []).append(ticket)
    compared = sum(len(m) * (len(m) - 1) // 2 for m in members.values())
    if compared == 0:
        return []
    threshold = alpha / compared
    flagged: list[SimilarPair] = []
    for group in members.values():
        if len(group) >= 2:
            flagged.extend(_flag_within(group, wrong_answers, codes, r, threshold))
    flagged.sort(key=lambda pair: pair.p_value)
    return flagged


def _flag_within(
    tickets: Sequence[str],
    wrong_answers: Mapping[str, Sequence[WrongAnswer]],
    codes: Sequence[Mapping[Hashable, int]],
    r: npt.NDArray[np.float64],
    threshold: float,
) -> list[SimilarPair]:
    """The flagged pairs among `tickets` (one group), every pair a matrix product away."""
    onehot, wrong = _encode(tickets, wrong_answers, codes)
    n = len(tickets)
    identical = onehot @ onehot.T  # identical wrong answers per pair
    both_wrong = wrong @ wrong.T
    mean = (wrong * r) @ wrong.T
    var = (wrong * (r * (1.0 - r))) @ wrong.T
    z = (identical - mean) / np.sqrt(np.maximum(var, 1e-12))
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    candidates = np.argwhere(upper & (z > PRESCREEN_Z) & (identical >= 2))
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
    return flagged


def _population(
    tickets: Sequence[str], wrong_answers: Mapping[str, Sequence[WrongAnswer]]
) -> tuple[list[dict[Hashable, int]], npt.NDArray[np.float64]]:
    """Per item, a code for every wrong response anyone gave, and r_i = sum_w p_iw^2 over
    everyone who got the item wrong."""
    n_items = len(wrong_answers[tickets[0]])
    codes: list[dict[Hashable, int]] = [{} for _ in range(n_items)]
    counts: list[list[int]] = [[] for _ in range(n_items)]
    for ticket in tickets:
        row = wrong_answers[ticket]
        if len(row) != n_items:
            raise ValueError(f"candidate {ticket}: {len(row)} answers, expected {n_items}")
        for i, answer in enumerate(row):
            if answer is not None:
                code = codes[i].setdefault(answer, len(codes[i]))
                if code == len(counts[i]):
                    counts[i].append(0)
                counts[i][code] += 1
    r = np.zeros(n_items, dtype=np.float64)
    for i, item_counts in enumerate(counts):
        total = sum(item_counts)
        if total > 0:
            shares = np.array(item_counts, dtype=np.float64) / total
            r[i] = float((shares**2).sum())
    return codes, r


def _encode(
    tickets: Sequence[str],
    wrong_answers: Mapping[str, Sequence[WrongAnswer]],
    codes: Sequence[Mapping[Hashable, int]],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """One-hot of the group's wrong responses (codes from the population) and the wrong
    indicator."""
    n_items = len(codes)
    offsets = np.cumsum([0] + [len(c) for c in codes])
    onehot = np.zeros((len(tickets), int(offsets[-1])), dtype=np.float64)
    wrong = np.zeros((len(tickets), n_items), dtype=np.float64)
    for t, ticket in enumerate(tickets):
        for i, answer in enumerate(wrong_answers[ticket]):
            if answer is not None:
                onehot[t, offsets[i] + codes[i][answer]] = 1.0
                wrong[t, i] = 1.0
    return onehot, wrong


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
