"""Every 2-D scene family's draw(spec) is exactly the figure its render encodes (the bare baseline of
benchmarks/render.py draws through it, so it must be the same picture, not a cheaper one)."""

import io

import numpy as np
import pytest
from PIL import Image

from deltaprompts.generators import FAMILIES

SCENES = sorted(n for n in FAMILIES.names() if n.startswith("scene.") and "3d" not in n)


def test_every_2d_scene_family_can_draw():
    assert len(SCENES) >= 11
    assert [n for n in SCENES if not hasattr(FAMILIES.get(n), "draw")] == []


@pytest.mark.parametrize("name", SCENES)
def test_draw_is_the_rendered_figure(name):
    fam = FAMILIES.get(name)()
    knobs = fam.resolve_knobs({})
    for index in range(3):
        spec = fam.sample(0, index, knobs)
        rendered = fam.render(spec)
        drawn = fam.draw(spec)
        assert len(drawn) == 1 + len(rendered.more_png)
        for png, image in zip(rendered.pngs, drawn):
            decoded = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            assert np.array_equal(decoded, np.asarray(image.convert("RGB"))), f"{name} item {index}"
