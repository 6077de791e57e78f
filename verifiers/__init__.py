"""Answer extraction and scoring, and item well-posedness checks."""

from deltaprompts.verifiers.extract import extract_answer
from deltaprompts.verifiers.scoring import (
    ANSWER_TYPES,
    ScoreResult,
    VerifierError,
    UNPARSEABLE,
    answer_class,
    item_answer_class,
    score_answer,
    score_answer_detailed,
    score_item_answer,
    score_item_answer_detailed,
)

__all__ = [
    "ANSWER_TYPES",
    "ScoreResult",
    "VerifierError",
    "UNPARSEABLE",
    "answer_class",
    "item_answer_class",
    "extract_answer",
    "score_answer",
    "score_answer_detailed",
    "score_item_answer",
    "score_item_answer_detailed",
]
