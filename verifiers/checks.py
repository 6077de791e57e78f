"""Item well-posedness checks: named filters that return a rejection reason, counted by reason.

Per-item checks (`check_item`) look at one item: its program re-executes to its answer, no
step is degenerate, its answer scores as its own ground truth, and everything the question
depends on is legible in the render (text height, clipping, overlap, visible pixels, marks
under the legend). `balance` is the set-level check: within a question family no answer is
more than `ratio` times as frequent as the runner-up.

Checks live in the CHECKS registry: a function `(item, cfg) -> reason or None` registered with
`@item_check(name)` (or an entry point in the `deltaprompts.checks` group).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from deltaprompts import engine, quads
from deltaprompts.errors import ProgramError
from deltaprompts.records import Box, Entity, Facts, Item, Node, TextSpan
from deltaprompts.registry import Registry


@dataclass(frozen=True)
class CheckConfig:
    """Thresholds of the legibility checks (pixels of the rendered image)."""

    min_text_px: float = 7.0
    max_text_overlap: float = 0.15
    min_visible_px: int = 100
    max_mark_hidden: float = 0.25


CheckFn = Callable[[Item, CheckConfig], "str | None"]


class CheckRegistry(Registry[CheckFn]):
    """The per-item checks. They run in registration order (the built-ins below, cheapest and most
    basic first, then plug-ins), because an item's first rejection reason is the one counted."""

    def in_order(self) -> list[str]:
        """All check names, in the order they run."""
        self._load_plugins()
        return list(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.in_order())


CHECKS = CheckRegistry("check", entry_point_group="deltaprompts.checks")


def item_check(name: str) -> Callable[[CheckFn], CheckFn]:
    """Decorator: register a per-item check under `name`; it returns a rejection reason or None."""
    return CHECKS.decorator(name)


# ------------------------------------------------------------------ what a question depends on


def _entities_used(node: Node, facts: Facts, out: dict[str, Entity]) -> None:
    for a in node.args:
        _entities_used(a, facts, out)
    if node.op == "scene":
        return  # the whole scene is only a starting point; what survives the steps matters
    try:
        value = engine.execute(node, facts)
    except ProgramError:
        return
    if isinstance(value, Entity):
        out[value.id] = value
    elif isinstance(value, list) and value and all(isinstance(v, Entity) for v in value):
        out.update((e.id, e) for e in value)
    if node.op in ("argmax", "argmin", "nth", "sort", "values", "distinct", "count", "exists") and node.args:
        # an extremum or a count is only right if every candidate was seen
        inputs = engine.execute(node.args[0], facts)
        if isinstance(inputs, list):
            out.update((e.id, e) for e in inputs if isinstance(e, Entity))


_deps: dict[str, Any] | None = None  # within check_item: its item's depends_on, worked out once for all checks


def depends_on(item: Item) -> tuple[list[Entity], list[TextSpan]]:
    """The entities and the texts a question needs to be answered from the image.

    Texts are those naming a used entity's string attribute (tick labels, legend entries),
    those whose role names a used entity or field (`cell:line2:amount`, `field:total`).
    """
    cache = _deps
    if cache is not None and cache.get("item") is item:
        return list(cache["used"]), list(cache["texts"])
    facts = item.facts
    used: dict[str, Entity] = {}
    _entities_used(item.question.program, facts, used)
    fields = _fields_used(item.question.program)
    words = {str(v).casefold() for e in used.values() for v in e.attrs.values() if isinstance(v, str)}
    texts = []
    for t in facts.texts:
        parts = t.role.split(":")
        if (t.text.casefold() in words and t.role in ("x_tick", "y_tick", "legend", "label", "point_label")) \
                or (len(parts) > 1 and (parts[1] in used or parts[1] in fields)):
            texts.append(t)
    if cache is not None:
        cache.update(item=item, used=list(used.values()), texts=list(texts))
    return list(used.values()), texts


