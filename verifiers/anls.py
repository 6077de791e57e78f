"""ANLS, the DocVQA span metric: 1 - normalised Levenshtein distance, zeroed at or past a threshold."""

from __future__ import annotations

from rapidfuzz.distance import Levenshtein

#: The DocVQA / ST-VQA threshold tau on the normalised distance.
ANLS_THRESHOLD = 0.5


def normalize_span(text: str) -> str:
    """The official DocVQA normalisation: lower-case, strip, collapse whitespace."""
    return " ".join(text.strip().lower().split())


def anls(prediction: str, truths: list[str], threshold: float = ANLS_THRESHOLD) -> float:
    """Best ANLS of `prediction` over the alternative ground truths `truths`.

    Both sides are normalised with `normalize_span`. For each truth, NL = Levenshtein distance /
    max(len); the similarity is 1 - NL when NL < threshold and 0 otherwise (the definition of
    Biten et al. 2019, so a distance of exactly half the length scores 0).
    Returns a value in [0, 1]; 0 when `truths` is empty.
    """
    pred = normalize_span(prediction)
    best = 0.0
    for truth in truths:
        nl = Levenshtein.normalized_distance(pred, normalize_span(truth))
        if nl < threshold:
            best = max(best, 1.0 - nl)
    return best
