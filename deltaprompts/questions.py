"""Question templates: typed slots, a program, jinja2 phrasings; turned into Questions over Facts.

A template is a YAML file (see templates/questions/). It is checked when loaded: the program
parses and type-checks against the registered ops, every slot it uses is declared, and every
phrasing compiles in a jinja2 sandbox. Errors name the file, the template and the op.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deltaprompts import engine
from deltaprompts.errors import ProgramError, TemplateError, validation_message
from deltaprompts.records import AnswerType, Facts, Node, Question, Scalar
from deltaprompts.rng import base_values, extensible_choice, phrasing_key
from deltaprompts.sandbox import BoundedSandbox, render_bounded
from deltaprompts.files import read_text
from deltaprompts.tolerances import EXACT, NUMERIC_TYPES, Tolerance, needs_decimals, tolerance_for

#: libyaml's parser where PyYAML was built with it (7x faster over the built-in templates, same objects)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
JINJA = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=4096)
def _compiled(text: str):  # compiling a phrasing costs more than rendering it; make_question runs per item
    return JINJA.from_string(text)
LETTERS = "ABCDEFGH"


class Slot(BaseModel):
    """How one `$slot` is filled from the Facts: a value of an entity attribute, a literal
    choice, or a numeric threshold between two distinct values of an attribute."""

    model_config = ConfigDict(extra="forbid")
    attr: str | None = None
    choices: list[Scalar] | None = None
    threshold: str | None = None
    distinct_from: list[str] = Field(default_factory=list)
    where: dict[str, str] = Field(default_factory=dict, description="attr -> an earlier slot: draw `attr` values "
                                  "only from entities with those values (the colour of a cube: {shape: s}).")


class Requires(BaseModel):
    """Conditions on the Facts for a template to apply."""

    model_config = ConfigDict(extra="forbid")
    min_entities: int = 1
    min_distinct: dict[str, int] = Field(default_factory=dict)
    max_distinct: dict[str, int] = Field(default_factory=dict)
    attrs: list[str] = Field(default_factory=list)
    fields: list[str] = Field(default_factory=list)


class QuestionTemplate(BaseModel):
    """One question family: a program with typed slots and several phrasings."""

    model_config = ConfigDict(extra="forbid")
    name: str
    domain: str
    applies_to: list[str] = Field(default_factory=lambda: ["*"], description="Family name globs.")
    exclude: list[str] = Field(default_factory=list, description="Family name globs it never applies to.")
    answer_type: AnswerType
    skills: list[str] = Field(default_factory=list)
    steps: int | None = None
    tolerance: float | None = Field(default=None, ge=0.0, description="A relative tolerance of the template's own; "
                                    "else it follows from the render (deltaprompts.tolerances).")
    decimals: int | None = Field(default=None, ge=0, le=6, description="A rounded numeric answer (mean, ratio, "
                                 "share) is given to this many decimals, and the question says so.")
    multiple_choice: bool = True
    requires: Requires = Field(default_factory=Requires)
    slots: dict[str, Slot] = Field(default_factory=dict)
    program: Node
    phrasings: list[str]
    source: str = ""

    def applies(self, family: str, facts: Facts) -> bool:
        """Whether this template can ask about a render of `family` with these Facts."""
        return self.asks_about(family, facts.domain) and self.fits(facts)

    def asks_about(self, family: str, domain: str) -> bool:
        """Whether this template asks about renders of `family` (of `domain`) at all: its domain,
        `applies_to` and `exclude` globs."""
        if domain != self.domain or not any(fnmatch.fnmatchcase(family, g) for g in self.applies_to):
            return False
        return not any(fnmatch.fnmatchcase(family, g) for g in self.exclude)

    def fits(self, facts: Facts) -> bool:
        """Whether these Facts have what the template `requires` (entities, fields, attributes, distinct values)."""
        r = self.requires
        ents = facts.entities
        if len(ents) < r.min_entities or any(facts.fields.get(f) is None for f in r.fields):
            return False
        if any(a not in e.attrs for a in r.attrs for e in ents):
            return False
        for attr, n in r.min_distinct.items():
            if len({e.attrs.get(attr) for e in ents if attr in e.attrs}) < n:
                return False
        for attr, n in r.max_distinct.items():
            if len({e.attrs.get(attr) for e in ents if attr in e.attrs}) > n:
                return False
        return True


def ops_count(node: Node) -> int:
    """How many ops a program applies (its `steps`)."""
    return 1 + sum(ops_count(a) for a in node.args)


def load_template(path: Path | str, text: str | None = None) -> QuestionTemplate:
    """Load and check one template file; raises TemplateError naming the file and the problem."""
    name = str(path)
    text = text if text is not None else read_text(path)
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError:
        try:  # PyYAML's own parser says where and what, in the words users know
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise TemplateError(f"{name}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise TemplateError(f"{name}: expected a mapping with name, domain, answer_type, program, phrasings")
    if isinstance(raw.get("program"), str):
        try:
            raw["program"] = engine.parse(raw["program"]).model_dump()
        except TemplateError as e:
            raise TemplateError(f"{name}: {e}") from None
    raw["source"] = name
    try:
        tpl = QuestionTemplate.model_validate(raw)
    except ValidationError as e:
        raise TemplateError(f"{name}: {validation_message(e)}") from None
    where = f"{name} (template {tpl.name})"
    engine.type_check(tpl.program, where)
    missing = engine.slots_of(tpl.program) - set(tpl.slots)
    if missing:
        raise TemplateError(f"{where}: program uses undeclared slot(s) {sorted(missing)}; declared: {sorted(tpl.slots)}")
    for s_name, slot in tpl.slots.items():
        if sum(x is not None for x in (slot.attr, slot.choices, slot.threshold)) != 1:
            raise TemplateError(f"{where}: slot {s_name!r} needs exactly one of attr, choices, threshold")
        earlier = list(tpl.slots)[:list(tpl.slots).index(s_name)]
        if slot.where and (slot.attr is None or not set(slot.where.values()) <= set(earlier)):
            raise TemplateError(f"{where}: slot {s_name!r}: `where` needs attr and names earlier slots "
                                f"(earlier: {earlier or 'none'}), got {slot.where}")
    if not tpl.phrasings:
        raise TemplateError(f"{where}: needs at least one phrasing")
    for i, text_ in enumerate(tpl.phrasings):
        try:
            _compiled(text_)
        except TemplateSyntaxError as e:
            raise TemplateError(f"{where}: phrasing {i + 1}: {e}") from None
    if tpl.decimals is not None and tpl.answer_type not in NUMERIC_TYPES:
        raise TemplateError(f"{where}: decimals applies to {', '.join(NUMERIC_TYPES)} answers, "
                            f"not {tpl.answer_type!r}")
    rounding = needs_decimals(tpl.program)
    if tpl.answer_type in NUMERIC_TYPES and rounding and tpl.decimals is None and tpl.tolerance is None:
        raise TemplateError(f"{where}: op {rounding[0]!r} gives an answer that must be rounded; set decimals "
                            f"(e.g. decimals: {2 if tpl.answer_type == 'number' else 1}) and the question states it")
    if tpl.steps is None:
        tpl.steps = ops_count(tpl.program)
    return tpl


def _template_files(dirs: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for d in dirs:
        files.extend(sorted(Path(d).rglob("*.yaml")))
    return files


@lru_cache(maxsize=8)
def load_templates(extra_dirs: tuple[str, ...] = ()) -> tuple[QuestionTemplate, ...]:
    """Load the built-in question templates plus any in `extra_dirs`; names must be unique."""
    builtin = Path(str(resources.files("deltaprompts.templates") / "questions"))
    for d in extra_dirs:
        if not Path(d).is_dir():
            what = "is a file, not a folder" if Path(d).exists() else "does not exist"
            raise TemplateError(f"template folder {d} {what}; --templates takes a folder of question template "
                                ".yaml files")
    out: dict[str, QuestionTemplate] = {}
    for f in _template_files([builtin, *map(Path, extra_dirs)]):
        tpl = load_template(f)
        if tpl.name in out:
            raise TemplateError(f"question family {tpl.name!r} is defined twice: {out[tpl.name].source} and {f}")
        out[tpl.name] = tpl
    return tuple(out[k] for k in sorted(out))


# ---------------------------------------------------------------- filling a template


def _distinct(facts: Facts, attr: str, where: dict[str, Scalar] | None = None) -> list[Scalar]:
    seen: dict[Scalar, None] = {}
    for e in facts.entities:
        if attr in e.attrs and all(e.attrs.get(a) == v for a, v in (where or {}).items()):
            seen.setdefault(e.attrs[attr], None)
    return list(seen)


def _nice_threshold(lo: float, hi: float) -> float:
    """A round number strictly between lo and hi (so no entity sits on the threshold)."""
    span = hi - lo
    for step in (10 ** k * m for k in range(6, -4, -1) for m in (5, 2, 1)):
        if step >= span:
            continue
        t = math.floor(hi / step) * step
        if lo < t < hi:
            return round(t, 6)
    return round((lo + hi) / 2, 6)


def fill_slots(tpl: QuestionTemplate, facts: Facts, rng: np.random.Generator) -> dict[str, Scalar]:
    """Choose a value for every slot; raises ProgramError("no_slot_value") when none fits."""
    values: dict[str, Scalar] = {}
    for name, slot in tpl.slots.items():
        if slot.attr is not None:
            pool = _distinct(facts, slot.attr, {a: values[w] for a, w in slot.where.items()})
        elif slot.choices is not None:
            pool = list(slot.choices)
        else:
            nums = sorted({float(v) for v in _distinct(facts, slot.threshold) if not isinstance(v, (bool, str))})  # type: ignore[arg-type]
            if len(nums) < 2:
                raise ProgramError("no_slot_value", f"slot {name}: fewer than 2 distinct {slot.threshold} values")
            i = int(rng.integers(0, len(nums) - 1))
            pool = [_nice_threshold(nums[i], nums[i + 1])]
        taken = {values[d] for d in slot.distinct_from if d in values}
        pool = [v for v in pool if v not in taken]
        if not pool:
            raise ProgramError("no_slot_value", f"slot {name}: no value left to choose")
        values[name] = pool[int(rng.integers(0, len(pool)))]
    return values


_WIDE = Context(prec=60)


def _fmt_number(v: float, digits: int = 2) -> str:
    """`v` rounded half up to `digits` decimals (after dropping float noise below 1e-9), without
    trailing zeros: 2.125 -> '2.13', 8.200000000000001 -> '8.2'."""
    exact = Decimal(repr(float(v))).quantize(Decimal("1e-9"), context=_WIDE)
    text = f"{exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP, context=_WIDE):f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


_PLACES = ("no", "one", "two", "three", "four", "five", "six")


def rounding_note(decimals: int) -> str:
    """The sentence a question with a rounded answer ends with: 'Round to two decimal places.'"""
    if decimals == 0:
        return "Round to the nearest whole number."
    return f"Round to {_PLACES[decimals]} decimal place{'s' if decimals != 1 else ''}."


def format_answer(value: Any, answer_type: str, facts: Facts, decimals: int | None = None) -> str:
    """Format a program's output as the ground-truth string for its answer type; numbers and
    percentages get at most `decimals` decimals (default 2 and 1), rounded half up."""
    if answer_type in ("list", "set"):
        if not isinstance(value, list):
            raise ProgramError("type", f"{answer_type} answer needs a list, got {value!r}")
        return "|".join(format_answer(v, "number" if isinstance(v, (int, float)) else "string", facts) for v in value)
    if answer_type == "yes_no":
        if not isinstance(value, bool):
            raise ProgramError("type", f"yes_no answer needs a bool, got {value!r}")
        return "Yes" if value else "No"
    if answer_type in ("number", "count", "percent", "currency", "year"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProgramError("type", f"{answer_type} answer needs a number, got {value!r}")
        if answer_type in ("count", "year"):
            if not float(value).is_integer():
                raise ProgramError("type", f"{answer_type} answer needs an integer, got {value!r}")
            return str(int(value))
        if answer_type == "percent":
            return _fmt_number(value, 1 if decimals is None else decimals) + "%"
        if answer_type == "currency":
            return f"{facts.context.get('currency_symbol', '$')}{float(value):.2f}"
        return _fmt_number(value, 2 if decimals is None else decimals)
    return str(value)


def _distractors(tpl: QuestionTemplate, value: Any, answer: str, facts: Facts, rng: np.random.Generator,
                 decimals: int | None = None) -> list[str]:
    """Plausible wrong options drawn from the Facts: other values of the attribute the answer
    came from, then (for numbers) nearby values; never the answer itself."""
    pool: list[Any] = []
    attr = tpl.program.params.get("attr") if tpl.program.op == "query" else None
    if isinstance(attr, str):
        pool = _distinct(facts, attr)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        pool = [float(value) * f for f in (0.5, 0.8, 1.25, 1.5, 2.0)]
        if tpl.answer_type == "count":
            pool = [value + d for d in (-2, -1, 1, 2, 3) if value + d >= 0]
    seen, out = {answer}, []
    for v in pool:
        text = format_answer(v, tpl.answer_type, facts, decimals) if tpl.answer_type not in ("string", "span") \
            else str(v)
        if text not in seen:
            seen.add(text)
            out.append(text)
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def make_question(tpl: QuestionTemplate, facts: Facts, rng: np.random.Generator, mc_fraction: float = 0.0) -> Question:
    """Fill, execute and phrase one template over Facts.

    Raises ProgramError with a reason tag when the result is ill-posed: no slot value, a tie,
    a non-unique referent, a degenerate step, or an answer of the wrong type.
    """
    slots = fill_slots(tpl, facts, rng)
    program = engine.bind(tpl.program, slots)
    value = engine.execute(program, facts)
    step = engine.degenerate_step(program, facts)
    if step:
        raise ProgramError("degenerate", f"{tpl.name}: step {step!r} changes nothing")
    tol = question_tolerance(tpl, program, value, facts)
    answer = format_answer(value, tpl.answer_type, facts, tol.decimals)
    # a phrasing added to a template takes its share of questions and moves none from another phrasing
    k = extensible_choice(rng, range(len(tpl.phrasings)), name=lambda i: phrasing_key(tpl.phrasings[i]),
                          base=base_values(f"phrasings.{tpl.name}"))
    ctx = {**facts.context, **slots}
    try:
        text = " ".join(render_bounded(_compiled(tpl.phrasings[k]), ctx).split())
    except Exception as e:  # a phrasing naming a context word this render lacks
        raise TemplateError(f"{tpl.source} (template {tpl.name}) phrasing {k + 1}: {e}") from None
    if tpl.decimals is not None:
        text += " " + rounding_note(tpl.decimals)
    answer_type: str = tpl.answer_type
    options = None
    if tpl.multiple_choice and mc_fraction > 0 and rng.random() < mc_fraction:
        wrong = _distractors(tpl, value, answer, facts, rng, tol.decimals)[:3]
        if len(wrong) >= 2:
            opts = [answer, *wrong]
            perm = rng.permutation(len(opts))
            options = {LETTERS[i]: opts[j] for i, j in enumerate(perm)}
            letter = next(L for L, t in options.items() if t == answer)
            text += " Options: " + " ".join(f"({L}) {t}" for L, t in options.items())
            answer, answer_type = letter, "choice"
            tol = EXACT
    return Question(text=text, program=program, answer=answer, answer_type=answer_type, value=value,
                    options=options, tolerance=tol.rel_tol, abs_tol=tol.abs_tol, tolerance_source=tol.source,
                    question_family=tpl.name, template=f"{Path(tpl.source).name}#{k + 1}", source="template",
                    locale=question_locale(facts))


def question_locale(facts: Facts) -> str | None:
    """The locale a render prints its numbers in (Facts.context["locale"]), for Question.locale;
    None for English conventions (en_*) or no locale, so such questions carry no locale field."""
    loc = facts.context.get("locale")
    return loc if isinstance(loc, str) and loc.split("_")[0] != "en" else None


def question_tolerance(tpl: QuestionTemplate, program: Node, value: Any, facts: Facts) -> Tolerance:
    """The tolerance of one question of `tpl` (its bound program and answer `value`) over Facts:
    the template's own relative tolerance if it sets one, else what the render justifies
    (deltaprompts.tolerances.tolerance_for). Raises ProgramError as tolerance_for does."""
    if tpl.tolerance is not None:
        return Tolerance("template", tpl.tolerance, None, tpl.decimals)
    return tolerance_for(program, value, tpl.answer_type, facts, tpl.decimals)


def templates_for(family: str, facts: Facts, templates: Iterable[QuestionTemplate]) -> list[QuestionTemplate]:
    """The templates that apply to one render (a tuple of templates, as load_templates gives, is sorted
    by family once: only `requires` is checked per render)."""
    if not isinstance(templates, tuple):
        return [t for t in templates if t.applies(family, facts)]
    return [t for t in _asking_about(templates, family, facts.domain) if t.fits(facts)]


#: (id of a templates tuple, family, domain) -> (that tuple, its templates asking about the family); the
#: tuple is kept so its id cannot be reused by another while the entry lives
_ASKING: dict[tuple[int, str, str], tuple[tuple[QuestionTemplate, ...], tuple[QuestionTemplate, ...]]] = {}


def _asking_about(templates: tuple[QuestionTemplate, ...], family: str, domain: str) -> tuple[QuestionTemplate, ...]:
    key = (id(templates), family, domain)
    hit = _ASKING.get(key)
    if hit is None or hit[0] is not templates:
        if len(_ASKING) >= 1024:
            _ASKING.clear()
        hit = _ASKING[key] = (templates, tuple(t for t in templates if t.asks_about(family, domain)))
    return hit[1]
