"""Training targets of an export: the item's answer, or the teacher's own responses that the verifier
scored correct (rejection sampling over `scores/samples-teacher.jsonl`), reasoning blocks kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deltaprompts.errors import UnknownNameError, UserError
from deltaprompts.records import Item
from deltaprompts.store import ScoreStore

#: what an assistant turn is made of: the ground truth, or the teacher's verified responses
TARGETS = ("answer", "teacher")
#: how teacher responses are picked per item: the shortest correct ones, those of highest mean
#: log-prob per token, or every correct one (in sample order); each up to `max_traces`
TRACE_RULES = ("shortest", "logprob", "all")


@dataclass(frozen=True)
class Target:
    """One assistant turn and where it came from."""

    text: str
    source: str  # "answer" or "teacher"
    model: str | None = None  # the teacher's identity (scores/meta.json)
    sample: int | None = None  # the sample index in samples-teacher.jsonl
    score: float | None = None  # the verifier's score of the sample
    logprob: float | None = None  # its mean log-prob per token, when the backend gave log-probs


def check_targets(targets: str, rule: str, max_traces: int) -> None:
    """Raise UnknownNameError / UserError for a bad --targets, --trace-rule or --max-traces."""
    if targets not in TARGETS:
        raise UnknownNameError("training target", targets, TARGETS)
    if rule not in TRACE_RULES:
        raise UnknownNameError("trace rule", rule, TRACE_RULES)
    if max_traces < 1:
        raise UserError(f"max_traces={max_traces} must be at least 1")


def teacher_targets(items: list[Item], run_dir: Path, rule: str = "shortest", max_traces: int = 1,
                    teacher: str | None = None) -> tuple[dict[str, list[Target]], int]:
    """For each item, up to `max_traces` of the teacher's samples that scored 1 (picked by `rule`),
    their text exactly as the teacher wrote it (a `<think>` block included); and how many items had
    no correct sample (left out). Raises UserError when the run holds no teacher samples, or for
    rule `logprob` when the samples carry no log-probs, or when `teacher` (a model spec) is not the
    model the samples came from."""
    scores = ScoreStore(run_dir)
    samples = scores.samples("teacher")
    if not samples:
        raise UserError(f"{run_dir} has no {ScoreStore.samples_file('teacher')}: score it first (a screened run "
                        "keeps the samples of the items it kept)")
    model = scores.meta().get("teacher")
    if teacher is not None:
        from deltaprompts.models.specs import load_backend

        want = load_backend(teacher).identity
        if want != model:
            raise UserError(f"the teacher samples of {run_dir} come from {model}, not {want}: score the run with "
                            f"--teacher {teacher} first (into a copy, or move scores/ away)")
    by_item: dict[str, list] = {}
    for s in samples.values():
        if s.score >= 1.0:
            by_item.setdefault(s.item, []).append(s)
    if rule == "logprob" and any(s.logprob is None or not s.tokens for ss in by_item.values() for s in ss):
        raise UserError("--trace-rule logprob: the teacher's samples carry no log-probs; score with a backend "
                        "that returns them (hf:, or openai: with logprobs), or use --trace-rule shortest")
    out: dict[str, list[Target]] = {}
    dropped = 0
    for it in items:
        good = by_item.get(it.id, [])
        if not good:
            dropped += 1
            continue
        if rule == "shortest":
            good = sorted(good, key=lambda s: (len(s.text), s.index))
        elif rule == "logprob":
            good = sorted(good, key=lambda s: (-s.logprob / s.tokens, s.index))
        else:
            good = sorted(good, key=lambda s: s.index)
        out[it.id] = [Target(text=s.text, source="teacher", model=model, sample=s.index, score=s.score,
                             logprob=s.logprob / s.tokens if s.logprob is not None and s.tokens else None)
                      for s in good[:max_traces]]
    return out, dropped
