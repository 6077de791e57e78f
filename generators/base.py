"""The family contract: sample a Spec from (rng, knobs), render it to PNG bytes and Facts."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from deltaprompts.knobs import COMMON_KNOBS, Knob, resolve_knobs
from deltaprompts.records import Facts, Spec
from deltaprompts.registry import Registry
from deltaprompts.rng import item_rng


@dataclass(frozen=True)
class Rendered:
    """One render: PNG bytes (metadata-free) and the Facts it exposes.

    A multi-image render (document pages, an image pair, video frames) puts its first image in `png`
    and the rest, in order, in `more_png`; its Facts list every image's size in `image_sizes` and say
    on which image each box lies (`Entity.image`, `TextSpan.image`)."""

    png: bytes
    facts: Facts
    more_png: tuple[bytes, ...] = ()

    @property
    def pngs(self) -> list[bytes]:
        """Every image of the render, in order."""
        return [self.png, *self.more_png]


class Generator(ABC):
    """A visual family. Subclasses set the class attributes and implement `sample_data` and
    `render`; families with an out-of-process renderer also override `render_batch` and `close`.

    `sample_data` must draw every random choice from the `rng` it is given, so a Spec depends
    only on (seed, family, index, knobs, version).
    """

    name: ClassVar[str]
    domain: ClassVar[str]
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    knobs: ClassVar[tuple[Knob, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every family also takes the COMMON_KNOBS (e.g. `augment`), after its own knobs."""
        super().__init_subclass__(**kwargs)
        own = {k.name for k in cls.knobs}
        cls.knobs = (*cls.knobs, *(k for k in COMMON_KNOBS if k.name not in own))

    @abstractmethod
    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        """Return the family's render parameters (JSON-able) for one item."""

    @abstractmethod
    def render(self, spec: Spec) -> Rendered:
        """Draw one Spec; the same Spec must give the same bytes."""

    def sample(self, seed: int, index: int, knobs: dict[str, Any], attempt: int = 0) -> Spec:
        """Return the Spec of item `index` (knobs already resolved); `attempt` re-draws a rejected one."""
        rng = item_rng(seed, self.name, index, "spec", attempt)
        return Spec(family=self.name, version=self.version, seed=seed, index=index, knobs=knobs,
                    data=self.sample_data(rng, knobs))

    def resolve_knobs(self, given: dict[str, Any]) -> dict[str, Any]:
        """All knob values of this family, `given` ones parsed and checked."""
        return resolve_knobs(self.name, self.knobs, given)

    def render_batch(self, specs: Sequence[Spec]) -> list[Rendered]:
        """Render several Specs; batched renderers override this to amortise their start-up."""
        return [self.render(s) for s in specs]

    def close(self) -> None:
        """Release any out-of-process resource (a browser); called once per worker at exit."""

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this family cannot render on this machine (a missing optional package, with its install
        hint), or None when it can. `list` shows the reason; `generate --family` refuses with it."""
        return None


# The built-in families: each module registers its classes with @register when imported.
BUILTIN_MODULES = (
    "deltaprompts.generators.charts",
    "deltaprompts.generators.documents",
    "deltaprompts.generators.documents_finance",
    "deltaprompts.generators.documents_records",
    "deltaprompts.generators.documents_pages",
    "deltaprompts.generators.scenes",
    "deltaprompts.generators.dials",
    "deltaprompts.generators.graphs",
    "deltaprompts.generators.maze",
    "deltaprompts.generators.venn",
    "deltaprompts.generators.symbol_grid",
    "deltaprompts.generators.geometry",
    "deltaprompts.generators.pairs",
    "deltaprompts.generators.frames",
    "deltaprompts.generators.clevr3d",
)
FAMILIES: Registry[type[Generator]] = Registry(
    "family", entry_point_group="deltaprompts.generators", modules=BUILTIN_MODULES
)


def register(cls: type[Generator]) -> type[Generator]:
    """Class decorator: register a family under its `name`."""
    return FAMILIES.register(cls.name, cls)


def png_bytes(image: Image.Image) -> bytes:
    """Encode a PIL image as PNG with no metadata chunks (no time, no software tag)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def choice(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    """One element of `seq`, chosen by `rng` (numpy's choice would coerce the elements to an array)."""
    return seq[int(rng.integers(0, len(seq)))]
