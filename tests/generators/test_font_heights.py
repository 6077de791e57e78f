"""chart_mpl.FontHeights: the cached font height metrics give matplotlib's own text extents."""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from deltaprompts.generators.chart_mpl import FontHeights

TEXTS = [("Revenue by region", {"fontsize": 11}), ("Q1\nQ2 (two lines)", {"fontsize": 9, "fontweight": "bold"}),
         ("−1,234.5", {"fontsize": 7, "rotation": 45}), ("serif title", {"fontsize": 14, "family": "serif"}),
         ("mono", {"fontsize": 8, "family": "monospace", "rotation": 90})]


def _extents(hook: bool) -> tuple[list[tuple[float, ...]], FontHeights | None]:
    fig = Figure(figsize=(4, 3), dpi=110)
    FigureCanvasAgg(fig)
    texts = [fig.text(0.1 + 0.1 * i, 0.2 + 0.1 * i, s, **kw) for i, (s, kw) in enumerate(TEXTS)]
    renderer = fig.canvas.get_renderer()
    heights = FontHeights(renderer.dpi) if hook else None
    if hook:
        renderer._get_font_height_metrics = heights
    return [tuple(t.get_window_extent(renderer).extents) for t in texts], heights


def test_font_heights_give_matplotlibs_own_extents_and_are_used():
    stock, _ = _extents(hook=False)
    cached, heights = _extents(hook=True)
    assert cached == stock  # exactly: the same numbers, not close ones
    assert heights is not None and len(heights.cache) >= 4  # matplotlib asked the hook (else no speed-up)


def test_font_heights_answer_repeated_sizes_from_the_cache():
    fig = Figure(dpi=100)
    FigureCanvasAgg(fig)
    t = fig.text(0, 0, "x", fontsize=10)
    heights = FontHeights(100)
    first = heights(t.get_fontproperties())
    assert heights(t.get_fontproperties()) is first and len(heights.cache) == 1
    t.set_fontsize(12)
    assert heights(t.get_fontproperties())[0] > first[0] and len(heights.cache) == 2
