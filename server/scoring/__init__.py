"""Scoring at the centre: objective scores from response packages, subjective marks,
the verification report, similar-answer detection and the change rules for results."""
