"""Grid mazes (scene.maze) drawn with PIL: a recursive-backtracker maze, optionally with extra openings (loops)
or a goal walled off, and four marked cells: start S, goal G and two markers P and Q."""

from __future__ import annotations

from collections import deque
from functools import lru_cache
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deltaprompts.errors import LayoutError
from deltaprompts.generators.base import Generator, Rendered, png_bytes, register
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec, TextSpan

FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
WALL, FLOOR = (30, 30, 40), (255, 255, 255)
MARKS = {"S": ("start", (150, 220, 150)), "G": ("goal", (245, 160, 160)),
         "P": ("marker", (160, 200, 245)), "Q": ("marker", (250, 215, 130))}  # not A: answers drop articles


@lru_cache(maxsize=16)
def font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT), size=px)


def cell_id(r: int, c: int) -> str:
    return f"r{r}c{c}"


def _backtracker(rng: np.random.Generator, rows: int, cols: int) -> set[tuple[int, int]]:
    """Open passages (pairs of cell indices r*cols+c, smaller first) of a perfect maze: iterative recursive backtracker."""
    seen = np.zeros(rows * cols, bool)
    start = int(rng.integers(0, rows * cols))
    stack, seen[start], out = [start], True, set()
    while stack:
        k = stack[-1]
        r, c = divmod(k, cols)
        nxt = [(r + dr) * cols + c + dc for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
               if 0 <= r + dr < rows and 0 <= c + dc < cols and not seen[(r + dr) * cols + c + dc]]
        if not nxt:
            stack.pop()
            continue
        j = nxt[int(rng.integers(0, len(nxt)))]
        seen[j] = True
        out.add((min(k, j), max(k, j)))
        stack.append(j)
    return out


def _bfs(open_: set[tuple[int, int]], n: int, src: int) -> tuple[list[int], list[int]]:
    """(distance, parent) of every cell from src; -1 where unreachable."""
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in sorted(open_):
        adj[a].append(b)
        adj[b].append(a)
    dist, par = [-1] * n, [-1] * n
    dist[src] = 0
    q = deque([src])
    while q:
        k = q.popleft()
        for j in adj[k]:
            if dist[j] < 0:
                dist[j], par[j] = dist[k] + 1, k
                q.append(j)
    return dist, par


