"""The records every stage exchanges: Spec, Facts, Program, Question, Item (pydantic v2, JSON on disk)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Literal, Union

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

Scalar = Union[str, int, float, bool]
Box = tuple[float, float, float, float]
"""A pixel box (x0, y0, x1, y1) in image coordinates: origin top-left, y down."""

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
    found = non_finite(value)
    if found:
        raise ValueError(f"{found} is not a finite number (NaN and infinities cannot be stored)")
    return value


class Record(BaseModel):
    """Base of all records: strict about unknown fields, so a typo in a file is an error."""

    # a NaN or an infinity is written as null and could not be read back: refuse it where a record is built
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)

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

    id: str
    attrs: dict[str, Scalar]
    box: Box | None = None


class TextSpan(Record):
    """A text the render shows, where it shows it, and what it is (title, tick, value label, ...)."""

    text: str
    box: Box
    role: str


def _as_json_shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_json_shape(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_json_shape(v) for v in value]
    return value


class Facts(Record):
    """Ground truth exposed by a render. Question programs run over `entities` and `fields`."""

    domain: Domain
    kind: str = Field(description="Chart type, document layout or scene kind.")
    width: int
    height: int
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

    _finite_value = field_validator("value", mode="after")(_finite)


class ImageRef(Record):
    """Where an item's image lies, relative to the run directory, and its content hash."""

    path: str
    sha256: str
    width: int
    height: int


class Item(Record):
    """One dataset row: a rendered image, its Facts, and one question with a computed answer."""

    id: str
    family: str
    family_version: str
    spec: Spec
    image: ImageRef
    facts: Facts
    question: Question
    tags: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)

    _finite_meta = field_validator("tags", "provenance", mode="after")(_finite)

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
