"""Sampling chart Specs: curated topics, named palettes, and values kept distinct at the shown precision."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from faker import Faker
from pydantic import BaseModel, ConfigDict, ValidationError

from deltaprompts.errors import TemplateError, validation_message
from deltaprompts.files import read_text
from deltaprompts.generators.base import FAMILIES, choice
from deltaprompts.generators.chart_spec import ChartData, ChartStyle, Series

if TYPE_CHECKING:
    from deltaprompts.generators.chart_kind import ChartKind
from deltaprompts.rng import base_values, extensible_choice

# Named palettes: every colour has a plain name a person would use, so "what colour is X?"
# has one right answer; names are unique within a palette (a chart draws from one palette).
PALETTES: dict[str, tuple[tuple[str, str], ...]] = {
    "tableau": (("blue", "#1f77b4"), ("orange", "#ff7f0e"), ("green", "#2ca02c"), ("red", "#d62728"),
                ("purple", "#9467bd"), ("brown", "#8c564b"), ("pink", "#e377c2"), ("gray", "#7f7f7f"),
                ("olive", "#bcbd22"), ("cyan", "#17becf")),
    "bold": (("red", "#e41a1c"), ("blue", "#377eb8"), ("green", "#4daf4a"), ("purple", "#984ea3"),
             ("orange", "#ff7f00"), ("yellow", "#e6c300"), ("brown", "#a65628"), ("pink", "#f781bf"),
             ("gray", "#999999")),
    "bright": (("blue", "#2563eb"), ("red", "#dc2626"), ("green", "#16a34a"), ("orange", "#f97316"),
               ("purple", "#7c3aed"), ("teal", "#0d9488"), ("pink", "#db2777"), ("yellow", "#eab308"),
               ("brown", "#92400e"), ("gray", "#6b7280")),
    "deep": (("blue", "#4c72b0"), ("orange", "#dd8452"), ("green", "#55a868"), ("red", "#c44e52"),
             ("purple", "#8172b3"), ("brown", "#937860"), ("pink", "#da8bc3"), ("gray", "#8c8c8c"),
             ("olive", "#ccb974"), ("cyan", "#64b5cd")),
    # Okabe & Ito's colour-blind-safe set (black left out: it reads as text)
    "okabe_ito": (("orange", "#e69f00"), ("light blue", "#56b4e9"), ("green", "#009e73"), ("yellow", "#f0e442"),
                  ("blue", "#0072b2"), ("red", "#d55e00"), ("pink", "#cc79a7")),
}
#: the palettes `palette=random` draws from (okabe_ito is asked for by name: it came after items
#: were made with these, and drawing it at random would move them)
RANDOM_PALETTES = ("tableau", "bold", "bright", "deep")
THEMES = ("plain", "minimal", "gray", "dark")
PLOTLY_THEMES = ("plain", "gray", "dark")  # the themes the plotly renderer also draws
DARK_BACKGROUND = "#1e1e24"
SIZES = {"small": (480, 360), "medium": (640, 480), "large": (800, 600), "wide": (960, 540)}
# Legend placements the renderers understand: "outside ..." sits beside the axes, the rest inside.
LEGEND_LOCS = ("outside right", "outside bottom", "upper right", "upper left", "best")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_HOURS = tuple(f"{h:02d}:00" for h in range(0, 24, 2))


class Measure(BaseModel):
    """A second quantity a topic measures (a scatter's x, a bubble's size, a right-hand axis)."""

    model_config = ConfigDict(extra="forbid")
    noun: str
    unit: str
    label: str
    range: tuple[float, float]


class Topic(BaseModel):
    """One curated chart subject from templates/vocab/charts.yaml."""

    model_config = ConfigDict(extra="forbid")
    id: str
    value_noun: str
    unit: str
    value_label: str
    category_noun: str
    category_label: str
    categories: list[str] | Literal["@months", "@years", "@quarters", "@weekdays", "@hours"]
    series_noun: str
    series: list[str]
    range: tuple[float, float]
    kinds: list[str]
    titles: list[str]
    titles_single: list[str] = []
    measures: dict[str, Measure] = {}

    @property
    def ordered(self) -> bool:
        """Whether the categories are a time sequence (drawn as a consecutive window)."""
        return isinstance(self.categories, str)

    def max_categories(self) -> int:
        """How many categories this topic can supply."""
        fixed = {"@months": 12, "@weekdays": 7, "@hours": 12}
        if isinstance(self.categories, str):
            return fixed.get(self.categories, 16)
        return len(self.categories)

    def max_series(self) -> int:
        """How many series names this topic can supply."""
        return 16 if self.series[0].startswith("@") else len(self.series)


def topic_files(extra: Sequence[str] = ()) -> list[Any]:
    """The topic files: vocab/charts.yaml, the packs in vocab/charts.d/ by name, then the user's
    packs `extra` (paths, in the order given: `generate --topics FILE.yaml`)."""
    vocab = resources.files("deltaprompts.templates") / "vocab"
    packs = sorted((p for p in (vocab / "charts.d").iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name) \
        if (vocab / "charts.d").is_dir() else []
    return [vocab / "charts.yaml", *packs, *(Path(p) for p in extra)]


# The user's topic packs of the run this process samples for (set by `user_topics` around sampling):
# the kinds read topics through load_topics() with no argument, so the packs reach them here.
_USER_PACKS: tuple[tuple[str, ...], bool] = ((), False)


@contextmanager
def user_topics(files: Sequence[str], only: bool = False) -> Iterator[None]:
    """Within the block, load_topics() also holds the topics of these user packs (`--topics`), or
    with `only` (`--topics-only`) holds just those."""
    global _USER_PACKS
    saved, _USER_PACKS = _USER_PACKS, (tuple(files), only)
    try:
        yield
    finally:
        _USER_PACKS = saved


def load_topics(extra: Sequence[str] | None = None, only: bool | None = None) -> tuple[Topic, ...]:
    """The curated topics of every topic file, with the user packs `extra` (default: those of the
    active `user_topics` block), or only theirs with `only`; raises TemplateError naming the file,
    topic and field when one is malformed, names an unknown chart kind, or a topic id is given twice."""
    files = _USER_PACKS[0] if extra is None else tuple(extra)
    topics = _load_topics(files)
    if _USER_PACKS[1] if only is None else only:
        n_user = len(_load_topics(files)) - len(_load_topics(()))
        return topics[len(topics) - n_user:]
    return topics


@lru_cache(maxsize=8)
def _load_topics(extra: tuple[str, ...]) -> tuple[Topic, ...]:
    out: list[Topic] = []
    seen: dict[str, Any] = {}
    files = topic_files(extra)
    for n, path in enumerate(files):
        user = n >= len(files) - len(extra)
        if user and not path.is_file():
            raise TemplateError(f"{path}: no such topic pack (--topics takes a YAML file)")
        try:
            raw = yaml.safe_load(read_text(path) if user else path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise TemplateError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
        if user and not (isinstance(raw, dict) and isinstance(raw.get("topics"), list) and raw["topics"]):
            raise TemplateError(f"{path}: a topic pack is a mapping with a non-empty `topics:` list "
                                "(the schema of templates/vocab/charts.yaml)")
        for i, item in enumerate(raw.get("topics", []) if isinstance(raw, dict) else []):
            try:
                topic = Topic.model_validate(item)
            except ValidationError as e:
                raise TemplateError(f"{path}: topic {item.get('id', i) if isinstance(item, dict) else i!r}: "
                                    f"{validation_message(e)}") from None
            if topic.id in seen:
                raise TemplateError(f"{path}: topic {topic.id!r} is also defined in {seen[topic.id]}")
            if user:
                _check_user_topic(path, topic)
            seen[topic.id] = path
            out.append(topic)
    return tuple(out)


def _check_user_topic(path: Path, topic: Topic) -> None:
    """What a built-in pack's tests check, checked when a user's pack is loaded: known kinds,
    enough names, an ordered range, and a title for every chart."""
    where = f"{path}: topic {topic.id!r}"
    kinds = [f.removeprefix("chart.") for f in FAMILIES.names() if f.startswith("chart.")]  # one family per kind
    for k in topic.kinds:
        if k not in kinds:
            raise TemplateError(f"{where}: kinds: {k!r} is not a chart kind; allowed: {', '.join(kinds)}")
    lo, hi = topic.range
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise TemplateError(f"{where}: range: {list(topic.range)} must be [low, high] with low < high")
    if not topic.titles:
        raise TemplateError(f"{where}: titles: give at least one title pattern")
    for field, names in (("categories", topic.categories), ("series", topic.series)):
        if isinstance(names, list) and (not names or len(set(names)) != len(names)):
            raise TemplateError(f"{where}: {field}: give distinct names (at least one)")


def color_name(hex_color: str) -> str:
    """The plain name of a palette colour (nearest palette colour for one not in any palette)."""
    want = hex_color.lower()
    best, best_d = "gray", math.inf
    rgb = np.array([int(want[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)
    for pal in PALETTES.values():
        for name, hx in pal:
            if hx == want:
                return name
            d = float(np.sum((rgb - [int(hx[i:i + 2], 16) for i in (1, 3, 5)]) ** 2))
            if d < best_d:
                best, best_d = name, d
    return best


def palette_of(colors: list[str]) -> str:
    """The name of the palette holding all these colours, or "custom"."""
    for name, pal in PALETTES.items():
        hexes = {hx for _, hx in pal}
        if all(c.lower() in hexes for c in colors):
            return name
    return "custom"


def slice_colors(data: ChartData) -> list[str]:
    """A pie's slice colours: the palette of its series colour, starting at that colour.

    ChartData has one colour per series; a pie needs one per category, so both renderers derive
    them with this rule (deterministic from the Spec).
    """
    first = data.series[0].color.lower()
    for pal in PALETTES.values():
        hexes = [hx for _, hx in pal]
        if first in hexes:
            start = hexes.index(first)
            return [hexes[(start + i) % len(hexes)] for i in range(len(data.categories))]
    tab = [hx for _, hx in PALETTES["tableau"]]
    return [first] + [tab[i % len(tab)] for i in range(1, len(data.categories))]


def plural(noun: str) -> str:
    """The plural of a topic noun ("country" -> "countries", "age group" -> "age groups")."""
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


@lru_cache(maxsize=1)
def _faker() -> Faker:
    # Building a Faker costs ~0.1 s; one per process, reseeded from the item rng before each use.
    return Faker("en_US")


def _companies(fake: Faker, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        name = fake.company()
        if len(name) <= 20 and name not in names:
            names.append(name)
    return names


def _ordered_window(rng: np.random.Generator, kind: str, n: int) -> list[str]:
    if kind == "@years":
        start = int(rng.integers(2000, 2025 - n + 1))
        return [str(start + i) for i in range(n)]
    if kind == "@quarters":
        start = int(rng.integers(0, 4)) + 4 * int(rng.integers(2018, 2023))
        return [f"Q{(start + i) % 4 + 1} {(start + i) // 4}" for i in range(n)]
    full = {"@months": _MONTHS, "@weekdays": _WEEKDAYS, "@hours": _HOURS}[kind]
    start = int(rng.integers(0, len(full) - n + 1))
    return list(full[start:start + n])


def _pick(rng: np.random.Generator, pool: list[str], n: int, fake: Faker) -> list[str]:
    """n names from a topic list (random subset, list order kept) or a generated list."""
    if pool == ["@companies"]:
        return _companies(fake, n)
    if len(pool) == 1 and pool[0].startswith("@"):
        return _ordered_window(rng, pool[0], n)
    idx = sorted(rng.choice(len(pool), size=n, replace=False).tolist())
    return [pool[i] for i in idx]


def eligible_topics(kind: ChartKind, n_cat: int, n_ser: int, decimals: int) -> list[Topic]:
    """Topics that suit the chart kind, have enough names, and can hold n_cat * n_ser distinct
    values at this precision without being pushed far out of their range."""
    out = []
    for t in load_topics():
        lo, hi = t.range
        if (kind.topic_ok(t) and t.max_categories() >= n_cat and t.max_series() >= n_ser
                and (hi - lo) * 10 ** decimals >= 3 * n_cat * n_ser):
            out.append(t)
    return out


def _raw_values(rng: np.random.Generator, topic: Topic, n_ser: int, n_cat: int) -> np.ndarray:
    """Plausible values (n_ser x n_cat): random walks for time axes, category levels otherwise."""
    lo, hi = topic.range
    span = hi - lo
    if topic.ordered:
        out = np.empty((n_ser, n_cat))
        for s in range(n_ser):
            level, drift = rng.uniform(lo + 0.2 * span, hi - 0.2 * span), rng.normal(0, 0.04 * span)
            for c in range(n_cat):
                out[s, c] = level
                level += drift + rng.normal(0, 0.09 * span)
                folded = (level - lo) % (2 * span)  # reflect at the range ends: stays in [lo, hi]
                level = lo + (folded if folded <= span else 2 * span - folded)
        return out
    if hi / max(lo, 1e-9) > 8:  # wide ranges look natural on a log scale (populations, sales)
        base = np.exp(rng.uniform(math.log(max(lo, 1e-9)), math.log(hi), size=n_cat))
    else:
        base = rng.uniform(lo, hi, size=n_cat)
    factors = rng.uniform(0.65, 1.35, size=(n_ser, 1)) * rng.normal(1.0, 0.12, size=(n_ser, n_cat))
    return np.clip(base[None, :] * factors, lo, hi * 1.1)


def spread_values(raw: np.ndarray, decimals: int, gap_pct: float, rng: np.random.Generator) -> np.ndarray:
    """Round to `decimals` and push values apart, keeping their order: every value in the chart
    differs at the shown precision, and values of one series, or of one category, differ by at
    least gap_pct % of the largest value (so extremum questions have a visible answer)."""
    scale = 10 ** decimals
    units = np.maximum(np.rint(raw * scale), 1).astype(np.int64)
    gap = max(1, math.ceil(gap_pct / 100 * int(units.max())))
    n_ser, n_cat = units.shape
    order = np.lexsort((rng.random(units.size), units.ravel()))
    last_s, last_c, prev = [-10 ** 12] * n_ser, [-10 ** 12] * n_cat, -10 ** 12
    flat = units.ravel().copy()
    for idx in order.tolist():
        s, c = divmod(idx, n_cat)
        v = max(int(flat[idx]), prev + 1, last_s[s] + gap, last_c[c] + gap if n_ser > 1 else prev + 1)
        flat[idx] = v
        prev, last_s[s], last_c[c] = v, v, v
    return flat.reshape(n_ser, n_cat) / scale


def pie_percents(rng: np.random.Generator, n: int, decimals: int, gap_pct: float) -> list[float]:
    """n distinct slice percentages summing to exactly 100 at `decimals`, each at least 3 %, any
    two differing by gap_pct % of the mean slice (at least one unit of the shown precision)."""
    total, smallest = 100 * 10 ** decimals, 3 * 10 ** decimals
    gap = max(1, int(gap_pct / 100 * total / n))
    while total - n * smallest - gap * n * (n - 1) // 2 < 0 and gap > 1:
        gap -= 1
    # k-th smallest slice = smallest + k*gap + a sorted Dirichlet share of what is left
    free = total - n * smallest - gap * n * (n - 1) // 2
    shares = np.floor(np.sort(rng.dirichlet(np.full(n, 2.5))) * free).astype(int)
    shares[-1] += free - int(shares.sum())
    units = [smallest + k * gap + int(shares[k]) for k in range(n)]
    return [units[i] / 10 ** decimals for i in rng.permutation(n)]


def _title(rng: np.random.Generator, topic: Topic, single: str | None, cats: list[str], fake: Faker) -> str:
    patterns = (topic.titles_single or topic.titles) if single is not None and rng.random() < 0.6 else topic.titles
    years = [c for c in cats if c.isdigit()]
    year = str(int(years[-1]) if years else int(rng.integers(2015, 2025)))
    return choice(rng, patterns).format(company=_companies(fake, 1)[0], year=year, series=single or "",
                                        period=f"{cats[0]}\u2013{cats[-1]}")


def _style(rng: np.random.Generator, kind: ChartKind, knobs: dict[str, Any], n_ser: int) -> ChartStyle:
    size = knobs["size"] if knobs["size"] != "random" else choice(rng, list(SIZES))
    width, height = SIZES[size]
    font = float(choice(rng, (9.0, 10.0, 11.0, 12.0))) * (0.9 if size == "small" else 1.0)
    themes = PLOTLY_THEMES if knobs.get("renderer") == "plotly" else THEMES
    theme = knobs["style"] if knobs["style"] != "random" else choice(rng, themes)
    labels = knobs.get("value_labels", "on")
    show = kind.always_value_labels or labels == "on" or (labels == "random" and rng.random() < 0.5)
    legend_pref = knobs.get("legend", "random")
    if legend_pref == "random":
        legend_loc = choice(rng, LEGEND_LOCS)
    else:
        legend_loc = choice(rng, LEGEND_LOCS[:2] if legend_pref == "outside" else LEGEND_LOCS[2:])
    legend, legend_loc = kind.style_legend(rng, knobs, n_ser > 1, legend_loc)
    return ChartStyle(width_px=width, height_px=height, dpi=100, font_size=font,
                      title_size=font + float(choice(rng, (2.0, 3.0, 4.0))),
                      background=DARK_BACKGROUND if theme == "dark" else "#ffffff",
                      grid=theme == "gray" or bool(rng.random() < 0.7), value_labels=show,
                      value_decimals=int(knobs["value_decimals"]), legend=legend, legend_loc=legend_loc,
                      bar_width=round(float(rng.uniform(0.55, 0.85)), 2),
                      line_markers=bool(rng.random() < 0.8), line_width=float(choice(rng, (1.5, 2.0, 2.5))),
                      tick_rotation=0, theme=theme)


def sample_chart(rng: np.random.Generator, kind: ChartKind, knobs: dict[str, Any]) -> ChartData:
    """Sample one chart of `kind` from resolved knobs; all randomness comes from `rng`."""
    fake = _faker()
    fake.seed_instance(int(rng.integers(2 ** 31)))
    lo_c, hi_c = kind.n_categories_random
    n_cat = int(knobs["n_categories"]) or int(rng.integers(lo_c, hi_c + 1))
    if kind.n_series_random is not None:
        lo_s, hi_s = kind.n_series_random
        n_ser = int(knobs["n_series"]) or int(rng.integers(lo_s, hi_s + 1))
    else:
        n_ser = 1
    decimals = int(knobs["value_decimals"])
    topics = eligible_topics(kind, n_cat, n_ser, decimals)
    # an added topic takes its share of charts and moves no chart from another topic (rng.extensible_choice)
    topic = extensible_choice(rng, topics, name=lambda t: t.id, base=base_values("topics"))
    cats = _ordered_window(rng, topic.categories, n_cat) if topic.ordered else _pick(rng, topic.categories, n_cat, fake)
    names = _pick(rng, topic.series, n_ser, fake)
    style = _style(rng, kind, knobs, n_ser)
    pal_name = knobs["palette"] if knobs["palette"] != "random" else choice(rng, list(RANDOM_PALETTES))
    pal = PALETTES[pal_name]
    # several series take palette colours in palette order; a single series any one colour
    picks = sorted(rng.choice(len(pal), size=n_ser, replace=False).tolist())
    rows = kind.values(rng, topic, n_ser, n_cat, decimals, float(knobs["min_gap_pct"]))
    single = names[0] if n_ser == 1 else None
    title = _title(rng, topic, single, cats, fake)
    rotation = knobs.get("tick_rotation", "auto")
    style.tick_rotation = kind.auto_rotation(cats, style) if rotation == "auto" else int(rotation)
    cat_label = topic.category_label if rng.random() < 0.7 else ""
    x_label, y_label = kind.axis_labels(cat_label, topic.value_label)
    series = [Series(name=names[i], values=[float(v) for v in rows[i]], color=pal[picks[i]][1]) for i in range(n_ser)]
    data = ChartData(chart_type=kind.name, topic=topic.id, title=title, x_label=x_label, y_label=y_label,
                     unit=topic.unit, category_noun=topic.category_noun, series_noun=topic.series_noun,
                     value_noun=topic.value_noun, categories=cats, series=series, style=style)
    return kind.finish(rng, data, knobs)
