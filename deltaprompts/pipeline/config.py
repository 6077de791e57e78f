"""The pipeline config (TOML or YAML): typed, validated, every error naming the key that is wrong."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deltaprompts.errors import UserError
from deltaprompts.records import AnswerType, Domain, Scalar
from deltaprompts.store import MAX_ITEMS
from deltaprompts.files import read_text

LAB_TEMPLATES = "@lab"
"""A template folder entry naming the lab's chart templates (the toy models were trained on them)."""


class _Section(BaseModel):
    # TOML and YAML can spell nan and inf; no setting of the pipeline means either
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ModelsConfig(_Section):
    """The two models and how they are sampled (`deltaprompts.score.score_run`)."""

    teacher: str = Field(description="Model spec, e.g. toy:teacher, hf:/models/big, openai:M@URL, sim:t.")
    student: str
    k: int = Field(default=8, ge=1, description="Samples per model per item.")
    adaptive: bool = False
    metric: Literal["tv", "js", "kl"] = "tv"
    temperature: float = Field(default=1.0, ge=0.0)
    max_new_tokens: int = Field(default=32, ge=1)
    prompt_format: str = "plain"
    batch_size: int = Field(default=32, ge=1)
    cache: bool = Field(default=True, description="Keep every response in ROOT/cache.sqlite.")


class GeneratedSeed(_Section):
    """Seeds rendered by the project's families: `n` items over `cells` knob draws per family."""

    families: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    n: int = Field(gt=0, le=MAX_ITEMS, description="Items in the seed set.")
    knobs: dict[str, Scalar] = Field(default_factory=dict, description="name or family:name -> value.")
    vary: dict[str, list[Scalar]] = Field(default_factory=dict, description="name or family:name -> [lo, hi] for a "
                                          "numeric knob, or the values to draw from for a bool/choice knob.")
    cells: int = Field(default=4, ge=1, le=10_000, description="Knob draws per family (1 when nothing varies).")
    questions_per_image: int = Field(default=1, ge=1, le=10)
    candidates_per_image: int = Field(default=3, ge=1, le=20, description="Template questions made per image to "
                                      "choose from (preferred and allowed question families first).")
    question_families: list[str] = Field(default_factory=list, description="Globs; empty: every question family.")
    mc_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    template_dirs: list[str] = Field(default_factory=list, description=f"Extra template folders; {LAB_TEMPLATES!r} "
                                     "names the lab chart templates.")


class ExternalSeed(_Section):
    """Seeds imported from a JSONL file or a Hugging Face dataset saved on disk (never the network)."""

    path: str
    name: str | None = Field(default=None, description="Names the set (family external.NAME); default: file stem.")
    format: Literal["auto", "jsonl", "hf"] = "auto"
    split: str | None = None
    image_column: str = "image"
    question_column: str = "question"
    answer_column: str = "answer"
    answer_type: AnswerType | Literal["infer"] = "infer"
    domain: Domain = "chart"
    tag_columns: list[str] = Field(default_factory=list, description="Columns kept as knobs (mined like knobs).")
    limit: int | None = Field(default=None, gt=0, le=MAX_ITEMS)


class SeedConfig(_Section):
    """Exactly one of `generate` and `external`."""

    generate: GeneratedSeed | None = None
    external: ExternalSeed | None = None

    @model_validator(mode="after")
    def _one(self) -> SeedConfig:
        if (self.generate is None) == (self.external is None):
            raise ValueError("give exactly one of [seed.generate] and [seed.external]")
        return self


class MineConfig(_Section):
    """How failure patterns are found (`deltaprompts.pipeline.mine`)."""

    event: Literal["delta", "failure"] = Field(default="delta", description="delta: screen would keep the item; "
                                               "failure: the student is mostly wrong, the teacher mostly right.")
    min_support: int = Field(default=5, ge=1)
    bins: int = Field(default=3, ge=2, le=10, description="Quantile bins of a numeric knob.")
    max_conditions: int = Field(default=2, ge=1, le=3, description="Conditions besides the family.")
    max_patterns: int = Field(default=20, ge=1)
    level: float = Field(default=0.95, gt=0.0, lt=1.0)
    describe: bool = Field(default=False, description="The teacher writes a paragraph per pattern.")
    describe_patterns: int = Field(default=5, ge=1)
    describe_examples: int = Field(default=3, ge=1, le=8)


