"""Build small runs for the export, split and report tests: generated items plus hand-written Deltas."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from deltaprompts.divergence.records import Delta
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.store import RunStore


def make_run(path: Path, families: tuple[str, ...] = ("scene.shapes",), n: int = 12, per_image: int = 1,
             seed: int = 0) -> Path:
    """A generated run of `n` items (no model involved)."""
    fams = list(families)
    generate(GenerateConfig(families=fams, n=n, seed=seed, knobs=resolve_all_knobs(fams, {}),
                            questions_per_image=per_image), path)
    return path


def fake_delta(item, k: int = 8) -> Delta:
    """A Delta for one item, made up from a hash of its id: the teacher mostly right, the student spread."""
    h = int(hashlib.sha256(item.id.encode()).hexdigest(), 16)
    right = item.question.answer
    t_right, s_right = 6 + h % 3, h % 9
    teacher = {right: t_right, "other": k - t_right} if t_right < k else {right: k}
    student = {c: n for c, n in ((right, s_right), ("other", k - s_right)) if n}
    value = 0.5 * sum(abs(teacher.get(c, 0) - student.get(c, 0)) / k for c in set(teacher) | set(student))
    return Delta(item=item.id, family=item.family, question_family=item.question.question_family, metric="tv", value=value,
                 values={"tv": value, "js": value / 2, "kl": value, "gap": (t_right - s_right) / k}, teacher=teacher,
                 student=student, teacher_accuracy=min(t_right, k) / k, student_accuracy=s_right / k, n_teacher=k,
                 n_student=k, ci=(max(0.0, value - 0.1), min(1.0, value + 0.1)), ci_level=0.95, bootstrap=100,
                 zero_delta=teacher == student, rounds=1, stop="fixed", simulated=False)


def score_by_hand(run: Path, zero_every: int = 4) -> dict[str, Delta]:
    """Write scores/deltas.jsonl (and meta.json) for every item; every `zero_every`-th item gets Δ = 0."""
    deltas = {}
    for n, item in enumerate(RunStore(run).iter_items()):
        d = fake_delta(item)
        if zero_every and n % zero_every == 0:
            d = d.model_copy(update={"value": 0.0, "student": dict(d.teacher), "zero_delta": True,
                                     "student_accuracy": d.teacher_accuracy})
        deltas[item.id] = d
    (run / "scores").mkdir(exist_ok=True)
    (run / "scores" / "deltas.jsonl").write_text("".join(d.model_dump_json() + "\n" for d in deltas.values()))
    (run / "scores" / "meta.json").write_text(json.dumps({"teacher": "hand:teacher", "student": "hand:student",
                                                          "k": 8, "metric": "tv", "simulated": False}))
    return deltas
