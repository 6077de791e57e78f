"""Node-link graphs (scene.graph): labelled nodes, optionally weighted or directed edges, laid out with
networkx (spring, circular, shell) and drawn with PIL; the layout is redrawn until nothing is ambiguous."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deltaprompts.errors import LayoutError
from deltaprompts.generators.base import Generator, Rendered, choice, png_bytes, register
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec, TextSpan

FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
LETTERS = tuple("BCDEFGHJKLMNPQRSTUVWXYZ")  # no I or O (read as 1 and 0 next to weights), no A (an article)
CITIES = ("Oslo", "Rome", "Lima", "Kyiv", "Doha", "Riga", "Bern", "Cairo", "Paris", "Tokyo", "Delhi", "Quito",
          "Dakar", "Hanoi", "Seoul", "Minsk", "Sofia", "Tunis", "Accra", "Baku", "Lagos", "Perth", "Vigo", "Nice")
LAYOUTS = ("spring", "circular", "shell")  # kamada_kawai needs scipy, which is not a dependency
NODE_FILL, NODE_EDGE, EDGE_INK, TEXT_INK = (222, 235, 250), (40, 70, 120), (60, 60, 60), (20, 20, 20)
BACKGROUND = (255, 255, 255)
SS = 3  # supersampling factor: drawn at 3x and box-filtered down


@lru_cache(maxsize=16)
def font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT), size=px)


def text_box(text: str, px: int, cx: float, cy: float) -> tuple[float, float, float, float]:
    """The ink box of `text` drawn centred (anchor "mm") on (cx, cy) at `px` pixels, in image pixels."""
    x0, y0, x1, y1 = font(px * SS).getbbox(text, anchor="mm")
    return (cx + x0 / SS, cy + y0 / SS, cx + x1 / SS, cy + y1 / SS)


def node_shapes(d: dict[str, Any]) -> list[tuple[float, float, float, float]]:
    """Each node's outline box: a circle of radius r for short labels, a rounded box around a longer one."""
    out = []
    for (x, y), label in zip(d["pos"], d["labels"]):
        tb = text_box(label, d["font_px"], x, y)
        hw = max(d["radius"], (tb[2] - tb[0]) / 2 + 0.35 * d["font_px"])
        out.append((x - hw, y - d["radius"], x + hw, y + d["radius"]))
    return out


def _clip_to_box(p: np.ndarray, q: np.ndarray, box: tuple[float, ...], circle: bool) -> np.ndarray:
    """The point where segment centre p -> q leaves node box (a circle when `circle`)."""
    v = q - p
    if circle:
        return p + v / np.linalg.norm(v) * (box[2] - box[0]) / 2
    hw, hh = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    t = min(hw / abs(v[0]) if v[0] else math.inf, hh / abs(v[1]) if v[1] else math.inf)
    return p + v * t


