"""The chart-kind contract: one module per kind of chart, registered like families.

A kind declares its data shape and sampling (`n_categories`, `n_series`, `values`, `topic_kinds`),
its knobs, how it draws with matplotlib (`draw`, adding `Mark`s to the `Drawn` figure), how each
mark's Facts are read back (`attrs`, `facts_extra`; boxes come from the drawn artists), whether
plotly draws it too (`renderers`), and the word its marks go by in phrasings (`mark`). Question
families apply to it by naming its family (`chart.<name>`) in `applies_to`.

The built-in kinds are the modules of `deltaprompts.generators.kinds` (found by listing the
package, so a new module edits no shared table); a plugin registers a `ChartKind` subclass with
`@register_kind` or under the `deltaprompts.chart_kinds` entry point. `generators/charts.py` makes
one family per kind. docs/adding-a-family.md, "Adding a chart kind", walks through one.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from deltaprompts.generators.chart_sampling import (
    PALETTES, SIZES, THEMES, Topic, _raw_values, color_name, plural, spread_values,
)
from deltaprompts.generators.chart_spec import ChartData, ChartStyle
from deltaprompts.knobs import Knob
from deltaprompts.registry import Registry

if TYPE_CHECKING:
    from deltaprompts.generators.chart_mpl import Drawn, Mark

KINDS_PACKAGE = "deltaprompts.generators.kinds"


def _builtin_kind_modules() -> tuple[str, ...]:
    package = import_module(KINDS_PACKAGE)
    return tuple(f"{KINDS_PACKAGE}.{m.name}" for m in pkgutil.iter_modules(package.__path__) if not m.ispkg)


class _KindRegistry(Registry["ChartKind"]):
    """The kinds registry: its built-in modules are listed from the kinds package when first asked."""

    def _load_plugins(self) -> None:
        if not self._plugins_loaded and not self._modules:
            self._modules = _builtin_kind_modules()
        super()._load_plugins()


KINDS: Registry[ChartKind] = _KindRegistry("chart kind", "deltaprompts.chart_kinds")


def register_kind(cls: type[ChartKind]) -> type[ChartKind]:
    """Class decorator: register one instance of a ChartKind subclass under its `name`."""
    KINDS.register(cls.name, cls())
    return cls


def kind_of(name: str) -> ChartKind:
    """The registered kind `name` (a ChartData.chart_type); raises UnknownNameError listing the kinds."""
    return KINDS.get(name)


def chart_context(data: ChartData) -> dict[str, Any]:
    """The words question phrasings use for a chart (Facts.context), whichever renderer drew it."""
    unit = data.unit
    return {"title": data.title, "value_noun": data.value_noun, "unit": unit,
            "unit_suffix": "" if not unit else ("%" if unit == "%" else f" {unit}"),
            "category_noun": data.category_noun, "series_noun": data.series_noun,
            "category_plural": plural(data.category_noun), "series_plural": plural(data.series_noun),
            "mark": kind_of(data.chart_type).mark, "multi_series": len(data.series) > 1,
            **kind_of(data.chart_type).context(data)}


# ---------------------------------------------------------------- knobs kinds share


def n_categories_knob(lo: int, hi: int, what: str = "marks per series") -> Knob:
    return Knob("n_categories", "int", 0, f"categories ({what}); 0 = random, else {lo}-{hi}", lo=0, hi=hi,
                difficulty="higher is harder")


def n_series_knob(lo: int, hi: int) -> Knob:
    return Knob("n_series", "int", 0, f"data series (legend entries); 0 = random, else {lo}-{hi}",
                lo=0, hi=hi, difficulty="higher is harder")


def _common() -> tuple[Knob, ...]:
    return (
        Knob("value_decimals", "int", 0, "decimals of the values (and of value labels / pie percentages)",
             lo=0, hi=2, difficulty="higher is harder"),
        Knob("style", "choice", "random", "theme: plain, minimal (few lines), gray (ggplot-like), dark",
             choices=("random", *THEMES), difficulty="dark and gray are slightly harder"),
        Knob("palette", "choice", "random", "named colour palette (okabe_ito: colour-blind-safe; random draws "
             "the others)", choices=("random", *PALETTES), difficulty="none"),
        Knob("size", "choice", "random", "image size: " + ", ".join(f"{k} {w}x{h}" for k, (w, h) in SIZES.items()),
             choices=("random", *SIZES), difficulty="smaller is harder"),
        Knob("min_gap_pct", "float", 3.0, "least gap between values of one series (or one category), in % of the "
             "largest value (pie: of the mean slice); values never tie at the shown precision",
             lo=0.0, hi=10.0, difficulty="lower is harder"),
        Knob("renderer", "choice", "matplotlib", "drawing library", choices=("matplotlib", "plotly"),
             difficulty="none (a different look)"),
    )


def common_knobs(renderers: Sequence[str] = ("matplotlib", "plotly")) -> tuple[Knob, ...]:
    """The knobs every chart kind takes, last in its list; `renderer` offers the kind's renderers."""
    out = list(_common())
    if tuple(renderers) != ("matplotlib", "plotly"):
        out[-1] = Knob("renderer", "choice", renderers[0], "drawing library", choices=tuple(renderers),
                       difficulty="none (a different look)")
    return tuple(out)


