"""The DeltaPrompts prompt set: the artefact the method publishes, one row per scored item with its
Δ, interval and accuracies, its family and question family, and the pattern and round it came
from (a parquet dataset with a card; `datasets.load_dataset(OUT)` reads it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deltaprompts.errors import UserError
from deltaprompts.exports import ExportOptions, export_format
from deltaprompts.exports.hf import CARD_CONFIGS, datasets_module, write_rows
from deltaprompts.records import Item
from deltaprompts.store import ScoreStore, atomic_write

_CARD = CARD_CONFIGS + """# {name}: a DeltaPrompts prompt set

{items} prompts from `{source}`, each scored by sampling a teacher ({teacher}) and a student
({student}) {k} times: `delta` is the {metric} divergence of their answer distributions (plug-in,
with a bootstrap interval `delta_lo`..`delta_hi`), `delta_debiased` its posterior mean and
`delta_lower` a one-sided lower bound; `zero_delta` is true when the two models cannot be told
apart (docs/divergence.md). `pattern` and `round` say which failure pattern and synthesis round
made the prompt (null for seed prompts). Answers are computed from the render; score predictions
with `deltaprompts.verifiers.score_answer(prediction, answer, answer_type, options, rel_tol=tolerance,
abs_tol=abs_tol)`.

```python
import datasets
ds = datasets.load_dataset("<this folder>")
```
"""


def features() -> Any:
    """The prompt set's columns."""
    ds = datasets_module()
    v = ds.Value
    return ds.Features({
        "id": v("string"), "image": ds.Image(), "question": v("string"), "answer": v("string"),
        "answer_type": v("string"), "options": v("string"), "tolerance": v("float64"), "abs_tol": v("float64"),
        "locale": v("string"), "metric": v("string"), "delta": v("float64"), "delta_lo": v("float64"), "delta_hi": v("float64"),
        "delta_debiased": v("float64"), "delta_lower": v("float64"), "zero_delta": v("bool"),
        "teacher_accuracy": v("float64"), "student_accuracy": v("float64"), "n_teacher": v("int64"),
        "n_student": v("int64"), "teacher": v("string"), "student": v("string"), "family": v("string"),
        "question_family": v("string"), "source": v("string"), "pattern": v("string"), "round": v("int64"),
        "more_images": [ds.Image()],
    })


def prompt_row(item: Item, delta: Any, meta: dict[str, Any], question: str) -> dict[str, Any]:
    """One prompt of the set (without its image)."""
    import json

    q, m = item.question, delta.metric
    rnd = item.tags.get("round")
    return {
        "id": item.id, "question": question, "answer": q.answer, "answer_type": q.answer_type,
        "options": json.dumps(q.options, sort_keys=True) if q.options else None, "tolerance": q.tolerance,
        "abs_tol": q.abs_tol, "locale": q.locale, "metric": m, "delta": float(delta.value), "delta_lo": float(delta.ci[0]),
        "delta_hi": float(delta.ci[1]), "delta_debiased": delta.debiased.get(m), "delta_lower": delta.lower.get(m),
        "zero_delta": bool(delta.zero_delta), "teacher_accuracy": float(delta.teacher_accuracy),
        "student_accuracy": float(delta.student_accuracy), "n_teacher": delta.n_teacher,
        "n_student": delta.n_student, "teacher": meta.get("teacher"), "student": meta.get("student"),
        "family": item.family, "question_family": q.question_family, "source": q.source,
        "pattern": str(item.tags["arm"]) if item.tags.get("arm") not in (None, "seed") else None,
        "round": int(rnd) if isinstance(rnd, int) else None,
    }


@export_format("promptset")
def export_promptset(items: list[Item], deltas: dict[str, Any], out: Path, options: ExportOptions) -> list[str]:
    """The `promptset` format: the scored items as the DeltaPrompts prompt set (parquet shards and a
    card). Raises UserError for an unscored run or items without a Delta."""
    from deltaprompts.exports import prompt_text

    missing = [it.id for it in items if it.id not in deltas]
    if not deltas or missing:
        raise UserError(f"the prompt set needs every item's Δ: {len(missing)} of {len(items)} items of "
                        f"{options.run_dir} have none; run `deltaprompts score` (and `screen`) first")
    meta = ScoreStore(options.run_dir).meta()
    files = write_rows(items, options.run_dir, out, options.split, options.shard_rows, features(),
                       lambda it: [prompt_row(it, deltas[it.id], meta, prompt_text(it, options.prompt_format))])
    first = deltas[items[0].id]
    atomic_write(out / "README.md", _CARD.format(
        split=options.split, name=options.final_out.name, source=options.run_dir, items=len(items),
        teacher=meta.get("teacher", "?"), student=meta.get("student", "?"), k=meta.get("k", first.n_teacher),
        metric=first.metric))
    return [*files, "README.md"]
