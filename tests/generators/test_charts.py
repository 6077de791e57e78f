"""Chart families: determinism, Facts against the drawn artists and the PNG pixels, templates, knobs."""

from __future__ import annotations

import gc
import importlib.util
import io
import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import KnobError
from deltaprompts.generators.base import FAMILIES
from deltaprompts.generators.chart_mpl import build_figure
from deltaprompts.generators.chart_kind import KINDS
from deltaprompts.generators.chart_sampling import color_name, eligible_topics, load_topics, slice_colors
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.errors import ProgramError
from deltaprompts.records import Question

# the kinds whose marks these tests know how to check by pixel (each newer kind has a test file of its own)
CHARTS = ("chart.bar", "chart.hbar", "chart.grouped_bar", "chart.stacked_bar", "chart.line", "chart.pie")
ALL_CHARTS = tuple(f for f in FAMILIES.names() if f.startswith("chart."))
# a few knob settings per family, so that labels, legends and themes vary across the cached renders
KNOB_SETS = ({}, {"value_labels": "on", "style": "dark", "legend": "inside"}, {"value_labels": "off", "style": "gray"},
             {"value_decimals": 1, "style": "minimal", "value_labels": "on"}, {"size": "small", "legend": "outside"})


def _knobs(family: str, given: dict) -> dict:
    fam = FAMILIES.get(family)()
    names = {k.name for k in fam.knobs}
    return fam.resolve_knobs({k: v for k, v in given.items() if k in names})


@pytest.fixture(scope="module")
def renders():
    """family -> [(spec, rendered)]: each family rendered once per knob set, shared by the tests."""
    out = {}
    for family in ALL_CHARTS:
        fam = FAMILIES.get(family)()
        out[family] = []
        for i, given in enumerate(KNOB_SETS):
            spec = fam.sample(7, i, _knobs(family, given))
            out[family].append((spec, fam.render(spec)))
    return out


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def test_all_chart_families_registered():
    assert set(CHARTS) <= set(FAMILIES.names())