def _fields_used(node: Node) -> set[str]:
    own = {str(node.params["name"])} if node.op == "field" else set()
    return own.union(*(_fields_used(a) for a in node.args)) if node.args else own


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _overlap(a: Box, b: Box) -> float:
    """Intersection area over the smaller box's area."""
    inter = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    smaller = min(_area(a), _area(b))
    return _area(inter) / smaller if smaller > 0 else 0.0


def _text_overlap(a: TextSpan, b: TextSpan) -> float:
    """How much two texts overlap as drawn: their quads after a geometric augmentation, else their boxes."""
    return quads.overlap(a.quad, b.quad) if a.quad and b.quad else _overlap(a.box, b.box)


# ------------------------------------------------------------------ the checks


@item_check("not_derivable")
def _derivable(item: Item, cfg: CheckConfig) -> str | None:
    try:
        value = engine.execute(item.question.program, item.facts)
    except ProgramError as e:
        return e.reason
    same = value == item.question.value or (
        isinstance(value, float) and isinstance(item.question.value, (int, float))
        and math.isclose(value, item.question.value, rel_tol=1e-9))
    return None if same else "answer_mismatch"


@item_check("degenerate")
def _degenerate(item: Item, cfg: CheckConfig) -> str | None:
    try:
        return "degenerate" if engine.degenerate_step(item.question.program, item.facts) else None
    except ProgramError as e:
        return e.reason


@item_check("own_answer")
def _own_answer(item: Item, cfg: CheckConfig) -> str | None:
    from deltaprompts.verifiers import score_item_answer
    from deltaprompts.verifiers.rules import VerifierError

    try:
        return None if score_item_answer(item, item.question.answer) == 1.0 else "answer_does_not_verify"
    except VerifierError:  # a ground truth the verifiers cannot read (a lone "A" as a string): reject the item
        return "answer_unreadable"


@item_check("legible_text")
def _legible_text(item: Item, cfg: CheckConfig) -> str | None:
    _, texts = depends_on(item)
    sizes = item.facts.image_sizes or [(item.facts.width, item.facts.height)]
    for t in texts:
        x0, y0, x1, y1 = t.box
        if t.image >= len(sizes):
            return "text_clipped"  # on an image the item does not have
        w, h = sizes[t.image]
        if x0 < -0.5 or y0 < -0.5 or x1 > w + 0.5 or y1 > h + 0.5:
            return "text_clipped"
        if (quads.quad_height(t.quad) if t.quad else y1 - y0) < cfg.min_text_px:  # height as drawn, after a warp
            return "text_too_small"
    for a in texts:  # a needed text is illegible when any other text is drawn over it
        ax0, ay0, ax1, ay1 = a.box
        for b in item.facts.texts:
            bx0, by0, bx1, by1 = b.box
            if bx0 >= ax1 or bx1 <= ax0 or by0 >= ay1 or by1 <= ay0:
                continue  # disjoint boxes (a quad lies in its box): no overlap
            if b is not a and b.image == a.image and (b.text, b.box) != (a.text, a.box) \
                    and _text_overlap(a, b) > cfg.max_text_overlap:
                return "text_overlap"
    return None


@item_check("visible_objects")
def _visible(item: Item, cfg: CheckConfig) -> str | None:
    augmented = any(e.quad for e in item.facts.entities)
    if item.facts.domain != "scene" and not augmented:
        return None
    used, _ = depends_on(item)
    sizes = item.facts.image_sizes or [(item.facts.width, item.facts.height)]
    for e in used:  # after a geometric augmentation, a mark the question needs must still be in its image
        if e.quad and (e.image >= len(sizes) or not quads.inside(e.quad, *sizes[e.image])):
            return "object_cropped"
    if item.facts.domain != "scene":
        return None
    for e in used:
        px = e.attrs.get("visible_pixels")
        if isinstance(px, (int, float)) and px < cfg.min_visible_px:
            return "object_too_small"
    return None