class SynthesizeConfig(_Section):
    """How each round's budget is spent (`deltaprompts.pipeline.synthesize`, `.bandit`)."""

    budget: int = Field(gt=0, le=MAX_ITEMS, description="Items rendered per round.")
    arms: int = Field(default=4, ge=1, description="Top patterns that become bandit arms.")
    families: list[str] = Field(default_factory=list, description="Extra arms without a pattern (needed for an "
                                "external seed, whose families cannot be rendered).")
    knobs: dict[str, Scalar] = Field(default_factory=dict, description="Knobs of the `families` arms.")
    chunk: int = Field(default=8, ge=1, description="Items per Thompson draw and per render cell (one generate "
                       "call with its own knob draw): larger for large budgets.")
    prior_strength: float = Field(default=4.0, ge=0.0, description="Pseudo-items of a pattern's rate in its prior.")
    teacher_questions: bool = True
    teacher_candidates: int = Field(default=2, ge=1, le=8, description="Programs asked of the teacher per image.")
    teacher_temperature: float = Field(default=0.7, ge=0.0)
    teacher_max_new_tokens: int = Field(default=512, ge=16)
    structured_output: bool = Field(default=True, description="Ask OpenAI-compatible servers for a json_schema.")
    examples: int = Field(default=2, ge=0, le=6, description="Template questions shown to the teacher.")
    facts_chars: int = Field(default=6000, ge=500, description="Most characters of Facts JSON in the prompt.")


class ScreenConfig(_Section):
    """Which scored items are kept (`deltaprompts.screen.screen_run`)."""

    min_delta: float | None = Field(default=None, ge=0.0, description="Default: the metric's default threshold.")
    min_teacher_acc: float = Field(default=0.5, ge=0.0, le=1.0)
    rule: Literal["debiased", "confident", "plugin"] = Field(
        default="debiased", description="Keep rule (divergence.records.keep_decision): debiased, confident or plugin.")
    keep_seed: bool = Field(default=True, description="Kept seed items join the output set (as round 0).")


class PipelineConfig(_Section):
    """seed -> mine -> (synthesize -> score -> screen) x rounds, under the run root `out`."""

    out: str = Field(description="Run root (relative to the config file).")
    random_seed: int = 0
    rounds: int = Field(default=2, ge=0, le=1000)
    target: int | None = Field(default=None, gt=0, le=MAX_ITEMS, description="Stop once this many items are kept.")
    models: ModelsConfig
    seed: SeedConfig
    mine: MineConfig = Field(default_factory=MineConfig)
    synthesize: SynthesizeConfig
    screen: ScreenConfig = Field(default_factory=ScreenConfig)

    def keep_threshold(self) -> float:
        """The screen's Δ threshold: screen.min_delta, else the metric's default."""
        from deltaprompts.divergence.adaptive import DEFAULT_THRESHOLDS

        return DEFAULT_THRESHOLDS[self.models.metric] if self.screen.min_delta is None else self.screen.min_delta

    def resume_key(self) -> dict[str, Any]:
        """What must not change between a run and its resume (rounds and target may grow)."""
        data = json.loads(self.model_dump_json())
        data.pop("rounds")
        data.pop("target")
        return data


# ------------------------------------------------------------------ loading


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where `loc` points (the model of the section holding the bad key)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        candidates = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        model = candidates[0]
    return sorted(model.model_fields)