@pytest.mark.parametrize("family", CHARTS)
def test_same_spec_same_bytes(family):
    fam = FAMILIES.get(family)()
    knobs = _knobs(family, {"value_labels": "on"})
    a, b = fam.sample(3, 11, knobs), fam.sample(3, 11, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png
    assert ra.facts == rb.facts
    assert ra.png[:8] == b"\x89PNG\r\n\x1a\n" and b"tEXt" not in ra.png  # no metadata chunks


@pytest.mark.parametrize("family", CHARTS)
def test_image_size_and_text_boxes(family, renders):
    for spec, r in renders[family]:
        st = spec.data["style"]
        img = Image.open(io.BytesIO(r.png))
        assert img.size == (st["width_px"], st["height_px"]) == (r.facts.width, r.facts.height)
        assert r.facts.domain == "chart" and r.facts.kind == spec.data["chart_type"]
        roles = {t.role for t in r.facts.texts}
        assert "title" in roles
        if family != "chart.pie":
            assert {"x_tick", "y_tick"} <= roles
        for t in r.facts.texts:
            x0, y0, x1, y1 = t.box
            assert x1 > x0 and y1 > y0, t
            assert -0.5 <= x0 and x1 <= r.facts.width + 0.5 and -0.5 <= y0 and y1 <= r.facts.height + 0.5, t
        assert r.facts.extra["renderer"] == "matplotlib"
        assert r.facts.fields["title"] == spec.data["title"]


@pytest.mark.parametrize("family", CHARTS)
def test_facts_match_the_drawn_artists(family, renders):
    """Entity values against the artists of an independent re-build (bar heights, wedge angles,
    line data), and the pixel boxes proportional to the values on the axes scale."""
    for spec, r in renders[family]:
        data = ChartData.model_validate(spec.data)
        d = build_figure(data)
        dec = data.style.value_decimals
        ents = {e.id: e for e in r.facts.entities}
        assert len(ents) == len(data.series) * len(data.categories)
        for m in d.marks:
            e = ents[m.id]
            assert e.attrs["category"] == data.categories[m.category]
            assert e.attrs["series"] == data.series[m.series].name
            if data.chart_type == "pie":
                share = (m.artist.theta2 - m.artist.theta1) / 360 * 100
                assert abs(share - e.attrs["percent"]) <= 0.5 * 10 ** -dec + 1e-6
            elif data.chart_type == "line":
                assert d.ax.lines[m.series].get_ydata()[m.category] == pytest.approx(e.attrs["value"])
            else:
                size = m.artist.get_width() if data.chart_type == "hbar" else m.artist.get_height()
                assert size == pytest.approx(e.attrs["value"])
        vals = np.array([e.attrs["value"] for e in r.facts.entities])
        boxes = np.array([e.box for e in r.facts.entities])
        if data.chart_type in ("bar", "grouped_bar", "stacked_bar", "hbar"):
            px = boxes[:, 2] - boxes[:, 0] if data.chart_type == "hbar" else boxes[:, 3] - boxes[:, 1]
            scale = px / vals
            assert np.ptp(scale) <= 1.5 / vals.min() + 1e-6  # same px per unit for every bar
        elif data.chart_type == "line":
            cy = (boxes[:, 1] + boxes[:, 3]) / 2
            slope, icpt = np.polyfit(vals, cy, 1)
            assert slope < 0 and np.abs(cy - (slope * vals + icpt)).max() < 0.05
        else:
            assert sum(e.attrs["percent"] for e in r.facts.entities) == pytest.approx(100, abs=0.5 * len(vals))
        d.fig.clear()


@pytest.mark.parametrize("family", CHARTS)
def test_mark_pixels_have_the_series_colour(family, renders):
    for spec, r in renders[family]:
        data = ChartData.model_validate(spec.data)
        img = _pixels(r.png)
        hidden = set(r.facts.extra["legend_overlap"])
        if data.chart_type == "pie":
            boxes = np.array([e.box for e in r.facts.entities])
            cx, cy = (boxes[:, 0].min() + boxes[:, 2].max()) / 2, (boxes[:, 1].min() + boxes[:, 3].max()) / 2
            radius = (boxes[:, 2].max() - boxes[:, 0].min()) / 2
            start = 90.0
            for e, color in zip(r.facts.entities, slice_colors(data)):
                sweep = 360 * data.series[0].values[int(e.id.split("c")[1])] / sum(data.series[0].values)
                mid = math.radians(start - sweep / 2)
                start -= sweep
                x, y = cx + 0.4 * radius * math.cos(mid), cy - 0.4 * radius * math.sin(mid)
                assert tuple(img[int(y), int(x)]) == _rgb(color), e.id
                assert e.attrs["color"] == color and e.attrs["color_name"] == color_name(color)
            continue
        good = total = 0
        for e in r.facts.entities:
            if e.id in hidden:
                continue
            x0, y0, x1, y1 = e.box
            want = _rgb(e.attrs["color"])
            if data.chart_type == "stacked_bar":  # a value label sits at the centre: use the commonest colour
                patch = img[int(y0) + 1:int(y1) - 1, int(x0) + 1:int(x1) - 1].reshape(-1, 3)
                colors, counts = np.unique(patch, axis=0, return_counts=True)
                got = tuple(colors[counts.argmax()])
            else:
                got = tuple(img[int((y0 + y1) / 2), int((x0 + x1) / 2)])
            total += 1
            good += got == want
        if data.chart_type == "line" and len(data.series) > 1:  # another line may cross a point
            assert good >= 0.85 * total
        elif data.chart_type == "line" and not data.style.line_markers:
            assert good >= 0.8 * total  # a thin line's centre pixel can be antialiased
        else:
            assert good == total


@pytest.mark.parametrize("family", CHARTS)
def test_legend_overlap_is_recorded(family, renders):
    for _, r in renders[family]:
        legend = r.facts.extra["legend_box"]
        if legend is None:
            assert r.facts.extra["legend_overlap"] == []
            continue
        covered = [e.id for e in r.facts.entities
                   if min(e.box[2], legend[2]) - max(e.box[0], legend[0]) > 0
                   and min(e.box[3], legend[3]) - max(e.box[1], legend[1]) > 0]
        assert set(r.facts.extra["legend_overlap"]) <= set(covered)


def test_layout_is_clean(renders):
    """Across the renders, legends rarely cover marks and texts rarely collide (and when they do,
    extra records it for the legibility checks)."""
    flagged = [(f, spec.index) for f, items in renders.items() if f in CHARTS for spec, r in items
               if r.facts.extra["legend_overlap"] or r.facts.extra["text_overlaps"]]
    assert len(flagged) <= sum(len(renders[f]) for f in CHARTS) // 10, flagged


@pytest.mark.parametrize("family", CHARTS)
def test_values_distinct_at_shown_precision(family):
    fam = FAMILIES.get(family)()
    for decimals in (0, 1, 2):
        knobs = _knobs(family, {"value_decimals": decimals})
        for i in range(25):
            data = ChartData.model_validate(fam.sample(1, i, knobs).data)
            vals = [round(v, decimals) for s in data.series for v in s.values]
            assert all(v == round(v, decimals) for s in data.series for v in s.values)
            assert len(set(vals)) == len(vals), (i, vals)
            assert min(vals) > 0
            if family == "chart.pie":
                total = sum(vals)
                shares = [round(100 * v / total, decimals) for v in vals]
                assert len(set(shares)) == len(shares) and min(shares) >= 3


def test_every_size_of_every_kind_has_a_topic():
    assert len(load_topics()) >= 20
    for name in KINDS.names():
        kind = KINDS.get(name)
        lo, hi = kind.n_categories
        s_hi = (kind.n_series or (1, 1))[1]
        for n in (lo, hi):
            for decimals in (0, 1, 2):
                assert eligible_topics(kind, n, s_hi, decimals), (name, n, s_hi, decimals)


@pytest.mark.parametrize("given, knob", [
    ({"n_categories": 99}, "n_categories"), ({"n_categories": 1}, "n_categories"),
    ({"value_decimals": 5}, "value_decimals"), ({"value_labels": "maybe"}, "value_labels"),
    ({"style": "neon"}, "style"), ({"min_gap_pct": -1}, "min_gap_pct"), ({"n_series": 9}, "n_series"),
])
def test_bad_knob_names_knob_and_range(given, knob):
    fam = FAMILIES.get("chart.grouped_bar")()
    with pytest.raises(KnobError) as err:
        fam.resolve_knobs(given)
    msg = str(err.value)
    assert knob in msg and "allowed" in msg
    if knob == "n_categories":
        assert "[2, 8]" in msg or "8" in msg


def test_templates_live_and_reexecute(renders):
    tpls = [t for t in load_templates() if t.domain == "chart"]
    assert len(tpls) >= 10
    rng = np.random.default_rng(0)
    made = {t.name: 0 for t in tpls}
    for family, items in renders.items():
        for _, r in items:
            for t in templates_for(family, r.facts, tpls):
                for _ in range(2):
                    try:
                        q = make_question(t, r.facts, rng, mc_fraction=0.3)
                    except ProgramError:
                        continue
                    made[t.name] += 1
                    back = Question.model_validate_json(q.model_dump_json())
                    assert engine.execute(back.program, r.facts) == q.value
                    assert "{" not in q.text and q.text.strip()
    for t in [t for t in tpls if made[t.name] == 0]:  # a rare question (two series crossing once): more charts
        for family in [f for f in t.applies_to if f in ALL_CHARTS]:
            fam = FAMILIES.get(family)()
            for i in range(len(KNOB_SETS), len(KNOB_SETS) + 30):
                r = fam.render(fam.sample(7, i, _knobs(family, {})))
                if t not in templates_for(family, r.facts, tpls):
                    continue
                for _ in range(3):
                    try:
                        q = make_question(t, r.facts, rng, mc_fraction=0.3)
                    except ProgramError:
                        continue
                    made[t.name] += 1
                    assert engine.execute(Question.model_validate_json(q.model_dump_json()).program, r.facts) == q.value
                if made[t.name]:
                    break
            if made[t.name]:
                break
    assert not [n for n, c in made.items() if c == 0], made
    for t in tpls:
        assert len(t.phrasings) >= 3, t.name


def test_no_figures_leak():
    fam = FAMILIES.get("chart.bar")()
    knobs = fam.resolve_knobs({})
    for i in range(5):
        fam.render(fam.sample(0, i, knobs))
    gc.collect()
    assert sum(isinstance(o, Figure) for o in gc.get_objects()) == 0


@pytest.mark.skipif(importlib.util.find_spec("deltaprompts.generators.chart_plotly") is None,
                    reason="the plotly renderer is not there yet")
@pytest.mark.plotly
def test_plotly_renderer_path():
    fam = FAMILIES.get("chart.bar")()
    spec = fam.sample(0, 0, fam.resolve_knobs({"renderer": "plotly"}))
    r = fam.render(spec)
    assert Image.open(io.BytesIO(r.png)).size == (spec.data["style"]["width_px"], spec.data["style"]["height_px"])
