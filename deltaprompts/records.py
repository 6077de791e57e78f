"""The records every stage exchanges: Spec, Facts, Program, Question, Item (pydantic v2, JSON on disk)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, ClassVar, Literal, Union

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_serializer

Scalar = Union[str, int, float, bool]
Box = tuple[float, float, float, float]
"""A pixel box (x0, y0, x1, y1) in image coordinates: origin top-left, y down."""
Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]
"""Four corners (top-left, top-right, bottom-right, bottom-left of the text or mark as drawn) in image
pixels: where a box lands after a geometric augmentation (deltaprompts.augment)."""

Domain = Literal["chart", "document", "scene"]
AnswerType = Literal[
    "number", "count", "percent", "currency", "year", "string", "yes_no", "choice", "list", "set", "span"
]
ANSWER_TYPES: tuple[str, ...] = AnswerType.__args__  # type: ignore[attr-defined]
#: Where a question's tolerance comes from (deltaprompts.tolerances).
ToleranceSource = Literal["printed", "computed", "axis", "exact", "unknown", "template"]


def non_finite(value: Any, where: str = "value") -> str | None:
    """Where in a JSON-shaped `value` a NaN or an infinity lies (e.g. ``value['a'][2]``), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for k, v in items:
        found = non_finite(v, f"{where}[{k!r}]" if isinstance(value, dict) else f"{where}[{k}]")
        if found:
            return found
    return None


def _finite(value: Any) -> Any:
    """A pydantic after-validator: refuse a NaN or an infinity anywhere inside `value`."""
    try:  # the C encoder visits what non_finite visits and refuses what it refuses: the usual case, fast
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError, RecursionError):
        pass  # a NaN, or a value JSON cannot hold (a set, a NaN key): non_finite decides and says where
    found = non_finite(value)
    if found:
        raise ValueError(f"{found} is not a finite number (NaN and infinities cannot be stored)")
    return value


class Record(BaseModel):
    """Base of all records: strict about unknown fields, so a typo in a file is an error."""

    #: fields left out of the JSON while they hold their default (see _leave_out_defaults)
    optional_fields: ClassVar[tuple[str, ...]] = ()

    # a NaN or an infinity is written as null and could not be read back: refuse it where a record is built
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)

    @model_serializer(mode="wrap")
    def _leave_out_defaults(self, handler: Any) -> Any:
        """Fields named in `optional_fields` are written only when they differ from their default,
        so a field added to a record leaves every record that does not use it byte-identical."""
        out = handler(self)
        names = type(self).optional_fields
        if names and isinstance(out, dict):
            fields = type(self).model_fields
            for name in names:
                if name in out and getattr(self, name) == fields[name].get_default(call_default_factory=True):
                    del out[name]
        return out

    def canonical_json(self) -> str:
        """JSON with sorted keys and no whitespace: the form hashed for ids."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


class Spec(Record):
    """Everything needed to render one image, as plain JSON. Re-rendering gives the same bytes."""

    family: str
    version: str
    seed: int
    index: int
    knobs: dict[str, Scalar] = Field(default_factory=dict)
    data: dict[str, Any] = Field(description="The family's own parameters (its spec model, dumped).")

    _finite_data = field_validator("data", mode="after")(_finite)

    @property
    def key(self) -> str:
        """A short content hash of the spec, used to name its image."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


class Entity(Record):
    """One addressable thing the render shows: a bar, a line point, a wedge, a line item, a shape."""

    optional_fields = ("image", "quad")

    id: str
    attrs: dict[str, Scalar]
    box: Box | None = None
    image: int = Field(default=0, ge=0, description="Which of the item's images (page, frame) `box` lies on.")
    quad: Quad | None = Field(default=None, description="The box's four corners after a geometric augmentation; "
                              "`box` is then their bounding box.")


class TextSpan(Record):
    """A text the render shows, where it shows it, and what it is (title, tick, value label, ...)."""

    optional_fields = ("image", "quad")

    text: str
    box: Box
    role: str
    image: int = Field(default=0, ge=0, description="Which of the item's images (page, frame) `box` lies on.")
    quad: Quad | None = Field(default=None, description="The box's four corners after a geometric augmentation; "
                              "`box` is then their bounding box.")


def _as_json_shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_json_shape(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_json_shape(v) for v in value]
    return value


