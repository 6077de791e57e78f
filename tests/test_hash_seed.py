"""A run's bytes do not depend on Python's hash seed: no family draws from the order of a set or a
frozenset (Faker's it_IT cities once did), so two processes with different PYTHONHASHSEED agree."""

import os
import subprocess
import sys
from pathlib import Path

from deltaprompts.generators.base import FAMILIES


def run(tmp_path, hash_seed: str, families: list[str], knobs: list[str]):
    out = tmp_path / f"run{hash_seed}"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    cli = Path(sys.executable).parent / "deltaprompts"
    res = subprocess.run([str(cli), "generate", "--family", ",".join(families), "--n", str(2 * len(families)),
                          "--seed", "3", "--out", str(out), "--quiet", "--balance-ratio", "0",
                          *[a for k in knobs for a in ("--knob", k)]],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    items = b"".join(p.read_bytes() for p in sorted((out / "items").glob("*.jsonl")))
    images = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "images").rglob("*.png"))}
    return items, images


def _choices(family: str, knob: str) -> tuple:
    for k in FAMILIES.get(family).knobs:
        if k.name == knob:
            return tuple(k.choices or ())
    return ()


def test_two_hash_seeds_write_the_same_items_and_images(tmp_path):
    # every document family (Faker, locales, fields dicts) and the perception families; charts are covered
    # by the byte-identity runs of tests/generators, and scene.clevr3d renders take seconds
    families = [f for f in FAMILIES.names() if f.startswith(("document.", "scene.")) and f != "scene.clevr3d"]
    # Italian where a family has a locale knob (the locale whose Faker cities came from a set)
    knobs = [f"{f}:locale=it_IT" for f in families if "it_IT" in (FAMILIES.get(f)().resolve_knobs({}) and
                                                                  _choices(f, "locale"))]
    items_a, images_a = run(tmp_path, "1", families, knobs)
    items_b, images_b = run(tmp_path, "2", families, knobs)
    assert items_a == items_b
    assert images_a == images_b
