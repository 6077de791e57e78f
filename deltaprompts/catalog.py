"""Everything registered, as plain data: families, knobs, question families (for `list`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deltaprompts.generators.base import FAMILIES
from deltaprompts.programs import OPS
from deltaprompts.questions import load_templates


def catalog(template_dirs: tuple[str, ...] = ()) -> dict[str, list[dict[str, Any]]]:
    """Families, their knobs, question families and ops, as JSON-able lists."""
    families, knobs = [], []
    for name in FAMILIES.names():
        cls = FAMILIES.get(name)
        families.append({"name": name, "domain": cls.domain, "version": cls.version, "description": cls.description})
        if why := cls.unavailable():
            families[-1]["unavailable"] = why
        for k in cls.knobs:
            knobs.append({"family": name, "name": k.name, "type": k.type, "default": k.default, "allowed": k.allowed(),
                          "difficulty": k.difficulty, "help": k.help})
    questions = [{"name": t.name, "domain": t.domain, "answer_type": t.answer_type, "steps": t.steps,
                  "skills": t.skills, "applies_to": t.applies_to, "phrasings": t.phrasings,
                  "file": Path(t.source).name} for t in load_templates(template_dirs)]
    ops = [{"name": n, "inputs": list(OPS.get(n).inputs), "output": OPS.get(n).output,
            "params": dict(OPS.get(n).params), "doc": OPS.get(n).doc} for n in OPS.names()]
    return {"families": families, "knobs": knobs, "questions": questions, "ops": ops}