@item_check("marks_unhidden")
def _unhidden(item: Item, cfg: CheckConfig) -> str | None:
    legend = item.facts.extra.get("legend_box")
    if item.facts.domain != "chart" or not legend:
        return None
    used, _ = depends_on(item)
    for e in used:
        if e.box is not None and _area(e.box) > 0 and _overlap(e.box, tuple(legend)) > cfg.max_mark_hidden \
                and _area(tuple(legend)) < _area(e.box) * 50:
            return "mark_under_legend"
    return None


def check_item(item: Item, cfg: CheckConfig | None = None, names: Iterable[str] | None = None) -> list[str]:
    """Run the per-item checks (all, or `names`); return the rejection reasons (empty: passes).
    Raises UnknownNameError for a name no check is registered under."""
    global _deps
    cfg = cfg or CheckConfig()
    fns = [CHECKS.get(name) for name in (names or CHECKS.in_order())]
    reasons = []
    outer, _deps = _deps, {}
    try:
        for fn in fns:
            reason = fn(item, cfg)
            if reason:
                reasons.append(reason)
    finally:
        _deps = outer
    return reasons


_NUMERIC = ("number", "count", "percent", "currency", "year")


def answer_problem(item: Item) -> str | None:
    """Whether the stored answer string is what the item's program gives over its Facts: None, or a
    reason (``answer_mismatch``, or the program's own error). The `not_derivable` check compares the
    program's raw value; this one compares the answer that is scored (a hand-edited answer, an
    option letter pointing at a wrong option). An answer rounded to any precision up to 6 decimals
    counts as the program's (the rounding a question asks for is not stored)."""
    from deltaprompts.questions import format_answer

    q = item.question
    try:
        value = engine.execute(q.program, item.facts)
    except ProgramError as e:
        return e.reason
    if q.source == "external":  # an imported answer keeps its own spelling; its value is what the program reads
        from deltaprompts.verifiers.rules import answer_value

        try:  # "1,234" reads as 1234.0; a bool value spells itself "Yes"
            same = answer_value(q.answer, q.answer_type)[1] == value or answer_value(value, q.answer_type)[0] == q.answer
        except ValueError:
            same = False
        return None if same else "answer_mismatch"
    if q.answer_type == "choice":
        if not q.options or q.answer not in q.options:
            return "answer_mismatch"
        shown, types = q.options[q.answer], ["string", *_NUMERIC, "yes_no", "list"]  # the options' type is not stored
    else:
        shown, types = q.answer, [q.answer_type]
    for t in types:
        for decimals in (None, 0, 1, 2, 3, 4, 5, 6) if t in _NUMERIC else (None,):
            try:
                if format_answer(value, t, item.facts, decimals) == shown:
                    return None
            except ProgramError:
                break
    return "answer_mismatch"


def balance(items: Sequence[Item], ratio: float = 1.1, min_family_size: int = 20) -> set[str]:
    """Ids of items to drop so that, within each question family of at least `min_family_size`
    items, no answer is more than `ratio` times as frequent as the runner-up.

    Which items of an over-represented answer go is fixed by their ids (sorted), so the result
    depends only on the set of items, not on their order or on how many workers made them.
    """
    by_family: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_family[it.question.question_family].append(it)
    drop: set[str] = set()
    for fam_items in by_family.values():
        if len(fam_items) < min_family_size:
            continue
        # the program's value, not the answer string: a multiple-choice letter says nothing of balance
        key = lambda it: str(it.question.value)  # noqa: E731
        counts = Counter(key(it) for it in fam_items)
        if len(counts) < 2:
            continue
        (top, n_top), (_, n_second) = counts.most_common(2)
        cap = max(1, math.floor(ratio * n_second))
        if n_top > cap:
            over = sorted((it for it in fam_items if key(it) == top), key=lambda it: it.id)
            drop.update(it.id for it in over[cap:])
    return drop