def describe_errors(e: ValidationError, where: str) -> str:
    """One line per validation error, naming the dotted key, the value and what is allowed."""
    lines = []
    for x in e.errors():
        loc = tuple(p for p in x["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = ".".join(map(str, loc)) or "(top level)"
        if x["type"] == "extra_forbidden":
            allowed = _allowed_keys(PipelineConfig, loc)
            lines.append(f"{where}: unknown key {key!r}; allowed here: {', '.join(allowed)}")
        elif x["type"] == "missing":
            lines.append(f"{where}: {key} is required")
        elif x["type"] == "value_error" and isinstance(x.get("input"), dict):  # a check across a whole section
            lines.append(f"{where}: {key}: {x['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"{where}: {key} = {x.get('input')!r}: {x['msg']}")
    return "\n".join(lines)


def _resolve_paths(cfg: PipelineConfig, base: Path) -> PipelineConfig:
    def rel(p: str) -> str:
        return p if p == LAB_TEMPLATES else str((base / Path(p).expanduser()).resolve())

    cfg.out = rel(cfg.out)
    if cfg.seed.external is not None:
        cfg.seed.external.path = rel(cfg.seed.external.path)
    if cfg.seed.generate is not None:
        cfg.seed.generate.template_dirs = [rel(p) for p in cfg.seed.generate.template_dirs]
        for i, d in enumerate(cfg.seed.generate.template_dirs):
            if d != LAB_TEMPLATES and not Path(d).is_dir():
                what = "is a file, not a folder" if Path(d).exists() else "does not exist"
                raise UserError(f"seed.generate.template_dirs[{i}] = {d!r} {what}; give a folder of question "
                                f"template .yaml files, or {LAB_TEMPLATES!r} for the lab templates")
    return cfg


def parse_config(data: Any, where: str = "config", base: Path | None = None) -> PipelineConfig:
    """Validate a config mapping; relative paths are resolved against `base` (default: the working
    directory). Raises UserError with one line per problem, each naming its key."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of sections (models, seed, mine, synthesize, screen)")
    try:
        cfg = PipelineConfig.model_validate(data)
    except ValidationError as e:
        raise UserError(describe_errors(e, where)) from None
    cfg = _resolve_paths(cfg, base or Path.cwd())
    check_names(cfg, where)
    return cfg


def load_config(path: Path | str) -> PipelineConfig:
    """Read and validate a `.toml`, `.yaml` or `.yml` config; raises UserError naming the file and key."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {p} does not exist")
    text = read_text(p)
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise UserError(f"config file {p}: expected a .toml, .yaml or .yml file")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise UserError(f"config file {p} is not valid {p.suffix[1:].upper()}: {e}") from None
    return parse_config(data, str(p), p.parent.resolve())


def check_names(cfg: PipelineConfig, where: str) -> None:
    """Families, domains and knobs must exist (errors name the key); model specs are checked when loaded."""
    from deltaprompts.generate import select_families
    from deltaprompts.generators.base import FAMILIES

    def named(key: str, fn: Any) -> Any:
        try:
            return fn()
        except UserError as e:
            raise UserError(f"{where}: {key}: {e}") from None

    g = cfg.seed.generate
    if g is not None:
        fams = named("seed.generate.families", lambda: select_families(g.families, g.domains))
        named("seed.generate.knobs", lambda: split_knobs(fams, g.knobs))
        named("seed.generate.vary", lambda: vary_spec(fams, g.vary))
    syn = cfg.synthesize
    for f in syn.families:
        named("synthesize.families", lambda f=f: FAMILIES.get(f))
    if syn.families:
        named("synthesize.knobs", lambda: split_knobs(syn.families, syn.knobs))
    if cfg.seed.external is not None and not syn.families:
        raise UserError(f"{where}: synthesize.families is required with [seed.external]: the families of an "
                        "imported set cannot be rendered, so name the families new items are drawn from")


def split_knobs(families: list[str], given: dict[str, Scalar]) -> dict[str, dict[str, Scalar]]:
    """Given knobs (`name` or `family:name`) per family, each value parsed by its Knob (defaults not
    filled in); raises UnknownNameError / KnobError."""
    from deltaprompts.errors import UnknownNameError
    from deltaprompts.generators.base import FAMILIES

    out: dict[str, dict[str, Scalar]] = {f: {} for f in families}
    for key, value in given.items():
        fam, _, name = key.rpartition(":")
        if fam and fam not in out:
            raise UnknownNameError("selected family", fam, families)
        targets = [fam] if fam else [f for f in families if any(k.name == name for k in FAMILIES.get(f).knobs)]
        if not targets:
            raise UnknownNameError("knob", name, sorted({k.name for f in families for k in FAMILIES.get(f).knobs}))
        for f in targets:
            knob = {k.name: k for k in FAMILIES.get(f).knobs}.get(name)
            if knob is None:
                raise UnknownNameError("knob", name, [k.name for k in FAMILIES.get(f).knobs], where=f" for family {f}")
            out[f][name] = knob.parse(value)
    return out


def vary_spec(families: list[str], vary: dict[str, list[Scalar]]) -> dict[str, dict[str, list[Scalar]]]:
    """The knobs drawn per cell, per family: numeric knobs as [lo, hi], others as value lists.
    Raises UserError / KnobError naming the knob."""
    from deltaprompts.generators.base import FAMILIES

    out: dict[str, dict[str, list[Scalar]]] = {f: {} for f in families}
    for key, values in vary.items():
        if not values:
            raise UserError(f"{key}: give [lo, hi] or a list of values")
        per = split_knobs(families, {key: values[0]})
        for fam, knobs in per.items():
            for name in knobs:
                knob = {k.name: k for k in FAMILIES.get(fam).knobs}[name]
                parsed = [knob.parse(v) for v in values]
                if knob.type in ("int", "float"):
                    if len(parsed) != 2 or parsed[0] > parsed[1]:  # type: ignore[operator]
                        raise UserError(f"{key}: a numeric knob varies over [lo, hi] with lo <= hi, got {values}")
                out[fam][name] = parsed
    return out