def edge_geometry(d: dict[str, Any], boxes: list[tuple[float, ...]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each edge's visible segment, from the border of its first node to the border of its second."""
    pos = np.asarray(d["pos"], float)
    out = []
    for u, v, *_ in d["edges"]:
        cu, cv = boxes[u][2] - boxes[u][0] <= 2 * d["radius"] + 1e-9, boxes[v][2] - boxes[v][0] <= 2 * d["radius"] + 1e-9
        out.append((_clip_to_box(pos[u], pos[v], boxes[u], cu), _clip_to_box(pos[v], pos[u], boxes[v], cv)))
    return out


def weight_boxes(d: dict[str, Any], segs: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[float, ...]]:
    """The padded white box behind each edge's weight label (centred on the edge's midpoint)."""
    out = []
    for (a, b), (_, _, *w) in zip(segs, d["edges"]):
        if not w:
            continue
        m = (a + b) / 2
        tb = text_box(str(w[0]), d["weight_px"], float(m[0]), float(m[1]))
        out.append((tb[0] - 2, tb[1] - 2, tb[2] + 2, tb[3] + 2))
    return out


def _seg_hits_box(a: np.ndarray, b: np.ndarray, box: tuple[float, ...], pad: float) -> bool:
    n = max(2, int(np.linalg.norm(b - a)))
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = a + t * (b - a)
    return bool(np.any((pts[:, 0] > box[0] - pad) & (pts[:, 0] < box[2] + pad) &
                       (pts[:, 1] > box[1] - pad) & (pts[:, 1] < box[3] + pad)))


def _boxes_meet(a: tuple[float, ...], b: tuple[float, ...], pad: float) -> bool:
    return not (a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1])


def legibility_problem(d: dict[str, Any]) -> str | None:
    """Why this layout could be misread, or None: nodes touching, an edge through a node it does not join,
    two edges leaving a node almost along the same line, a weight label overlapping a node, an edge or another."""
    boxes = node_shapes(d)
    size, pad = d["size"], 0.5 * d["radius"]
    for i, b in enumerate(boxes):
        if b[0] < 2 or b[1] < 2 or b[2] > size - 2 or b[3] > size - 2:
            return "node_clipped"
        if any(_boxes_meet(b, o, pad) for o in boxes[:i]):
            return "nodes_touch"
    segs = edge_geometry(d, boxes)
    # an edge shows a stretch of line on both sides of its weight label and before its arrowhead
    need = 1.2 * d["radius"] + (0.75 * d["radius"] + 4 if d["directed"] else 0.0) \
        + (1.2 * d["weight_px"] + 8 if d["weighted"] else 0.0)
    for (u, v, *_), (a, b) in zip(d["edges"], segs):
        if np.linalg.norm(b - a) < need:
            return "edge_too_short"
        if any(_seg_hits_box(a, b, box, 0.35 * d["radius"]) for k, box in enumerate(boxes) if k not in (u, v)):
            return "edge_through_node"
    pos = np.asarray(d["pos"], float)
    for k in range(len(pos)):  # edges leaving one node need distinct directions
        dirs = [pos[v if u == k else u] - pos[k] for u, v, *_ in d["edges"] if k in (u, v)]
        ang = sorted(math.atan2(y, x) for x, y in dirs)
        if len(ang) > 1 and min((b - a) % (2 * math.pi) for a, b in zip(ang, ang[1:] + [ang[0] + 2 * math.pi])) \
                < math.radians(14):
            return "edges_too_close"
    wboxes = weight_boxes(d, segs)
    for i, wb in enumerate(wboxes):
        if wb[0] < 0 or wb[1] < 0 or wb[2] > size or wb[3] > size:
            return "weight_clipped"
        if any(_boxes_meet(wb, o, 2) for o in wboxes[:i]) or any(_boxes_meet(wb, o, 2) for o in boxes):
            return "weight_overlap"
        if any(_seg_hits_box(a, b, wb, 2) for j, (a, b) in enumerate(segs) if j != i):
            return "weight_on_edge"
    return None


def _random_graph(rng: np.random.Generator, n: int, density: float, parts: int) -> list[tuple[int, int]]:
    """Edges of a graph on n nodes with `parts` connected components: a random spanning tree per part,
    plus each other pair of a part joined with probability `density`."""
    order = [int(i) for i in rng.permutation(n)]
    cuts = sorted(int(c) for c in rng.choice(np.arange(2, n - 1), parts - 1, replace=False)) if parts > 1 else []
    groups = [order[a:b] for a, b in zip([0, *cuts], [*cuts, n])]
    edges: set[tuple[int, int]] = set()
    for g in groups:
        for i in range(1, len(g)):
            edges.add(tuple(sorted((g[i], g[int(rng.integers(0, i))]))))  # type: ignore[arg-type]
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                if rng.random() < density:
                    edges.add(tuple(sorted((g[i], g[j]))))  # type: ignore[arg-type]
    return sorted(edges)


def _positions(rng: np.random.Generator, layout: str, n: int, edges: list[tuple[int, int]], size: int,
               margin: float) -> list[list[float]]:
    import networkx as nx  # only when sampling: the family registry loads this module

    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    if layout == "spring":
        p = nx.spring_layout(g, seed=int(rng.integers(0, 2 ** 31)), k=1.6 / math.sqrt(n))
    elif layout == "shell" and n >= 7:
        inner = sorted(int(i) for i in rng.permutation(n)[: max(2, n // 3)])
        p = nx.shell_layout(g, [inner, [i for i in range(n) if i not in inner]], rotate=float(rng.uniform(0, 1)))
    else:
        perm = [int(i) for i in rng.permutation(n)]
        g2 = nx.Graph()
        g2.add_nodes_from(perm)  # circular order follows node insertion order
        p = nx.circular_layout(g2)
    xy = np.array([p[i] for i in range(n)], float)
    lo, hi = xy.min(0), xy.max(0)
    xy = (xy - lo) / np.where(hi - lo > 1e-9, hi - lo, 1.0)
    xy = margin + xy * (size - 2 * margin)
    return [[round(2 * float(x)) / 2, round(2 * float(y)) / 2] for x, y in xy]


@register
class Graph(Generator):
    """A node-link diagram: labelled nodes, edges optionally weighted (printed) or directed (arrows)."""

    name = "scene.graph"
    domain = "scene"
    version = "1"
    description = ("Node-link graphs with labelled nodes (letters or city names), optional printed edge weights "
                   "and arrows, laid out by networkx; for degree, reachability and shortest-path questions.")
    knobs = (
        Knob("n_nodes", "int", 7, "Most nodes drawn (each graph draws n-2..n).", lo=4, hi=12,
             difficulty="higher is harder"),
        Knob("density", "float", 0.25, "Chance that two nodes of one component are joined beyond a spanning tree.",
             lo=0.0, hi=0.45, difficulty="higher is harder"),
        Knob("disconnected", "float", 0.4, "Chance that the graph has two components (so some paths do not exist).",
             lo=0.0, hi=1.0, difficulty="none"),
        Knob("weighted", "choice", "random", "Print a whole-number weight on every edge.",
             choices=("yes", "no", "random"), difficulty="yes is harder"),
        Knob("directed", "choice", "random", "Draw edges as one-way arrows.", choices=("yes", "no", "random"),
             difficulty="yes is harder"),
        Knob("layout", "choice", "any", "networkx layout: spring, circular or shell.", choices=("any", *LAYOUTS),
             difficulty="spring is harder (edges cross more)"),
        Knob("labels", "choice", "letters", "Node names: single letters or city names.",
             choices=("letters", "cities"), difficulty="none"),
        Knob("image_size", "int", 400, "Width and height of the image in pixels.", lo=320, hi=1024,
             difficulty="lower is harder"),
    )

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        """Draw a graph and its labels, then layouts until one is legible (legibility_problem)."""
        kn = {k.name: k.default for k in self.knobs} | dict(knobs)
        size = int(kn["image_size"])
        hi = int(kn["n_nodes"])
        flag = {k: (kn[k] == "yes") if kn[k] != "random" else bool(rng.random() < 0.5) for k in ("weighted", "directed")}
        scale = size / 400
        radius, font_px = round(15 * scale, 1), max(9, round(14 * scale))
        last = None
        for attempt in range(120):  # a crowded graph that will not lay out legibly loses a node every 15 draws
            top = max(4, hi - attempt // 15)
            density = float(kn["density"]) * (0.5 if attempt >= 60 else 1.0)
            n = int(rng.integers(max(4, top - 2), top + 1))
            parts = 2 if n >= 5 and rng.random() < kn["disconnected"] else 1
            pairs = _random_graph(rng, n, density, parts)
            edges: list[list[int]] = []
            for u, v in pairs:
                if flag["directed"] and rng.random() < 0.5:
                    u, v = v, u
                edges.append([u, v, int(rng.integers(1, 10))] if flag["weighted"] else [u, v])
            pool = LETTERS if kn["labels"] == "letters" else CITIES
            labels = [pool[int(i)] for i in rng.permutation(len(pool))[:n]]
            layout = choice(rng, LAYOUTS) if kn["layout"] == "any" else kn["layout"]
            for _ in range(6):
                d = {"size": size, "radius": radius, "font_px": font_px, "weight_px": max(9, round(13 * scale)),
                     "labels": labels, "edges": edges, "directed": flag["directed"], "weighted": flag["weighted"],
                     "layout": layout,
                     "pos": _positions(rng, layout, n, pairs, size, 0.1 * size if kn["labels"] == "letters"
                                       else 0.14 * size)}
                last = legibility_problem(d)
                if last is None:
                    return d
        raise LayoutError(f"no legible layout of a graph in 120 draws (last problem: {last})")

    def draw(self, spec: Spec) -> list[Image.Image]:
        """The figure alone, as render draws it, without text measurement or Facts; the bare baseline of
        benchmarks/render.py."""
        return [self._draw(spec)[0]]

    @staticmethod
    def _draw(spec: Spec) -> tuple[Image.Image, list[tuple[float, ...]], list[tuple[np.ndarray, np.ndarray]]]:
        """Draw edges, arrowheads, nodes, labels and weights at 3x and box-filter down; returns the image, the
        node boxes and the edge segments, for the Facts."""
        d = spec.data
        size, r = d["size"], d["radius"]
        boxes = node_shapes(d)
        segs = edge_geometry(d, boxes)
        img = Image.new("RGB", (size * SS, size * SS), BACKGROUND)
        draw = ImageDraw.Draw(img)
        lw = max(2, round(1.6 * size / 400 * SS))
        head = 0.75 * r
        for a, b in segs:
            end = b - (b - a) / np.linalg.norm(b - a) * head * 0.8 if d["directed"] else b
            draw.line([*(a * SS), *(end * SS)], fill=EDGE_INK, width=lw)
            if d["directed"]:  # a filled triangle with its tip on the target node's border
                u = (b - a) / np.linalg.norm(b - a)
                nrm = np.array([-u[1], u[0]])
                base = b - u * head
                tri = [b, base + nrm * head * 0.45, base - nrm * head * 0.45]
                draw.polygon([float(c) * SS for p in tri for c in p], fill=EDGE_INK)
        for (x0, y0, x1, y1), label in zip(boxes, d["labels"]):
            draw.rounded_rectangle([x0 * SS, y0 * SS, x1 * SS, y1 * SS], radius=r * SS, fill=NODE_FILL,
                                   outline=NODE_EDGE, width=lw)
        for (x, y), label in zip(d["pos"], d["labels"]):
            draw.text((x * SS, y * SS), label, font=font(d["font_px"] * SS), fill=TEXT_INK, anchor="mm")
        wboxes = iter(weight_boxes(d, segs))
        for (a, b), e in zip(segs, d["edges"]):
            if len(e) < 3:
                continue
            wb, m = next(wboxes), (a + b) / 2
            draw.rectangle([wb[0] * SS, wb[1] * SS, wb[2] * SS, wb[3] * SS], fill=BACKGROUND)
            draw.text((float(m[0]) * SS, float(m[1]) * SS), str(e[2]), font=font(d["weight_px"] * SS),
                      fill=(150, 30, 30), anchor="mm")
        return img.reduce(SS), boxes, segs

    def render(self, spec: Spec) -> Rendered:
        """Draw the Spec (through _draw); Facts from the drawn geometry."""
        img, boxes, segs = self._draw(spec)
        d = spec.data
        size = d["size"]
        texts = [TextSpan(text=label, box=_r(text_box(label, d["font_px"], x, y)), role="label")
                 for (x, y), label in zip(d["pos"], d["labels"])]
        weights = {}
        for k, ((a, b), e) in enumerate(zip(segs, d["edges"])):
            if len(e) < 3:
                continue
            m = (a + b) / 2
            texts.append(TextSpan(text=str(e[2]), box=_r(text_box(str(e[2]), d["weight_px"], *m)), role="weight"))
            weights[f"e{k}"] = str(e[2])
        ids = [f"n{i}" for i in range(len(d["labels"]))]
        deg_in, deg_out = [0] * len(ids), [0] * len(ids)
        for u, v, *_ in d["edges"]:
            deg_out[u] += 1
            deg_in[v] += 1
        entities = []
        for i, (label, b) in enumerate(zip(d["labels"], boxes)):
            attrs: dict[str, Any] = {"label": label, "degree": deg_in[i] + deg_out[i]}
            if d["directed"]:
                attrs.update(in_degree=deg_in[i], out_degree=deg_out[i])
            entities.append(Entity(id=ids[i], attrs=attrs, box=_r(b)))
        edges = [[ids[u], ids[v], *w] for u, v, *w in d["edges"]]
        extra = {"edges": edges, "directed": d["directed"], "weighted": d["weighted"], "layout": d["layout"],
                 "edge_segments": [[_r2(a), _r2(b)] for a, b in segs], "printed_weights": weights,
                 "node_fill": "#%02x%02x%02x" % NODE_FILL, "edge_ink": "#%02x%02x%02x" % EDGE_INK}
        context = {"noun": "node", "nouns": "nodes", "weighted": bool(d["weighted"]),
                   "edge": "arrow" if d["directed"] else "edge",
                   "edges": "arrows" if d["directed"] else "edges"}
        facts = Facts(domain="scene", kind="graph", width=size, height=size, entities=entities, texts=texts,
                      fields={"weighted": True if d["weighted"] else None, "directed": True if d["directed"] else None},
                      context=context, extra=extra)
        return Rendered(png=png_bytes(img), facts=facts)


def _r(b: tuple[float, ...]) -> tuple[float, float, float, float]:
    return tuple(round(float(v), 2) for v in b)  # type: ignore[return-value]


def _r2(p: np.ndarray) -> list[float]:
    return [round(float(p[0]), 2), round(float(p[1]), 2)]
