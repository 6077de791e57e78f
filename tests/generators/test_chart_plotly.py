"""The plotly chart renderer: its computed boxes against the pixels Chromium draws, determinism, batching, errors."""

from __future__ import annotations

import hashlib
import io
import math
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from deltaprompts.errors import RenderError
from deltaprompts.generators import chart_plotly
from deltaprompts.generators.chart_sampling import slice_colors
from deltaprompts.generators.chart_spec import ChartData, ChartStyle, Series
from deltaprompts.records import Spec

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
CATS = ["North", "South", "East", "West", "Central"]


def make_spec(chart_type: str, k: int = 1, index: int = 0, **style) -> Spec:
    """A hand-built chart Spec (the chart families are not needed): `k` series over CATS."""
    series = [Series(name=str(2021 + i), color=PALETTE[i],
                     values=[round(20 + 15 * math.sin(j * 1.3 + i) + 8 * i + 3 * j, 1) for j in range(len(CATS))])
              for i in range(k)]
    data = ChartData(chart_type=chart_type, topic="sales", title="Regional revenue", x_label="Region",
                     y_label="Revenue (million USD)", unit="million USD", category_noun="region",
                     series_noun="year", value_noun="revenue", categories=CATS, series=series,
                     style=ChartStyle(**style))
    return Spec(family=f"chart.{chart_type}", version="1", seed=0, index=index, knobs={"renderer": "plotly"},
                data=data.model_dump())


SPECS = {
    "bar": make_spec("bar", value_labels=True),
    "line": make_spec("line", k=3, legend_loc="upper left", theme="dark", background="#1e1e24"),
    "grouped_bar": make_spec("grouped_bar", k=3, value_labels=True, legend_loc="outside right"),
    "hbar": make_spec("hbar", value_labels=True, width_px=560, height_px=420, theme="minimal"),
    "stacked_bar": make_spec("stacked_bar", k=3, theme="gray", tick_rotation=30, legend_loc="outside bottom",
                             value_labels=True, value_decimals=1),
    "pie": make_spec("pie", value_labels=True, width_px=700, height_px=450, legend_loc="outside right"),
    "pie_rim": make_spec("pie", value_labels=True, legend=False, width_px=640, height_px=480),
    "inside_legend": make_spec("grouped_bar", k=2, value_labels=True, legend_loc="upper right", width_px=480,
                               height_px=360, font_size=9.0),
}


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _is(arr: np.ndarray, x: float, y: float, hex_color: str, tol: int = 6) -> bool:
    return bool(np.abs(arr[int(y), int(x)] - _rgb(hex_color)).max() <= tol)


# ---- geometry that needs no browser -------------------------------------------------------------

def test_nice_ticks_and_plotly_tick_text():
    assert chart_plotly.nice_ticks(0, 43) == [0, 10, 20, 30, 40]
    assert chart_plotly.nice_ticks(0, 1.2)[:3] == [0, 0.2, 0.4]
    ticks = [0, 25000, 50000]
    assert [chart_plotly.tick_text(t, ticks) for t in ticks] == ["0", "25k", "50k"]
    assert chart_plotly.tick_text(-5, [-5, 0, 5]) == "\u22125"
    assert [chart_plotly.tick_text(t, [0, 2.5, 5]) for t in (0, 2.5)] == ["0.0", "2.5"]


def test_facts_follow_the_matplotlib_convention():
    fig, facts = chart_plotly.build_figure(ChartData.model_validate(SPECS["grouped_bar"].data))
    assert [e.id for e in facts.entities][:2] == ["s0c0", "s0c1"] and len(facts.entities) == 15
    attrs = facts.entity("s1c2").attrs
    assert attrs["series"] == "2022" and attrs["category"] == "East" and attrs["color"] == PALETTE[1]
    assert attrs["color_name"] == "orange" and isinstance(attrs["value"], float)
    assert facts.fields == {"title": "Regional revenue", "x_label": "Region", "y_label": "Revenue (million USD)",
                            "unit": "million USD", "value_labels": True}
    assert facts.context["mark"] == "bar" and facts.context["multi_series"] is True
    assert facts.extra["renderer"] == "plotly" and facts.extra["legend_box"] is not None
    roles = {t.role for t in facts.texts}
    assert roles == {"title", "x_label", "y_label", "x_tick", "y_tick", "legend", "value_label"}
    assert fig["layout"]["margin"]["autoexpand"] is False


def test_pie_facts_have_percent_and_the_shared_slice_colours():
    data = ChartData.model_validate(SPECS["pie"].data)
    _, facts = chart_plotly.build_figure(data)
    assert abs(sum(e.attrs["percent"] for e in facts.entities) - 100) <= len(CATS) / 2  # whole percents
    assert [e.attrs["color"] for e in facts.entities] == slice_colors(data)
    assert facts.extra["value_axis"] is None and facts.extra["legend_loc"] == "outside right"


