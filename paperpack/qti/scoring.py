"""QTI choice scoring -> our scoring rules: points, all-or-nothing or partial credit.

The rule, in full (also summarised in `paperpack.qti`): a multiple-choice mapping becomes
`partial` when every correct option is worth more than 0, no wrong option (mapped or by
`defaultValue`) is worth more than 0, at least two options are correct, and the upper
bound (`upperBound`, else `MAXSCORE`) is the sum of the correct options' values. Points are
then that sum (or `MAXSCORE`), `partial_points` the smallest correct option's value (scaled
if MAXSCORE differs), the least a non-empty correct subset earns in QTI. What the QTI item
scores differently (negative marks, subsets worth different amounts) is warned about.
Anything else is `all_or_nothing`, with a warning saying why.
"""

from __future__ import annotations

from paperpack.model import MultipleScoring
from paperpack.qti.declarations import ItemSource, Mapping, Response

_EPSILON = 1e-9


def choice_scoring(
    source: ItemSource, response: Response, key: tuple[str, ...], ids: set[str]
) -> tuple[MultipleScoring, float, float]:
    """(scoring, points, partial_points) for a choice item; lossy conversions are warned."""
    mapping = response.mapping
    if mapping is None or source.processing == "match_correct":
        if source.processing not in ("match_correct", "none"):
            source.report.warn(
                f"{source.where}: scoring: responseProcessing ({source.processing}) is not "
                "interpreted; scored all-or-nothing against correctResponse"
            )
        return "all_or_nothing", points_for(source, None), 0.0
    values = {option: mapping.value(option) for option in ids}
    correct_sum = sum(values[k] for k in key)
    upper = mapping.upper if mapping.upper is not None else source.max_score
    if source.processing not in ("map_response",):
        source.report.warn(
            f"{source.where}: scoring: responseProcessing ({source.processing}) is not "
            "interpreted; its mapping was used"
        )
    if response.cardinality == "single":
        others = sorted(o for o in ids if o != key[0] and values[o] > 0)
        if others:
            source.report.warn(
                f"{source.where}: scoring: in QTI {', '.join(others)} also earn marks; "
                "a single choice here is right or wrong"
            )
        return "all_or_nothing", points_for(source, values[key[0]]), 0.0
    reason = _partial_refusal(values, key, correct_sum, upper)
    if reason is not None:
        points = points_for(source, min(correct_sum, upper) if upper is not None else correct_sum)
        source.report.warn(
            f"{source.where}: scoring: its mapping cannot be expressed as partial credit "
            f"({reason}); imported as all-or-nothing for {points:g} points"
        )
        return "all_or_nothing", points, 0.0
    partial = min(values[k] for k in key)
    _warn_partial_losses(source, mapping, values, key, correct_sum, partial)
    points = points_for(source, correct_sum)
    if abs(points - correct_sum) > _EPSILON:  # MAXSCORE differs: keep the proportion
        partial = partial * points / correct_sum
        source.report.warn(
            f"{source.where}: scoring: the mapping awards up to {correct_sum:g} but MAXSCORE is "
            f"{points:g}; points and partial points were scaled to MAXSCORE"
        )
    return "partial", points, partial


def _partial_refusal(
    values: dict[str, float], key: tuple[str, ...], correct_sum: float, upper: float | None
) -> str | None:
    """Why a mapping does not fit the partial rule, or None when it does."""
    if len(key) < 2:
        return "only one correct option"
    if any(values[k] <= 0 for k in key):
        return "a correct option is worth 0 or less"
    if any(values[o] > 0 for o in values if o not in key):
        return "a wrong option earns marks"
    if upper is not None and abs(upper - correct_sum) > _EPSILON:
        return f"the upper bound {upper:g} is not the sum {correct_sum:g} of the correct options"
    return None


def _warn_partial_losses(
    source: ItemSource,
    mapping: Mapping,
    values: dict[str, float],
    key: tuple[str, ...],
    correct_sum: float,
    partial: float,
) -> None:
    wrong = sorted(o for o in values if o not in key)
    if (mapping.lower is None or mapping.lower < 0) and any(values[o] < 0 for o in wrong):
        source.report.warn(
            f"{source.where}: scoring: negative totals (no lowerBound >= 0) cannot be expressed; "
            "a selection with a wrong option scores 0 here"
        )
    if mapping.lower is not None and mapping.lower > _EPSILON:
        source.report.warn(
            f"{source.where}: scoring: lowerBound {mapping.lower:g} gives every answer marks in "
            "QTI; here a wrong answer scores 0 and a partly right one the partial points"
        )
    softened = [o for o in wrong if correct_sum + values[o] > _EPSILON]
    if softened:
        source.report.warn(
            f"{source.where}: scoring: negative marks cannot be expressed: in QTI a selection with "
            f"{', '.join(softened)} still earns marks; here any wrong option scores 0"
        )
    subset_values = {values[k] for k in key}
    if len(key) > 2 or len(subset_values) > 1:
        source.report.warn(
            f"{source.where}: scoring: in QTI a partly right answer earns between {partial:g} and "
            f"{correct_sum - min(subset_values):g}; here always {partial:g}"
        )


def points_for(source: ItemSource, from_mapping: float | None) -> float:
    """MAXSCORE, else what the mapping can award, else 1."""
    if source.max_score is not None and source.max_score > 0:
        return source.max_score
    if from_mapping is not None and from_mapping > 0:
        return from_mapping
    return 1.0
