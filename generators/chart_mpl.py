"""The matplotlib chart renderer: draws a ChartData with Agg and reads Facts back from the artists."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import ScalarFormatter
from matplotlib.transforms import Bbox, IdentityTransform
from PIL import Image

from deltaprompts.errors import LayoutError, RenderError
from deltaprompts.generators.base import png_bytes
from deltaprompts.generators.chart_kind import chart_context, kind_of
from deltaprompts.generators.chart_sampling import palette_of
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.records import Entity, Facts, TextSpan

# Per theme: axes face (None: the background), text, grid and spine colours, visible spines,
# and whether the title is bold and left-aligned.
THEME_STYLE: dict[str, dict[str, Any]] = {
    "plain": {"face": None, "text": "#222222", "grid": "#d9d9d9", "spine": "#333333",
              "spines": ("left", "bottom", "top", "right"), "title_left": False},
    "minimal": {"face": None, "text": "#333333", "grid": "#e6e6e6", "spine": "#999999",
                "spines": ("bottom",), "title_left": True},
    "gray": {"face": "#ebebeb", "text": "#333333", "grid": "#ffffff", "spine": "#ffffff",
             "spines": (), "title_left": False},
    "dark": {"face": None, "text": "#e6e6e6", "grid": "#45454d", "spine": "#8a8a90",
             "spines": ("left", "bottom"), "title_left": True},
}
MARKER_PT = 6.0  # line marker diameter in points


@dataclass
class Mark:
    """One drawn data mark: a bar rectangle, a pie wedge, or a line point (artist None)."""

    id: str
    series: int
    category: int
    artist: Artist | None = None
    point: tuple[float, float] | None = None  # data coordinates of a line point


@dataclass
class Drawn:
    """A built chart figure (laid out, not yet rendered) and the artists Facts are read from."""

    fig: Figure
    ax: Any
    marks: list[Mark] = field(default_factory=list)
    value_texts: list[tuple[Text, str]] = field(default_factory=list)  # (label, mark id)
    category_texts: list[Text] = field(default_factory=list)  # a pie's slice names at the rim
    field_texts: list[tuple[Text, str]] = field(default_factory=list)  # (text, field name): role field:<name>
    other_texts: list[tuple[Text, str]] = field(default_factory=list)  # (text, role): captions, headings
    extras: dict[str, Any] = field(default_factory=dict)  # a kind's own artists (a colour bar), read in facts_extra
    legend: Any = None
    title: Text | None = None


@lru_cache(maxsize=8)
def _check_font(family: str) -> str:
    try:
        return font_manager.findfont(family, fallback_to_default=False)
    except ValueError:
        raise RenderError(f"style.font_family {family!r} is not installed for matplotlib; use 'DejaVu Sans'") from None


def fmt_value(value: float, decimals: int, unit: str) -> str:
    """How a value label reads: thousands separators, the chart's decimals, a % sign for percent units."""
    return f"{value:,.{decimals}f}" + ("%" if unit == "%" else "")