VALUE_LABELS = Knob("value_labels", "choice", "random", "print each value on its mark", choices=("on", "off", "random"),
                    difficulty="off is harder (values must be read against the axis)")
TICK_ROTATION = Knob("tick_rotation", "choice", "auto", "category tick label rotation in degrees; auto rotates "
                     "only when labels would collide", choices=("auto", "0", "30", "45", "90"),
                     difficulty="rotated is slightly harder; 0 with many long labels may collide")
LEGEND = Knob("legend", "choice", "random", "legend position: outside the axes, or inside (may cover marks)",
              choices=("random", "outside", "inside"), difficulty="inside is harder")


# ---------------------------------------------------------------- the contract


class ChartKind:
    """One kind of chart. Subclasses set the class attributes and implement `draw`; the defaults
    describe a vertical bar chart of one series over categories (see kinds/bar.py, the kind to copy)."""

    name: ClassVar[str]
    description: ClassVar[str]
    version: ClassVar[str] = "1"
    #: the kind's knobs, in order (their order is the order of a Spec's knobs: keep it once shipped)
    knobs: ClassVar[tuple[Knob, ...]] = ()
    renderers: ClassVar[tuple[str, ...]] = ("matplotlib",)
    #: what one mark is called in phrasings ("bar", "point", "slice", "box", "cell", ...)
    mark: ClassVar[str] = "bar"
    #: categories: allowed range, and the range "0 = random" draws from
    n_categories: ClassVar[tuple[int, int]] = (3, 12)
    n_categories_random: ClassVar[tuple[int, int]] = (4, 8)
    #: series: allowed range and random range; None: always one series, and no draw for it
    n_series: ClassVar[tuple[int, int] | None] = None
    n_series_random: ClassVar[tuple[int, int] | None] = None
    #: the topics (templates/vocab/charts.yaml `kinds:`) this kind draws from; default: its own name
    topic_kinds: ClassVar[tuple[str, ...]] = ()
    #: cartesian axes with ticks, labels and grid (False for pies, donuts, radar)
    axes: ClassVar[bool] = True
    #: the value axis is x (horizontal bars)
    horizontal: ClassVar[bool] = False
    #: value labels always shown (a pie's percentages)
    always_value_labels: ClassVar[bool] = False
    #: value labels sit inside their mark (stacked segments): a label that does not fit is hidden
    labels_inside: ClassVar[bool] = False
    #: marks' boxes overlap by construction (wedges): value labels are not checked against them
    marks_overlap: ClassVar[bool] = False
    #: value labels that are wider than their bar stand upright
    upright_crowded_labels: ClassVar[bool] = False
    #: the attribute a printed value label shows ("value"; a pie's labels print "percent")
    printed_attr: ClassVar[str] = "value"
    #: the role of the texts in `Drawn.category_texts` (a pie's rim names are "category_label"; texts
    #: with role "label" or "point_label" name marks and are checked for legibility like tick labels)
    category_text_role: ClassVar[str] = "category_label"

    @property
    def family(self) -> str:
        return f"chart.{self.name}"

    def topic_ok(self, topic: Topic) -> bool:
        """Whether a curated topic suits this kind."""
        return any(k in topic.kinds for k in (self.topic_kinds or (self.name,)))

    # ------------------------------------------------------------ sampling

    def style_legend(self, rng: np.random.Generator, knobs: dict[str, Any], legend: bool,
                     legend_loc: str) -> tuple[bool, str]:
        """Whether and where the legend shows (default: for several series, where drawn)."""
        return legend, legend_loc

    def values(self, rng: np.random.Generator, topic: Topic, n_ser: int, n_cat: int, decimals: int,
               gap_pct: float) -> list[list[float]]:
        """The series values (n_ser rows of n_cat), distinct at the shown precision."""
        return spread_values(_raw_values(rng, topic, n_ser, n_cat), decimals, gap_pct, rng).tolist()

    def axis_labels(self, category_label: str, value_label: str) -> tuple[str, str]:
        """(x label, y label) of the chart."""
        return category_label, value_label

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        """Kind-specific data after the shared sampling (ChartData.extra); default: none, no draws."""
        return data

    def auto_rotation(self, categories: list[str], style: ChartStyle) -> int:
        """A category tick rotation that keeps labels apart, from their estimated width in pixels."""
        if self.horizontal or not self.axes:
            return 0
        char_px = 0.58 * style.font_size * style.dpi / 72
        slot = 0.8 * style.width_px / len(categories)
        widest = max(len(c) for c in categories) * char_px + 8
        if widest <= slot:
            return 0
        return 45 if char_px * 1.6 <= slot else 90

    # ------------------------------------------------------------ matplotlib

    def make_axes(self, fig: Any) -> Any:
        """The axes the kind draws on (default cartesian; a radar's are polar)."""
        return fig.add_subplot()

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        """Draw the marks on `d.ax`, appending one `Mark` per data mark to `d.marks` (and value
        labels to `d.value_texts`), and set the axis limits and category ticks."""
        raise NotImplementedError

    def legend_entries(self, d: Drawn, data: ChartData) -> tuple[list[Any], list[str]]:
        """The legend's handles and labels (default: one per series, as drawn)."""
        return d.ax.get_legend_handles_labels()

    def laid_out_texts(self, d: Drawn, data: ChartData) -> list[tuple[Any, str]]:
        """(text, role) of texts that exist only once the figure is laid out (a second axis's tick
        labels), read after layout; default none."""
        return []

    def legend_kwargs(self, data: ChartData) -> dict[str, Any]:
        """Extra keyword arguments of the legend (a title, row spacing for big handles); default none."""
        return {}

    def mark_colors(self, data: ChartData) -> list[str]:
        """The colour of each mark, by series (default) or by category (`by_category`)."""
        return [s.color for s in data.series]

    by_category: ClassVar[bool] = False

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        """A mark's Entity attributes: what its questions read (default: series, category, value, colour)."""
        ser = data.series[m.series]
        return {"series": ser.name, "category": data.categories[m.category],
                "value": round(ser.values[m.category], data.style.value_decimals),
                "color_name": color_name(color), "color": color}

    def fields(self, data: ChartData) -> dict[str, Any]:
        """Named values the chart prints besides its marks (a donut's total), for Facts.fields; the
        text showing one goes in `Drawn.field_texts` (role `field:<name>`). Default none."""
        return {}

    def context(self, data: ChartData) -> dict[str, Any]:
        """Words of this kind for phrasings, beyond the shared ones (chart_context); default none."""
        return {}

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        """Kind-specific entries of Facts.extra (e.g. a fitted trend line); merged last, so a kind may
        also replace a shared entry (`value_axis: None` when its values are not read on one axis)."""
        return {}