def test_an_inside_legend_lifts_the_range_clear_of_the_marks():
    _, facts = chart_plotly.build_figure(ChartData.model_validate(SPECS["inside_legend"].data))
    assert facts.extra["legend_overlap"] == []
    legend = facts.extra["legend_box"]
    assert facts.extra["axes_box"][0] < legend[0] and legend[2] < facts.extra["axes_box"][2]
    labels = [t.box for t in facts.texts if t.role == "value_label"]
    assert not any(chart_plotly._overlap(b, legend) for b in labels)


@pytest.mark.parametrize("change, message", [
    ({"theme": "neon"}, "style.theme='neon'"),
    ({"legend_loc": "upper right", "theme": "plain", "width_px": 100}, "no room for the plot area"),
    ({"font_family": "Comic Sans"}, "style.font_family='Comic Sans'"),
    ({"width_px": 120, "height_px": 90}, "no room for the plot area"),
])
def test_bad_style_is_a_clear_render_error(change, message):
    data = ChartData.model_validate(SPECS["bar"].data)
    data.style = data.style.model_copy(update=change)
    with pytest.raises(RenderError, match=message.replace("(", r"\(")):
        chart_plotly.build_figure(data)


def test_no_browser_gives_the_install_hint(monkeypatch):
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RenderError, match="plotly export needs Chrome or Chromium: install it"):
        chart_plotly.find_browser()
    monkeypatch.setattr(chart_plotly, "_server", None)  # as in a fresh worker
    with pytest.raises(RenderError, match="or set BROWSER_PATH"):
        chart_plotly.render_plotly_batch([SPECS["bar"]])


def test_bad_browser_path_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "nochrome"))
    with pytest.raises(RenderError, match="BROWSER_PATH=.*nochrome.* is not an executable file"):
        chart_plotly.find_browser()


# ---- renders (need kaleido and Chromium) --------------------------------------------------------

def _need_browser() -> None:
    pytest.importorskip("kaleido", reason="plotly export needs the kaleido package")
    try:
        chart_plotly.find_browser()
    except RenderError as e:
        pytest.skip(f"no browser for plotly export: {e}")


@pytest.fixture(scope="module")
def renders():
    _need_browser()
    out = dict(zip(SPECS, chart_plotly.render_plotly_batch(list(SPECS.values()))))
    for name, r in out.items():  # kept for looking at: /tmp/plotly_test_<type>.png
        Image.open(io.BytesIO(r.png)).save(f"/tmp/plotly_test_{name}.png")
    yield out
    chart_plotly.close_plotly()


@pytest.mark.plotly
def test_size_is_exact(renders):
    for name, r in renders.items():
        st = SPECS[name].data["style"]
        image = Image.open(io.BytesIO(r.png))
        assert image.size == (st["width_px"], st["height_px"]) == (r.facts.width, r.facts.height), name
        assert image.mode == "RGB" and not image.info, name  # flattened, no metadata chunks


@pytest.mark.plotly
def test_same_spec_same_bytes_in_any_order(renders):
    again = chart_plotly.render_plotly_batch([SPECS["line"], SPECS["bar"], SPECS["line"]])
    assert again[0].png == again[2].png == renders["line"].png
    assert again[1].png == renders["bar"].png
    assert again[1].facts == renders["bar"].facts


@pytest.mark.plotly
@pytest.mark.slow
def test_same_bytes_in_another_process(renders):
    code = ("import hashlib, sys; sys.path.insert(0, sys.argv[1]); import test_chart_plotly as t; "
            "from deltaprompts.generators.chart_plotly import render_plotly_batch as r; "
            "print(hashlib.sha256(r([t.SPECS['bar']])[0].png).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code, str(__import__("pathlib").Path(__file__).parent)],
                         capture_output=True, text=True, timeout=180, check=True)
    assert out.stdout.split()[-1] == hashlib.sha256(renders["bar"].png).hexdigest()


@pytest.mark.plotly
@pytest.mark.parametrize("name", ["bar", "grouped_bar", "hbar", "stacked_bar", "inside_legend"])
def test_bar_boxes_match_the_pixels(renders, name):
    r = renders[name]
    arr = _pixels(r.png)
    labels = [t.box for t in r.facts.texts if t.role == "value_label"]
    for e in r.facts.entities:
        x0, y0, x1, y1 = e.box
        cx, cy, color = (x0 + x1) / 2, (y0 + y1) / 2, e.attrs["color"]
        if min(x1 - x0, y1 - y0) < 6:
            continue
        if not any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in labels):  # else the label's ink is there
            assert _is(arr, cx, cy, color, tol=0), f"{name} {e.id}: centre is not {color}"
        # 2 px inside each edge is the bar's colour, 2 px outside is not: the box is the bar to a pixel
        inside = [(x0 + 2, cy), (x1 - 2, cy), (cx, y0 + 2), (cx, y1 - 2)]
        outside = [(x0 - 2, cy), (x1 + 2, cy), (cx, y0 - 2), (cx, y1 + 2)]
        assert all(_is(arr, x, y, color) for x, y in inside), f"{name} {e.id}: box larger than the bar"
        assert not any(_is(arr, x, y, color, tol=40) for x, y in outside if 0 <= y < arr.shape[0]), \
            f"{name} {e.id}: bar larger than the box"