def ink(hex_color: str) -> str:
    """Black or white, whichever reads better on this fill colour."""
    r, g, b = (int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "#111111" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#ffffff"


def image_box(bbox: Bbox, height: int) -> tuple[float, float, float, float]:
    """A display-space Bbox (origin bottom-left) as an image box (origin top-left, y down)."""
    return (round(float(bbox.x0), 2), round(float(height - bbox.y1), 2),
            round(float(bbox.x1), 2), round(float(height - bbox.y0), 2))


def _overlap(a: tuple[float, ...], b: tuple[float, ...], min_area: float = 1.0) -> bool:
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    return w > 0 and h > 0 and w * h >= min_area


def mark_extent(d: Drawn, m: Mark) -> Bbox:
    """A mark's display-space box (origin bottom-left): the artist's extent, or a line point's marker."""
    if m.artist is not None:
        return m.artist.get_window_extent()
    px, py = d.ax.transData.transform(m.point)
    r = MARKER_PT * d.fig.dpi / 72 / 2
    return Bbox.from_extents(px - r, py - r, px + r, py + r)


def build_figure(data: ChartData, fit: bool = True) -> Drawn:
    """Build and lay out the matplotlib Figure of a chart (`fit=False`: matplotlib's default axes
    position, no measuring; the bare baseline of benchmarks/render.py); raises RenderError on a bad style."""
    st = data.style
    theme = THEME_STYLE.get(st.theme)
    if theme is None:
        raise RenderError(f"style.theme {st.theme!r} is unknown; allowed: {', '.join(THEME_STYLE)}")
    _check_font(st.font_family)
    fig = Figure(figsize=(st.width_px / st.dpi, st.height_px / st.dpi), dpi=st.dpi, facecolor=st.background)
    FigureCanvasAgg(fig)
    kind = kind_of(data.chart_type)
    d = Drawn(fig=fig, ax=kind.make_axes(fig))
    d.ax.set_facecolor(theme["face"] or st.background)
    kind.draw(d, data, theme)
    if kind.axes:
        _decorate_axes(d, data, theme)
    bold = theme["title_left"]
    chars = max(12, int(0.9 * st.width_px / ((0.66 if bold else 0.6) * st.title_size * st.dpi / 72)))
    d.title = d.ax.set_title("\n".join(textwrap.wrap(data.title, chars)), fontsize=st.title_size, color=theme["text"],
                             pad=10, loc="left" if bold else "center", fontweight="bold" if bold else "normal")
    _add_legend(d, data, theme)
    if fit:
        layout(d, data)
    return d


def _decorate_axes(d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
    st, ax, horizontal = data.style, d.ax, kind_of(data.chart_type).horizontal
    for name, spine in ax.spines.items():
        spine.set_visible(name in theme["spines"])
        spine.set_color(theme["spine"])
    ax.tick_params(colors=theme["text"], labelsize=st.font_size, length=0 if st.theme == "gray" else 3.5)
    if st.theme == "minimal":  # no spine on the value side, so no tick marks there either
        ax.tick_params(axis="x" if horizontal else "y", length=0)
    ax.set_xlabel(data.x_label, fontsize=st.font_size * 1.05, color=theme["text"])
    ax.set_ylabel(data.y_label, fontsize=st.font_size * 1.05, color=theme["text"])
    fmt = ScalarFormatter(useOffset=False)  # plain numbers: no "1e6" offset text to misread
    fmt.set_scientific(False)
    (ax.xaxis if horizontal else ax.yaxis).set_major_formatter(fmt)
    if st.grid:
        ax.grid(True, axis="x" if horizontal else ("both" if st.theme == "gray" else "y"), color=theme["grid"],
                linewidth=0.9 if st.theme == "gray" else 0.7)
    ax.set_axisbelow(True)
    if st.tick_rotation and not horizontal:
        for label in ax.get_xticklabels():
            label.set(rotation=st.tick_rotation, ha="center" if st.tick_rotation == 90 else "right",
                      rotation_mode="default" if st.tick_rotation == 90 else "anchor")


def _add_legend(d: Drawn, data: ChartData, theme: dict[str, Any], ncols: int = 4) -> None:
    st = data.style
    if not st.legend:
        return
    handles, labels = kind_of(data.chart_type).legend_entries(d, data)
    kw = {"fontsize": st.font_size * 0.95, "labelcolor": theme["text"], "frameon": st.theme != "minimal",
          "facecolor": theme["face"] or st.background, "edgecolor": theme["grid"],
          **kind_of(data.chart_type).legend_kwargs(data)}
    if st.legend_loc == "outside right":  # anchored by layout() once the axes are fitted
        d.legend = d.fig.legend(handles, labels, loc="upper right", borderaxespad=0, **kw)
    elif st.legend_loc == "outside bottom":
        d.legend = d.fig.legend(handles, labels, loc="lower center", ncols=ncols, borderaxespad=0, **kw)
    else:
        d.legend = d.ax.legend(handles, labels, loc=st.legend_loc, framealpha=0.92, **kw)


class FontHeights:
    """A font's height metrics (ascender, descender, line gap in pixels) as matplotlib's text layout
    reads them, cached per font, size and dpi.

    `Text._get_layout` looks them up in the font file's OS/2 (or hhea) table on every extent and draw
    of a text: our layout passes measure each text several times, and the lookup was a fifth of that
    cost. A renderer may answer them itself (`_get_font_height_metrics`, the hook matplotlib's PDF
    and PS backends use); this one gives the numbers matplotlib would compute, once each.
    """

    def __init__(self, dpi: float) -> None:
        self.dpi = dpi
        self.cache: dict[tuple[Any, ...], tuple[float | None, float | None, float | None]] = {}

    def __call__(self, prop: font_manager.FontProperties) -> tuple[float | None, float | None, float | None]:
        key = (hash(prop), prop.get_size_in_points())
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = self._measure(prop)
        return hit

    def _measure(self, prop: font_manager.FontProperties) -> tuple[float | None, float | None, float | None]:
        """As Text._get_layout measures it (matplotlib 3.11); (None, None, None) makes matplotlib measure "lp"."""
        font = font_manager.get_font(font_manager.fontManager._find_fonts_by_props(prop))
        for table_name, gap_key, ascent_key, descent_key in (("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
                                                             ("hhea", "lineGap", "ascent", "descent")):
            table = font.get_sfnt_table(table_name)
            if table is None:
                continue
            scale = 1 / font.get_sfnt_table("head")["unitsPerEm"] * prop.get_size_in_points() * self.dpi / 72
            return table[ascent_key] * scale, -table[descent_key] * scale, table[gap_key] * scale
        return None, None, None


def layout(d: Drawn, data: ChartData) -> None:
    """Fit the axes so that ticks, labels, title and an outside legend lie inside the image, and
    widen the value axis until the value labels fit and marks pass under an inside legend.

    Measured passes of our own: matplotlib's constrained layout measures every text several
    times and doubled the render time.
    """
    st, kind = data.style, kind_of(data.chart_type)
    renderer = d.fig.canvas.get_renderer()  # the renderer the final draw reuses (same size and dpi)
    renderer._get_font_height_metrics = FontHeights(renderer.dpi)
    ncols = 4
    while st.legend_loc == "outside bottom" and d.legend is not None and ncols > 1 and \
            d.legend.get_window_extent(renderer).width > st.width_px - 2 * _pad(st):
        ncols -= 1  # too wide for the image: wrap the entries into more rows
        d.legend.remove()
        _add_legend(d, data, THEME_STYLE[st.theme], ncols)
    if d.value_texts and kind.upright_crowded_labels:
        _turn_wide_labels(d, renderer)
    box = _fit_axes(d, data, renderer)
    inside_legend = d.legend is not None and not st.legend_loc.startswith("outside")
    for widen in ((_make_room_for_labels,) if d.value_texts and kind.axes else ()) + \
            ((_lift_legend,) if inside_legend and not kind.horizontal else ()):
        for _ in range(2):  # a wider value axis can change the tick labels: refit after each
            if not widen(d, data, renderer):
                break
            box = _fit_axes(d, data, renderer)
    pad = _pad(st)
    if d.legend is not None and st.legend_loc == "outside right":
        d.legend.set_bbox_to_anchor((st.width_px - pad, box.y1), transform=IdentityTransform())
    elif d.legend is not None and st.legend_loc == "outside bottom":
        half = d.legend.get_window_extent(renderer).width / 2  # centred under the axes, kept inside
        cx = min(max((box.x0 + box.x1) / 2, pad + half), st.width_px - pad - half)
        d.legend.set_bbox_to_anchor((cx, pad), transform=IdentityTransform())
    _hide_crowded_labels(d, data, renderer)  # positions are final now: no second draw needed


def _pad(st: Any) -> float:
    return 0.012 * min(st.width_px, st.height_px) + 2


def _fit_axes(d: Drawn, data: ChartData, renderer: Any) -> Bbox:
    """Place the axes so that everything around them fits the figure; return the axes box (pixels).
    The ticks can change with the axes size; then it measures again. A title wider than the axes
    is not allowed to squeeze them: it is shifted inside the image instead."""
    st, ax = data.style, d.ax
    w, h, pad = st.width_px, st.height_px, _pad(st)
    outside = d.legend is not None and st.legend_loc.startswith("outside")
    leg = d.legend.get_window_extent(renderer) if outside else None
    right = leg.width + 1.5 * pad if leg is not None and st.legend_loc == "outside right" else 0.0
    bottom = leg.height + 1.5 * pad if leg is not None and st.legend_loc == "outside bottom" else 0.0
    for _ in range(3):
        ticks = (list(ax.xaxis.get_majorticklocs()), list(ax.yaxis.get_majorticklocs()))
        tight, box = ax.get_tightbbox(renderer, for_layout_only=True), ax.get_window_extent(renderer)
        x0, x1 = box.x0 - tight.x0 + pad, w - right - (tight.x1 - box.x1) - pad
        y0, y1 = bottom + box.y0 - tight.y0 + pad, h - (tight.y1 - box.y1) - pad
        if x1 - x0 < 0.2 * w or y1 - y0 < 0.2 * h:
            raise LayoutError(f"chart texts leave no room for the axes in {w}x{h} (title or labels too long)")
        ax.set_position([x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h])
        if ticks == (list(ax.xaxis.get_majorticklocs()), list(ax.yaxis.get_majorticklocs())):
            break  # same ticks at the new size: the margins just measured still hold
    box = ax.get_window_extent(renderer)
    d.title.set_x(0.0 if d.title.get_ha() == "left" else 0.5)
    ext = d.title.get_window_extent(renderer)
    shift = max(pad - ext.x0, 0.0) - max(ext.x1 - (w - pad), 0.0)
    d.title.set_x(d.title.get_position()[0] + shift / box.width)
    return box


def _turn_wide_labels(d: Drawn, renderer: Any) -> None:
    """Stand value labels upright when one is wider than its bar (crowded grouped bars)."""
    by_id = {m.id: m for m in d.marks}
    if any(t.get_window_extent(renderer).width > 1.1 * mark_extent(d, by_id[mid]).width for t, mid in d.value_texts):
        for t, _ in d.value_texts:
            t.set_rotation(90)


def _widen(d: Drawn, horizontal: bool, over: float, size: float) -> None:
    """Raise the value axis maximum so that content `over` px beyond a `size` px span fits."""
    lo, hi = d.ax.get_xlim() if horizontal else d.ax.get_ylim()
    (d.ax.set_xlim if horizontal else d.ax.set_ylim)(lo, hi + (hi - lo) * over / max(size - over, 0.3 * size))


def _make_room_for_labels(d: Drawn, data: ChartData, renderer: Any) -> bool:
    """Extend the value axis when a value label sticks out of the axes; return whether it did."""
    horizontal = kind_of(data.chart_type).horizontal
    box = d.ax.get_window_extent(renderer)
    ends = [t.get_window_extent(renderer) for t, _ in d.value_texts if t.get_visible()]
    over = max((e.x1 - box.x1) if horizontal else (e.y1 - box.y1) for e in ends) + 4
    if over > 4:
        _widen(d, horizontal, over, box.width if horizontal else box.height)
    return over > 4


def _lift_legend(d: Drawn, data: ChartData, renderer: Any) -> bool:
    """Raise the value axis so that marks and value labels under an inside legend pass below it;
    return whether it changed anything."""
    leg, box = d.legend.get_window_extent(renderer), d.ax.get_window_extent(renderer)
    under = [mark_extent(d, m) for m in d.marks] + [t.get_window_extent(renderer) for t, _ in d.value_texts
                                                    if t.get_visible()]
    top = max([e.y1 for e in under if e.x1 > leg.x0 and e.x0 < leg.x1 and e.y1 > leg.y0 - 3], default=None)
    room = leg.y0 - 4 - box.y0
    if top is None or room < 0.3 * box.height:
        return False
    _widen(d, False, top - leg.y0 + 4, top - box.y0)
    return True


def _hide_crowded_labels(d: Drawn, data: ChartData, renderer: Any) -> None:
    """Hide value labels that overlap an earlier label or another mark, or do not fit inside their
    stacked segment."""
    shown: list[Bbox] = []
    kind = kind_of(data.chart_type)
    # a pie's wedge boxes overlap each other; its labels sit inside their own wedge by construction
    marks = {} if kind.marks_overlap else {m.id: mark_extent(d, m) for m in d.marks}
    for text, mid in d.value_texts:
        box = text.get_window_extent(renderer)
        clash = any(_overlap(box.extents, b.extents) for b in shown)
        clash = clash or any(_overlap(box.extents, b.extents, 2.0) for k, b in marks.items() if k != mid)
        if kind.labels_inside:
            seg = marks[mid]
            clash = clash or not (seg.x0 <= box.x0 and box.x1 <= seg.x1 and seg.y0 <= box.y0 and box.y1 <= seg.y1)
        text.set_visible(not clash)
        if not clash:
            shown.append(box)


def collect_texts(d: Drawn, data: ChartData, height: int) -> list[TextSpan]:
    """Every visible text of the drawn figure with its pixel box and role."""
    found: list[tuple[Text, str]] = [(d.title, "title")]
    if kind_of(data.chart_type).axes:
        found += [(d.ax.xaxis.label, "x_label"), (d.ax.yaxis.label, "y_label")]
        for axis, role in ((d.ax.xaxis, "x_tick"), (d.ax.yaxis, "y_tick")):
            locs = axis.get_majorticklocs()
            lo, hi = sorted(axis.get_view_interval())
            eps = (hi - lo) * 1e-9  # ticks outside the view are laid out but not drawn
            ticks = zip(locs, axis.get_major_ticks(len(locs)))
            found += [(t.label1, role) for loc, t in ticks if lo - eps <= loc <= hi + eps]
    found += [(t, kind_of(data.chart_type).category_text_role) for t in d.category_texts]
    found += [(t, f"field:{name}") for t, name in d.field_texts]
    found += list(d.other_texts)
    found += kind_of(data.chart_type).laid_out_texts(d, data)
    found += [(t, "legend") for t in (d.legend.get_texts() if d.legend is not None else [])]
    found += [(t, "value_label") for t, _ in d.value_texts]
    return [TextSpan(text=" ".join(t.get_text().split()), box=image_box(t.get_window_extent(), height), role=role)
            for t, role in found if t.get_visible() and t.get_text().strip()]


def render_matplotlib(data: ChartData) -> tuple[bytes, Facts]:
    """Draw one chart; return its metadata-free PNG bytes and its Facts. Raises RenderError."""
    st = data.style
    with matplotlib.rc_context({"font.family": st.font_family, "font.size": st.font_size,
                                "axes.unicode_minus": True, "text.antialiased": True}):
        d = build_figure(data)
        canvas = d.fig.canvas
        canvas.draw()
        width, height = canvas.get_width_height()
        if (width, height) != (st.width_px, st.height_px):
            raise RenderError(f"rendered {width}x{height}, expected {st.width_px}x{st.height_px} (dpi {st.dpi})")
        facts = _facts(d, data, width, height)
        image = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
    d.fig.clear()  # break the figure's reference cycles now rather than at the next gc pass
    return png_bytes(image), facts


def _facts(d: Drawn, data: ChartData, width: int, height: int) -> Facts:
    st, kind = data.style, kind_of(data.chart_type)
    colors = kind.mark_colors(data)
    entities = []
    for m in d.marks:
        color = colors[m.category] if kind.by_category else colors[m.series]
        entities.append(Entity(id=m.id, attrs=kind.attrs(data, m, color), box=image_box(mark_extent(d, m), height)))
    texts = collect_texts(d, data, height)
    legend_box = image_box(d.legend.get_window_extent(), height) if d.legend is not None else None
    # slanted x tick labels have overlapping axis-aligned boxes (with each other and the lowest
    # y tick) by design: not a clash
    slanted = st.tick_rotation not in (0, 90) and not kind.horizontal
    clashes = [[i, j] for i in range(len(texts)) for j in range(i + 1, len(texts))
               if _overlap(texts[i].box, texts[j].box, 2.0) and not (
                   slanted and "x_tick" in (texts[i].role, texts[j].role)
                   and {texts[i].role, texts[j].role} <= {"x_tick", "y_tick"})]
    value_axis = d.ax.xaxis if kind.horizontal else d.ax.yaxis
    lo, hi = sorted(map(float, value_axis.get_view_interval()))
    eps = (hi - lo) * 1e-9  # ticks outside the view are laid out but not drawn
    ticks = [float(t) for t in value_axis.get_majorticklocs() if lo - eps <= t <= hi + eps]
    # which value each visible value label prints: a pie's labels print the slice's percent
    printed = {mid: {kind.printed_attr: " ".join(t.get_text().split())}
               for t, mid in d.value_texts if t.get_visible() and t.get_text().strip()}
    return Facts(
        domain="chart", kind=data.chart_type, width=width, height=height, entities=entities, texts=texts,
        fields={"title": data.title, "x_label": data.x_label or None, "y_label": data.y_label or None,
                "unit": data.unit or None, "value_labels": True if st.value_labels else None, **kind.fields(data)},
        context=chart_context(data),
        extra={"axes_box": image_box(d.ax.get_window_extent(), height), "legend_box": legend_box,
               "legend_overlap": [e.id for e in entities if legend_box and _overlap(e.box, legend_box, 4.0)],
               "text_overlaps": clashes, "renderer": "matplotlib", "palette": palette_of(colors),
               "theme": st.theme, "printed": printed, "value_axis": None if not kind.axes else {
                   "axis": "x" if kind.horizontal else "y", "range": [lo, hi], "ticks": ticks},
               **kind.facts_extra(d, data)},
    )
