"""Answers scored per second on one core, per answer type, over a mix of realistic model outputs."""

from __future__ import annotations

import argparse
import random
import time

from deltaprompts.verifiers import score_answer
from deltaprompts.verifiers.latex import available as math_verify_available
from deltaprompts.verifiers.scoring import _plain_truth

OPTIONS = {"A": "cat", "B": "dog", "C": "bird", "D": "fish"}
_FILLER = (
    "Looking at the chart, the bars are labelled by year and the y axis is in thousands. "
    "The tallest bar is the third one, and the legend shows two series, so I compare them. "
)


def _wrap(rng: random.Random, answer: str) -> str:
    """One model output around `answer`, in one of the surface forms reasoning models produce."""
    reasoning = _FILLER * rng.randint(1, 4)
    forms = [
        answer,
        f"The answer is {answer}.",
        f"<think>{reasoning}</think>The answer is {answer}",
        f"<think>{reasoning}</think>\n<answer>{answer}</answer>",
        f"{reasoning}So the final result is \\boxed{{{answer}}}.",
        f"{reasoning}\n**Answer:** {answer}",
        "I cannot determine this from the image.",
        f"<think>{reasoning}",  # truncated: never closed
        reasoning * 2,  # long reasoning with no conclusion
    ]
    return rng.choices(forms, weights=[4, 3, 4, 3, 3, 3, 1, 1, 1])[0]


SAMPLES_PER_ITEM = 8


def _cases(rng: random.Random) -> dict[str, list[tuple[str, str, dict | None]]]:
    """(prediction, ground truth, options) triples per answer type: 250 items, 8 samples each."""
    out: dict[str, list[tuple[str, str, dict | None]]] = {}

    def add(kind: str, truth: str, answers: list[str], options: dict | None = None) -> None:
        samples = out.setdefault(kind, [])
        for _ in range(SAMPLES_PER_ITEM):
            samples.append((_wrap(rng, rng.choice(answers)), truth, options))

    for _ in range(250):
        v = round(rng.uniform(-5000, 5000), rng.choice([0, 1, 2]))
        add("number", str(v), [f"{v}", f"{v:,}", f"{v * 1.03:.2f}", f"{v * 1.2:.2f}", f"{v:.3e}"])
        n = rng.randint(0, 40)
        add("count", str(n), [str(n), str(n + 1), "three", f"{n} bars"])
        p = rng.randint(1, 99)
        add("percent", f"{p}%", [f"{p}%", str(p), f"{p / 100}", f"{p} percent", f"{p + 7}%"])
        c = rng.randint(1, 900)
        add("currency", f"${c}", [f"${c}", f"${c}M", f"USD {c}", f"€{c}", f"{c} dollars"])
        y = rng.randint(1990, 2030)
        add("year", str(y), [str(y), str(y + 1), f"in {y}"])
        word = rng.choice(["Germany", "blue", "Q3 revenue", "the red line", "North America"])
        add("string", word, [word, word.upper(), f"{word}.", "France"])
        add("yes_no", rng.choice(["Yes", "No"]), ["Yes", "no", "Yes, it is.", "No."])
        letter = rng.choice("ABCD")
        add("choice", letter, [letter, f"({letter})", f"{letter}. {OPTIONS[letter]}",
                                          f"the {OPTIONS[letter]}", "A"], OPTIONS)
        a, b = sorted(rng.sample(range(2000, 2025), 2))
        add("list", f"{a}|{b}", [f"{a}, {b}", f"{b}, {a}", f"{a} and {b}", f"{a}"])
        add("set", f"{a}|{b}", [f"{a}, {b}", f"{b}; {a}", f"{a}"])
        span = rng.choice(["ITC Limited", "March 3, 2021", "Total assets", "Dr. Jane Smith"])
        add("span", span, [span, span.lower(), span[:-2], "N/A"])
        num, den = rng.randint(1, 9), rng.randint(2, 9)
        add("latex", f"\\frac{{{num}}}{{{den}}}", (
            [f"\\frac{{{num}}}{{{den}}}", f"\\frac{{{2 * num}}}{{{2 * den}}}", f"{num / den:.6f}", "\\sqrt{2}"]))
    return out


def _rate(cases: list[tuple[str, str, dict | None]], kind: str, min_seconds: float) -> tuple[float, float]:
    """(answers per CPU second of this process, answers per wall-clock second), over passes of
    `cases` lasting at least `min_seconds` of CPU time.

    CPU time is the per-core figure, robust on a shared machine; wall-clock time is the one that
    counts for LaTeX, whose work happens in the Math-Verify worker process. The parsed-ground-truth
    cache is emptied before every pass, so each item's ground truth is parsed once per pass, as
    when an item's samples are scored once.
    """
    done, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
    while True:
        _plain_truth.cache_clear()
        for prediction, truth, options in cases:
            score_answer(prediction, truth, kind, options)
        done += len(cases)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if cpu >= min_seconds or wall >= 20 * min_seconds:
            return done / cpu, done / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timing per answer type")
    args = parser.parse_args()
    cases = _cases(random.Random(0))
    print(f"{'answer type':<12} {'per CPU-second':>15} {'per wall-second':>16}")
    for kind in sorted(cases):
        if kind != "latex":
            cpu, wall = _rate(cases[kind], kind, args.seconds)
            print(f"{kind:<12} {cpu:>15,.0f} {wall:>16,.0f}")
    if not math_verify_available():
        print("latex: skipped, math-verify is not installed")
        return
    score_answer("\\frac{1}{2}", "0.5", "latex")  # start the worker outside the timing
    frac = [(f"\\boxed{{\\frac{{{n}}}{{7}}}}", f"{n / 7:.4f}", None) for n in range(1, 200)]
    # One pass each (Math-Verify manages ~100 answers a second); the worker keeps its parse cache.
    for label, kind, batch in [("latex", "latex", cases["latex"][:400]), ("number+frac", "number", frac)]:
        _, wall = _rate(batch, kind, 0.0)
        print(f"{label:<12} {'(worker)':>15} {wall:>16,.0f}   Math-Verify in its worker process")


if __name__ == "__main__":
    main()
