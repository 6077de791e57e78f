"""Ops over items made of several images (an image pair, frames): on which images a set of entities lies
(`Entity.image`). Each refuses (ProgramError) when the set does not single out an answer."""

from __future__ import annotations

from deltaprompts.errors import ProgramError
from deltaprompts.programs import op
from deltaprompts.records import Entity, Facts


def _images(facts: Facts) -> int:
    return max(1, len(facts.image_sizes))


@op("in_every_image", ("set",), "bool")
def _in_every_image(facts: Facts, p: dict, s: list[Entity]) -> bool:
    """Whether the set has an entity on every image of the item (both images of a pair)."""
    if not s:
        raise ProgramError("empty", "no entity to look for")
    return {e.image for e in s} >= set(range(_images(facts)))


@op("only_image", ("set",), "number", gradient=lambda xs: [])
def _only_image(facts: Facts, p: dict, s: list[Entity]) -> int:
    """The number (1-based) of the one image all entities of the set lie on; an error when they lie on
    several images (no single image matches) or the set is empty."""
    images = {e.image for e in s}
    if len(images) != 1:
        raise ProgramError("empty" if not images else "ambiguous", f"the entities lie on {len(images)} images")
    return images.pop() + 1
