"""Issue 17: the bad input a careless user or a hostile file produces gets one clear line, never a traceback.

One table: each row makes its bad input in a fresh folder (a copy of one tiny run where it needs a run),
runs one command through the CLI, and checks the exit code, a single `error:` line holding the expected
words, no traceback, and that nothing was written where it should not be. Classes: missing, wrong type,
out of range, non-finite, corrupted, hostile, unwritable.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deltaprompts.cli import app

BAD = b"caf\xe9 \xff\n"  # Latin-1 bytes: not UTF-8
SIM = ["--teacher", "sim:teacher?skill=0.95&zero=0.3", "--student", "sim:student?skill=0.3&zero=0.3"]
CONFIG = """out = "{out}"
rounds = 1
random_seed = 3
[models]
teacher = "sim:teacher?skill=0.95&zero=0.3"
student = "sim:student?skill=0.3&zero=0.3"
k = 4
[seed.generate]
families = ["scene.shapes"]
n = 4
[synthesize]
budget = 4
"""



@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bad") / "run"
    res = CliRunner().invoke(app, ["generate", "--family", "scene.shapes", "--n", "4", "--seed", "1",
                                   "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return out


@dataclass
class Ctx:
    tmp: Path
    source: Path

    @property
    def run(self) -> Path:
        """A private copy of the tiny run (made on first use), free to tamper with."""
        dst = self.tmp / "run"
        if not dst.exists():
            shutil.copytree(self.source, dst)
        return dst

    def shard(self) -> Path:
        return sorted((self.run / "items").glob("shard-*.jsonl"))[0]

    def write(self, name: str, data: bytes | str) -> Path:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    def config(self, name: str = "c.toml", text: str | None = None, **replace: str) -> Path:
        body = text if text is not None else CONFIG.format(out=self.tmp / "root")
        for k, v in replace.items():
            body = body.replace(k, v)
        return self.write(name, body)

    def jsonl(self, line: bytes) -> Path:
        return self.write("set.jsonl", line)


@dataclass
class Case:
    id: str
    make: Callable[[Ctx], list]  # the command line (after `deltaprompts`)
    words: str  # expected in the error line ("" for a usage error printed by typer)
    code: int = 2
    absent: Callable[[Ctx], Path] | None = None  # a path that must not exist afterwards
    marks: tuple = field(default_factory=tuple)


def _bad_shard(c: Ctx) -> Path:
    shard = c.shard()
    shard.write_bytes(shard.read_bytes() + BAD)
    return shard


def _edit_answer(c: Ctx) -> Path:
    shard = c.shard()
    lines = shard.read_text().splitlines()
    item = json.loads(lines[0])
    item["question"]["answer"] = "999" if item["question"]["answer"] != "999" else "998"
    shard.write_text("\n".join([json.dumps(item), *lines[1:]]) + "\n")
    return c.run


def _escape_image(c: Ctx) -> Path:
    shard = c.shard()
    lines = shard.read_text().splitlines()
    item = json.loads(lines[0])
    item["image"]["path"] = "../../evil.png"
    (c.tmp / "evil.png").write_bytes((c.run / json.loads(lines[0])["image"]["path"]).read_bytes())
    shard.write_text("\n".join([json.dumps(item), *lines[1:]]) + "\n")
    return c.run


def _template(c: Ctx, phrasing: str) -> Path:
    """A question template that applies to scene.shapes (so generate draws it) with `phrasing`."""
    return c.write("tpl/t.yaml", "name: my.count\ndomain: scene\napplies_to: [\"scene.*\"]\nanswer_type: count\n"
                                 "slots:\n  s: {attr: shape}\n"
                                 "program: \"count(filter[attr=shape, value=$s](scene()))\"\n"
                                 "phrasings: [\"" + phrasing + "\"]\n").parent


CASES = [
    # ------------------------------------------------------------------ missing
    Case("show-missing-run", lambda c: ["show", c.tmp / "nope"], "not a run directory"),
    Case("check-missing-run", lambda c: ["check", c.tmp / "nope"], "not a run directory"),
    Case("export-missing-run", lambda c: ["export", c.tmp / "nope", "-f", "llava", "-o", c.tmp / "e"], "nope",
         absent=lambda c: c.tmp / "e"),
    Case("run-missing-config", lambda c: ["run", c.tmp / "nope.toml"], "does not exist"),
    Case("generate-nothing-chosen", lambda c: ["generate", "--n", 2, "--out", c.tmp / "o"], "choose what to generate",
         absent=lambda c: c.tmp / "o"),
    Case("missing-templates-folder", lambda c: ["generate", "--family", "scene.shapes", "--n", 2, "--out", c.tmp / "o",
                                                "--templates", c.tmp / "nope"], "nope", absent=lambda c: c.tmp / "o",
         ),
    # ------------------------------------------------------------------ wrong type
    Case("generate-n-not-int", lambda c: ["generate", "--family", "scene.shapes", "--n", "two", "--out", c.tmp / "o"],
         "", absent=lambda c: c.tmp / "o"),
    Case("config-rounds-not-int", lambda c: ["run", c.config(**{"rounds = 1": 'rounds = "x"'})], "rounds",
         absent=lambda c: c.tmp / "root"),
    Case("options-without-letters", lambda c: ["score-answer", "A", "cat", "--options", "cat|dog"], "--options"),
    # ------------------------------------------------------------------ out of range
    Case("knob-out-of-range", lambda c: ["generate", "--family", "scene.shapes", "--knob", "n_objects=999", "--n", 2,
                                         "--out", c.tmp / "o"], "out of range", absent=lambda c: c.tmp / "o"),
    Case("distill-device-tpu", lambda c: ["distill", c.run, "--teacher", "toy:teacher", "--student",
                                          "toy:student", "-o", c.tmp / "d", "--mode", "off-policy", "--device", "tpu"],
         "--device 'tpu'", absent=lambda c: c.tmp / "d"),
    Case("generate-huge-n", lambda c: ["generate", "--family", "scene.shapes", "--n", "1" + "0" * 25, "--out", c.tmp / "o"],
         "", absent=lambda c: c.tmp / "o"),
    # ------------------------------------------------------------------ non-finite
    Case("check-min-text-px-nan", lambda c: ["check", c.run, "--min-text-px", "nan"], "--min-text-px"),
    Case("screen-min-delta-nan", lambda c: ["screen", c.run, "--min-delta", "nan", "-o", c.tmp / "s"], "min_delta",
         absent=lambda c: c.tmp / "s"),
    Case("mine-min-delta-nan", lambda c: ["mine", c.run, "--min-delta", "nan"], "min_delta"),
    Case("config-float-inf", lambda c: ["run", c.config(**{"k = 4": "k = 4\ntemperature = inf"})], "temperature",
         absent=lambda c: c.tmp / "root"),
    # ------------------------------------------------------------------ corrupted: invalid UTF-8 (item 8)
    Case("show-shard-not-utf8", lambda c: (_bad_shard(c), ["show", c.run])[1], "not UTF-8"),
    Case("check-shard-not-utf8", lambda c: (_bad_shard(c), ["check", c.run])[1], "not UTF-8"),
    Case("score-shard-not-utf8", lambda c: (_bad_shard(c), ["score", c.run, *SIM, "--k", 2, "-q"])[1], "not UTF-8",
         absent=lambda c: c.run / "scores"),
    Case("audit-shard-not-utf8", lambda c: (_bad_shard(c), ["audit", c.run, *SIM, "--k", 2])[1], "not UTF-8"),
    Case("manifest-not-utf8", lambda c: ((c.run / "manifest.json").write_bytes(BAD), ["show", c.run])[1],
         "manifest.json:1: not UTF-8"),
    Case("run-toml-not-utf8", lambda c: ["run", c.write("c.toml", BAD)], "c.toml:1: not UTF-8",
         absent=lambda c: c.tmp / "root"),
    Case("synthesize-toml-not-utf8", lambda c: ["synthesize", c.write("c.toml", BAD)], "c.toml:1: not UTF-8"),
    Case("seed-yaml-config-not-utf8", lambda c: ["seed", "--config", c.write("c.yaml", b"out: x\n" + BAD)],
         "c.yaml:2: not UTF-8"),
    Case("generate-template-not-utf8", lambda c: ["generate", "--family", "scene.shapes", "--n", 2, "--out", c.tmp / "o",
                                                  "--templates", c.write("tpl/t.yaml", BAD).parent], "t.yaml:1: not UTF-8",
         absent=lambda c: c.tmp / "o"),
    Case("score-prompt-j2-not-utf8", lambda c: ["score", c.run, *SIM, "--k", 2, "-q", "--prompt-format",
                                                c.write("p.j2", BAD)], "p.j2:1: not UTF-8",
         absent=lambda c: c.run / "scores"),
    Case("seed-jsonl-not-utf8", lambda c: ["seed", c.jsonl(b'{"image": "x.png", "question": "q", "answer": "a"}\n' + BAD),
                                           "--out", c.tmp / "s"], "set.jsonl:2: not UTF-8"),
    Case("audit-jsonl-not-utf8", lambda c: ["audit", c.jsonl(BAD), *SIM, "--k", 2, "-o", c.tmp / "a"],
         "set.jsonl:1: not UTF-8"),
    Case("seed-jsonl-not-json", lambda c: ["seed", c.jsonl(b"{not json\n"), "--out", c.tmp / "s"],
         "set.jsonl:1: not valid JSON"),
    Case("shard-not-json", lambda c: (c.shard().write_text("{oops\n"), ["show", c.run])[1], ":1: not a valid item"),
    Case("check-edited-answer", lambda c: ["check", _edit_answer(c)], "", code=1),
    Case("check-empty-shard", lambda c: (c.shard().write_text(""), ["check", c.run])[1], "", code=1,
         ),
    # ------------------------------------------------------------------ hostile
    Case("export-image-path-escape", lambda c: ["export", _escape_image(c), "-f", "llava", "-o", c.tmp / "e"],
         "outside", absent=lambda c: c.tmp / "e" / "evil.png"),
    Case("template-huge-output", lambda c: ["generate", "--family", "scene.shapes", "--n", 12, "--out", c.tmp / "o",
                                            "--templates", _template(c, "{{ 'a' * 300000000 }}")], "at most"),
    # ------------------------------------------------------------------ unwritable
    Case("generate-out-is-file", lambda c: ["generate", "--family", "scene.shapes", "--n", 2, "--out",
                                            c.write("afile", "")], "is a file"),
    Case("generate-out-under-file", lambda c: ["generate", "--family", "scene.shapes", "--n", 2, "--out",
                                               c.write("afile", "") / "x"], "is a file"),
    Case("schema-out-is-file", lambda c: ["schema", "--out", c.write("afile", "")], "is a file"),
    Case("show-gallery-is-file", lambda c: ((c.run / "gallery").write_text(""), ["show", c.run])[1], "is a file"),
    Case("distill-out-is-file", lambda c: ["distill", c.run, "--teacher", "toy:teacher", "--student", "toy:student",
                                           "-o", c.write("afile", ""), "--mode", "off-policy"], "is a file"),
    Case("config-out-is-file", lambda c: ["run", c.config(**{str(c.tmp / "root"): str(c.write("afile", ""))})],
         "config `out`"),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_gets_one_line_and_writes_nothing(case: Case, tiny_run: Path, tmp_path: Path):
    ctx = Ctx(tmp_path, tiny_run)
    args = [str(a) for a in case.make(ctx)]
    res = CliRunner().invoke(app, args)
    out = res.output
    assert "Traceback" not in out and not (res.exception and not isinstance(res.exception, SystemExit)), \
        f"{args}: {res.exception!r}\n{out}"
    assert res.exit_code == case.code, out
    if case.words:
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, out
        assert case.words in errors[0], out
    if case.absent is not None:
        assert not case.absent(ctx).exists(), f"{case.absent(ctx)} was written"