class Facts(Record):
    """Ground truth exposed by a render. Question programs run over `entities` and `fields`."""

    optional_fields = ("image_sizes",)

    domain: Domain
    kind: str = Field(description="Chart type, document layout or scene kind.")
    width: int
    height: int
    image_sizes: list[tuple[int, int]] = Field(default_factory=list, description="(width, height) of each image "
                                               "of a multi-image item (pages, an image pair, frames), in order; "
                                               "empty for one image, which is (width, height).")
    entities: list[Entity] = Field(default_factory=list)
    fields: dict[str, Scalar | None] = Field(default_factory=dict)
    texts: list[TextSpan] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict, description="Words for phrasing: nouns, units, labels.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Domain detail: axes and legend boxes, colours.")

    @field_validator("context", "extra", mode="after")
    @classmethod
    def _json_shaped(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Tuples become lists, as they come back from JSON, so a Facts equals its round trip."""
        return _finite(_as_json_shape(value))

    def entity(self, entity_id: str) -> Entity:
        """Return the entity with this id; raises KeyError if absent."""
        for e in self.entities:
            if e.id == entity_id:
                return e
        raise KeyError(entity_id)


class Node(Record):
    """One step of a question program: an op applied to the outputs of `args`, with `params`."""

    op: str
    args: list[Node] = Field(default_factory=list)
    params: dict[str, Scalar] = Field(default_factory=dict)

    @field_validator("params", mode="before")
    @classmethod
    def _finite_params(cls, value: Any) -> Any:
        """A clear message for a NaN or infinite param (a model-written program may hold one)."""
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, float) and not math.isfinite(v):
                    raise ValueError(f"param {k}={v!r} is not a finite number")
        return value


class Question(Record):
    """A question: its wording, the program that answers it, and how answers are scored."""

    optional_fields = ("locale",)

    text: str
    program: Node
    answer: str = Field(description="Ground truth as scored by deltaprompts.verifiers.score_answer.")
    answer_type: AnswerType
    value: Any = Field(default=None, description="The program's raw output, before formatting.")
    options: dict[str, str] | None = None
    tolerance: float | None = Field(default=None, ge=0.0, description="Relative tolerance (rel_tol) of a numeric "
                                    "answer; None: the verifiers' default (5%), for answers of unknown provenance.")
    abs_tol: float | None = Field(default=None, ge=0.0, description="Absolute tolerance of a numeric answer "
                                  "(half a printed unit, or an axis reading error); None: the verifiers' default.")
    tolerance_source: ToleranceSource | None = Field(default=None, description="Why this tolerance: printed, "
                                                     "computed, axis, exact, unknown or template (docs/verifiers.md); "
                                                     "None in items made before tolerances were recorded.")
    question_family: str = Field(validation_alias=AliasChoices("question_family", "family"),
                                 description="Question family, e.g. chart.argmax (`family` in runs made "
                                 "before deltaprompts 0.x; read as this).")
    template: str | None = Field(default=None, description="Template file and phrasing index, if templated.")
    source: Literal["template", "teacher", "external"] = "template"
    locale: str | None = Field(default=None, description="The locale the answer is printed in (e.g. de_DE: "
                               "1.035,00); the verifiers read numbers in it. None: English conventions.")

    _finite_value = field_validator("value", mode="after")(_finite)


class ImageRef(Record):
    """Where an item's image lies, relative to the run directory, and its content hash."""

    path: str
    sha256: str
    width: int
    height: int


class Item(Record):
    """One dataset row: rendered image(s), their Facts, and one question with a computed answer.

    Most items show one image. A multi-image item (document pages, an image pair, video frames) holds
    its first image in `image` and the rest, in order, in `more_images`; `images` lists them all."""

    optional_fields = ("more_images",)

    id: str
    family: str
    family_version: str
    spec: Spec
    image: ImageRef
    more_images: list[ImageRef] = Field(default_factory=list, description="The second and later images of a "
                                        "multi-image item, in order; empty for one image.")
    facts: Facts
    question: Question
    tags: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)

    _finite_meta = field_validator("tags", "provenance", mode="after")(_finite)

    @property
    def images(self) -> list[ImageRef]:
        """Every image of the item, in the order a model sees them."""
        return [self.image, *self.more_images]

    @staticmethod
    def make_id(spec: Spec, question: Question) -> str:
        """The content hash naming an item: same spec and question, same id."""
        payload = json.dumps(
            [spec.model_dump(mode="json"), question.text, question.program.model_dump(mode="json"), question.answer],
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


RECORDS: dict[str, type[Record]] = {
    "Spec": Spec,
    "Facts": Facts,
    "Node": Node,
    "Question": Question,
    "Item": Item,
}