@register
class Maze(Generator):
    """A rectangular grid maze with start, goal and two marked cells."""

    name = "scene.maze"
    domain = "scene"
    version = "1"
    description = ("Grid mazes (recursive backtracker, optional loops, sometimes a walled-off goal) with start S, "
                   "goal G and markers P, Q; for path existence, shortest-path and which-is-closer questions.")
    knobs = (
        Knob("grid", "int", 8, "Cells per row and per column.", lo=4, hi=16, difficulty="higher is harder"),
        Knob("loops", "float", 0.1, "Fraction of the remaining inner walls knocked out (several paths exist).",
             lo=0.0, hi=0.5, difficulty="higher is harder"),
        Knob("blocked", "float", 0.4, "Chance that walls are added until the goal cannot be reached.",
             lo=0.0, hi=1.0, difficulty="none"),
        Knob("image_size", "int", 400, "Width and height of the image in pixels.", lo=200, hi=1024,
             difficulty="lower is harder"),
    )

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        """The open passages between cells and the four marked cells (S and G apart by half the grid or more)."""
        kn = {k.name: k.default for k in self.knobs} | dict(knobs)
        g, size = int(kn["grid"]), int(kn["image_size"])
        if (size - 16) / g < 12:
            raise LayoutError(f"a {g}x{g} maze needs cells of 12 px or more; {size} px leaves {(size - 16) / g:.1f}")
        n = g * g
        open_ = _backtracker(rng, g, g)
        walls = sorted({(k, k + 1) for k in range(n) if (k + 1) % g} | {(k, k + g) for k in range(n - g)} - open_)
        for i in rng.permutation(len(walls))[: round(kn["loops"] * len(walls))]:
            open_.add(walls[int(i)])
        for _ in range(100):
            s, t = (int(v) for v in rng.choice(n, 2, replace=False))
            if abs(s // g - t // g) + abs(s % g - t % g) >= g // 2:
                break
        blocked = bool(rng.random() < kn["blocked"])
        if blocked:  # close a passage on a shortest path until none is left: the goal is walled off
            while True:
                dist, par = _bfs(open_, n, s)
                if dist[t] < 0:
                    break
                path, k = [], t
                while par[k] >= 0:
                    path.append((min(k, par[k]), max(k, par[k])))
                    k = par[k]
                open_.discard(path[int(rng.integers(0, len(path)))])
        rest = [int(k) for k in rng.permutation(n) if k not in (s, t)]
        marks = {"S": s, "G": t, "P": rest[0], "Q": rest[1]}
        return {"grid": g, "size": size, "passages": sorted([a, b] for a, b in open_), "marks": marks,
                "blocked": blocked}

    @staticmethod
    def _layout(d: dict[str, Any]) -> tuple[int, int, int, int]:
        """(cell px, grid origin x0 = y0, wall px, letter px) of a maze's Spec data."""
        g, size = d["grid"], d["size"]
        cell = (size - 16) // g
        return cell, (size - cell * g) // 2, max(2, cell // 8), max(8, round(0.55 * cell))

    @staticmethod
    def _box(k: int, g: int, cell: int, x0: int) -> tuple[int, int, int, int]:
        """Pixel box (x0, y0, x1, y1) of cell k = row * g + col; the grid is square, so y0 = x0."""
        return x0 + (k % g) * cell, x0 + (k // g) * cell, x0 + (k % g + 1) * cell, x0 + (k // g + 1) * cell

    def draw(self, spec: Spec) -> list[Image.Image]:
        """The figure alone, as render draws it, without the label boxes, entities or Facts; the bare
        baseline of benchmarks/render.py."""
        d = spec.data
        g, size = d["grid"], d["size"]
        cell, x0, lw, fpx = self._layout(d)
        img = Image.new("RGB", (size, size), FLOOR)
        draw = ImageDraw.Draw(img)
        for label, k in d["marks"].items():
            b = self._box(k, g, cell, x0)
            draw.rectangle([b[0], b[1], b[2] - 1, b[3] - 1], fill=MARKS[label][1])
            draw.text(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2), label, font=font(fpx), fill=(20, 20, 20), anchor="mm")
        opened = {tuple(p) for p in d["passages"]}
        h = lw // 2
        for k in range(g * g):  # the wall on the right of and below every cell that has no passage there
            bx = self._box(k, g, cell, x0)
            if (k + 1) % g and (k, k + 1) not in opened:
                draw.rectangle([bx[2] - h, bx[1] - h, bx[2] - h + lw - 1, bx[3] - h + lw - 1], fill=WALL)
            if k + g < g * g and (k, k + g) not in opened:
                draw.rectangle([bx[0] - h, bx[3] - h, bx[2] - h + lw - 1, bx[3] - h + lw - 1], fill=WALL)
        e = x0 + g * cell
        for a, b_ in (((x0, x0), (e, x0)), ((x0, e), (e, e)), ((x0, x0), (x0, e)), ((e, x0), (e, e))):
            draw.rectangle([a[0] - h, a[1] - h, b_[0] - h + lw - 1, b_[1] - h + lw - 1], fill=WALL)
        return [img]

    def render(self, spec: Spec) -> Rendered:
        """Draw the maze (draw); Facts give the marked cells, their letters' boxes and the passages, read from
        the spec's walls."""
        d = spec.data
        g, size = d["grid"], d["size"]
        cell, x0, lw, fpx = self._layout(d)
        img = self.draw(spec)[0]
        texts, entities = [], []
        for label, k in d["marks"].items():
            b = self._box(k, g, cell, x0)
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            tb = font(fpx).getbbox(label, anchor="mm")
            texts.append(TextSpan(text=label, box=(cx + tb[0], cy + tb[1], cx + tb[2], cy + tb[3]), role="label"))
            entities.append(Entity(id=label.lower(), box=tuple(float(v) for v in b),  # type: ignore[arg-type]
                                   attrs={"label": label, "kind": MARKS[label][0], "row": k // g + 1,
                                          "col": k % g + 1, "node": cell_id(k // g, k % g)}))
        edges = [[cell_id(a // g, a % g), cell_id(b // g, b % g)] for a, b in d["passages"]]
        extra = {"edges": edges, "directed": False, "weighted": False,
                 "nodes": [cell_id(k // g, k % g) for k in range(g * g)],
                 "grid": {"rows": g, "cols": g, "cell": cell, "x0": x0, "y0": x0, "wall_px": lw},
                 "blocked": d["blocked"]}
        context = {"noun": "cell", "nouns": "cells"}
        facts = Facts(domain="scene", kind="maze", width=size, height=size, entities=entities, texts=texts,
                      context=context, extra=extra)
        return Rendered(png=png_bytes(img), facts=facts)