@pytest.mark.plotly
def test_line_point_boxes_hold_their_marker(renders):
    r = renders["line"]
    arr = _pixels(r.png)
    for e in r.facts.entities:
        x0, y0, x1, y1 = (int(round(v)) for v in e.box)
        patch = arr[y0:y1 + 1, x0:x1 + 1]
        assert (np.abs(patch - _rgb(e.attrs["color"])).max(-1) <= 2).any(), e.id
        # the box is centred on the marker: its centre shows the last-drawn series whose box holds it
        cx, cy = (e.box[0] + e.box[2]) / 2, (e.box[1] + e.box[3]) / 2
        top = [o for o in r.facts.entities if o.box[0] < cx < o.box[2] and o.box[1] < cy < o.box[3]][-1]
        assert _is(arr, cx, cy, top.attrs["color"], tol=10), e.id


@pytest.mark.plotly
def test_pie_wedges_sit_where_computed(renders):
    for name in ("pie", "pie_rim"):
        r = renders[name]
        arr = _pixels(r.png)
        (cx, cy), radius = r.facts.extra["pie_center"], r.facts.extra["pie_radius"]
        values = SPECS[name].data["series"][0]["values"]
        start = 0.0
        for e, v in zip(r.facts.entities, values):
            sweep = 360 * v / sum(values)
            for frac, rad in ((0.5, 0.35), (0.5, 0.97), (0.1, 0.9), (0.9, 0.9)):
                a = math.radians(start + frac * sweep)
                x, y = cx + rad * radius * math.sin(a), cy - rad * radius * math.cos(a)
                assert _is(arr, x, y, e.attrs["color"]), (name, e.id, frac, rad)
                assert e.box[0] - 1 <= x <= e.box[2] + 1 and e.box[1] - 1 <= y <= e.box[3] + 1, e.id
            start += sweep
        # just outside the rim is background
        assert not _is(arr, cx, cy - 1.03 * radius, r.facts.entities[0].attrs["color"], tol=40), name


@pytest.mark.plotly
def test_text_boxes_cover_their_ink(renders):
    for name, r in renders.items():
        arr = _pixels(r.png)
        background = arr[1, 1]
        for t in r.facts.texts:
            x0, y0, x1, y1 = (int(round(v)) for v in t.box)
            ink = np.abs(arr[max(y0 - 1, 0):y1 + 2, max(x0 - 1, 0):x1 + 2] - background).sum(-1) > 150
            assert ink.any(), f"{name}: no ink in the {t.role} box of {t.text!r}"


@pytest.mark.plotly
def test_chromium_draws_dejavu_sans(renders):
    """The title's ink is as wide as DejaVu Sans says. Chromium rounds hinted glyph advances, so widths
    differ from PIL's by up to ~3% (measured over 10-30 px); Liberation Sans, the usual substitute,
    is ~10% narrower."""
    r = renders["bar"]
    arr = _pixels(r.png)
    title = next(t for t in r.facts.texts if t.role == "title")
    x0, y0, x1, y1 = (int(round(v)) for v in title.box)
    cols = np.nonzero((np.abs(arr[y0:y1, x0 - 20:x1 + 20] - arr[1, 1]).sum(-1) > 150).any(0))[0]
    measured = cols.max() - cols.min() + 1
    font = chart_plotly._font("DejaVu Sans", 13.0 * 100 / 72)
    left, _, right, _ = font.getbbox("Regional revenue")
    assert abs(measured - (right - left)) <= 0.04 * (right - left), (measured, right - left)


@pytest.mark.plotly
@pytest.mark.slow
def test_a_batch_costs_much_less_than_cold_starts(renders):
    chart_plotly.close_plotly()
    t = time.perf_counter()
    chart_plotly.render_plotly_batch([SPECS["bar"]])  # browser start + one figure
    cold = time.perf_counter() - t
    batch = [make_spec("bar", index=i, value_labels=bool(i % 2)) for i in range(12)]
    t = time.perf_counter()
    chart_plotly.render_plotly_batch(batch)
    per_figure = (time.perf_counter() - t) / len(batch)
    print(f"plotly: cold {cold:.2f} s/figure, batched {per_figure:.3f} s/figure")
    assert per_figure < cold
