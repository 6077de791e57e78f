"""Spatial relations of 3-D scenes in camera space (CLEVR's left/right/front/behind), with an ambiguity margin."""

from __future__ import annotations

from deltaprompts.errors import ProgramError
from deltaprompts.programs import _num, op
from deltaprompts.records import Entity, Facts

# direction -> (the camera-space attribute compared, +1 when "larger" means that direction)
_AXES = {"left": ("cam_right", -1), "right": ("cam_right", +1), "front": ("cam_depth", -1), "behind": ("cam_depth", +1)}


@op("relate3d", ("entity",), "set", {"direction": "str"},
    choices={"direction": ("left", "right", "front", "behind")})
def _relate3d(facts: Facts, p: dict, e: Entity) -> list[Entity]:
    """Other entities left of, right of, in front of or behind this one, as the camera sees them
    (attrs cam_right, cam_depth); an error ("ambiguous") when another lies within the Facts' relation margin."""
    attr, sign = _AXES[p["direction"]]
    margin = float(facts.extra.get("relation_margin", 0.0))
    here = _num(e, attr)
    out = []
    for o in facts.entities:
        if o.id == e.id:
            continue
        delta = sign * (_num(o, attr) - here)
        if abs(delta) < margin:
            raise ProgramError("ambiguous", f"{o.id} and {e.id} are {abs(delta):.3f} apart along {attr}, "
                                            f"within the relation margin {margin}")
        if delta > 0:
            out.append(o)
    return out
