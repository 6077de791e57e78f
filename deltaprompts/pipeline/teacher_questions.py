"""Teacher-written questions: the prompt, and the checks that turn a reply into an Item or a rejection reason.

The teacher sees the image, its Facts (compact JSON), the failure pattern, the op schema and
example questions, and replies with JSON: {"question", "program", "answer_type"}. The program is
data: it is parsed (compact syntax, or a JSON node tree), type-checked against the registered ops
(`engine.type_check`), executed over the Facts for the answer (`engine.execute`), checked for degenerate
steps and put through the item checks. Nothing the teacher writes is executed as code. Rejections
carry a reason: malformed_json, missing_field, malformed_program, too_complex, unbound_slot,
unknown_op, type_error, ill_posed:<tie|not_unique|empty|missing_attr|...>, degenerate, answer_type,
check:<reason>, duplicate_question.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from deltaprompts import engine
from deltaprompts.errors import ProgramError, TemplateError, validation_message
from deltaprompts.records import ANSWER_TYPES, Facts, Item, Node, Question

MAX_REPLY = 20_000
MAX_NODES, MAX_DEPTH = 40, 12
TEACHER_ANSWER_TYPES = tuple(t for t in ANSWER_TYPES if t != "choice")  # no options to choose from
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "question_program", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "required": ["question", "program", "answer_type"],
        "properties": {"question": {"type": "string"}, "program": {"type": "string"},
                       "answer_type": {"type": "string", "enum": list(TEACHER_ANSWER_TYPES)}}}},
}


class Rejected(Exception):
    """A teacher reply that does not become an item; `reason` is the counted tag."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# ------------------------------------------------------------------ the prompt


@lru_cache(maxsize=1)
def op_schema() -> tuple[dict[str, Any], ...]:
    """The registered ops as the teacher sees them (catalog()["ops"] plus allowed param values)."""
    from deltaprompts.catalog import catalog
    from deltaprompts.programs import OPS

    return tuple({**o, "choices": {k: list(v) for k, v in OPS.get(o["name"]).choices.items()}}
                 for o in catalog()["ops"])


_BARE = re.compile(r"^[A-Za-z_][\w.]*$")


def _value_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _BARE.match(s) and s not in ("true", "false"):
        return s
    return f"'{s}'" if '"' in s else f'"{s}"'


def program_text(node: Node) -> str:
    """A program in the compact syntax that `engine.parse` reads back to the same tree."""
    params = ", ".join(f"{k}={_value_text(v)}" for k, v in node.params.items())
    return f"{node.op}{f'[{params}]' if params else ''}({', '.join(program_text(a) for a in node.args)})"


def compact_facts(facts: Facts, limit: int) -> str:
    """The Facts a question can use, as compact JSON of at most about `limit` characters: entities
    (id and attributes), fields and phrasing words; boxes, texts and render detail are left out."""
    ents = [{"id": e.id, **e.attrs} for e in facts.entities]
    fields = {k: v for k, v in facts.fields.items() if v is not None}
    data: dict[str, Any] = {"kind": facts.kind, "entities": ents, "fields": fields, "context": facts.context}
    text = json.dumps(data, separators=(",", ":"), default=str)
    if len(text) > limit:
        data.pop("context")
        text = json.dumps(data, separators=(",", ":"), default=str)
    while len(text) > limit and data["entities"]:
        data["entities"] = data["entities"][: max(len(data["entities"]) * 3 // 4, len(data["entities"]) - 1)]
        data["omitted"] = f"{len(ents) - len(data['entities'])} more entities"
        text = json.dumps(data, separators=(",", ":"), default=str)
    return text


def teacher_prompt(facts: Facts, pattern: str | None, question_family: str | None, examples: list[Item],
                   facts_chars: int) -> str:
    """The text of the question-writing request (templates/prompts/teacher/question.j2)."""
    from deltaprompts.pipeline.describe import render

    shown = [json.dumps({"question": it.question.text, "program": program_text(it.question.program),
                         "answer_type": it.question.answer_type}) for it in examples]
    return render("question", pattern=pattern, question_family=question_family, facts=compact_facts(facts, facts_chars),
                  ops=op_schema(), examples=shown, answer_types=TEACHER_ANSWER_TYPES)


# ------------------------------------------------------------------ reading a reply


def parse_reply(text: str) -> dict[str, Any]:
    """The JSON object of a reply (code fences and text around it allowed); raises Rejected."""
    if len(text) > MAX_REPLY:
        raise Rejected("malformed_json", f"reply of {len(text)} characters")
    body = re.sub(r"```(?:json)?", "", text)
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise Rejected("malformed_json", "no JSON object in the reply")
    try:
        data = json.loads(body[start:end + 1])
    except (ValueError, RecursionError) as e:  # ValueError: also an integer of more than 4,300 digits
        raise Rejected("malformed_json", str(e)) from None
    if not isinstance(data, dict):
        raise Rejected("malformed_json", "the reply is not a JSON object")
    return data


def _shape(node: Node, depth: int = 1) -> tuple[int, int]:
    sizes = [_shape(a, depth + 1) for a in node.args]
    return 1 + sum(n for n, _ in sizes), max([depth, *(d for _, d in sizes)])


def _ops(node: Node) -> list[str]:
    return [node.op] + [op for a in node.args for op in _ops(a)]


def read_program(raw: Any) -> Node:
    """A program from the reply's `program` (compact text or a JSON tree); raises Rejected."""
    from deltaprompts.programs import OPS

    try:
        if isinstance(raw, str):
            node = engine.parse(raw)
        elif isinstance(raw, dict):
            node = Node.model_validate(raw)
        else:
            raise Rejected("malformed_program", f"program must be text or an object, got {type(raw).__name__}")
    except ValidationError as e:
        raise Rejected("malformed_program", validation_message(e, first=True)) from None
    except (TemplateError, RecursionError) as e:
        raise Rejected("malformed_program", str(e).splitlines()[0]) from None
    n, depth = _shape(node)
    if n > MAX_NODES or depth > MAX_DEPTH:
        raise Rejected("too_complex", f"{n} ops, depth {depth}")
    if engine.slots_of(node):
        raise Rejected("unbound_slot", f"slots {sorted(engine.slots_of(node))} have no values")
    unknown = sorted({op for op in _ops(node) if op not in OPS})
    if unknown:
        raise Rejected("unknown_op", ", ".join(unknown))
    try:
        engine.type_check(node, "teacher program")
    except TemplateError as e:
        raise Rejected("type_error", str(e)) from None
    return node


def _infer_type(value: Any, node: Node) -> str:
    if isinstance(value, bool):
        return "yes_no"
    if isinstance(value, (int, float)):
        return "count" if node.op == "count" else "number"
    return "list" if isinstance(value, list) else "string"


def item_from_reply(text: str, base: Item, seen: set[str] | None = None,
                    provenance: dict[str, Any] | None = None) -> Item:
    """The Item a teacher reply makes over the render of `base` (its spec, image and Facts), with
    the answer computed from the program. `seen` holds question texts already used for the image.
    Raises Rejected with the reason (see the module docstring)."""
    from deltaprompts.questions import format_answer, rounding_note
    from deltaprompts.tolerances import DEFAULT_DECIMALS, needs_decimals, tolerance_for
    from deltaprompts.verifiers.checks import check_item

    reply = parse_reply(text)
    wording, raw = reply.get("question"), reply.get("program")
    if not isinstance(wording, str) or not wording.strip() or raw is None:
        raise Rejected("missing_field", "needs a non-empty question and a program")
    wording = " ".join(wording.split())
    node = read_program(raw)
    facts = base.facts
    try:
        value = engine.execute(node, facts)
        if engine.degenerate_step(node, facts):
            raise Rejected("degenerate", "a step changes nothing")
    except ProgramError as e:
        raise Rejected("type_error" if e.reason in ("bad_param", "type") else f"ill_posed:{e.reason}", str(e)) from None
    answer_type = reply.get("answer_type") or _infer_type(value, node)
    if answer_type not in TEACHER_ANSWER_TYPES:
        raise Rejected("answer_type", f"{answer_type!r} is not one of {', '.join(TEACHER_ANSWER_TYPES)}")
    try:
        format_answer(value, answer_type, facts)  # the answer type fits the value
        # the tolerance the render justifies, as for templated questions; a rounded answer says its precision
        tol = tolerance_for(node, value, answer_type, facts)
        answer = format_answer(value, answer_type, facts, tol.decimals)
    except ProgramError as e:
        raise Rejected("answer_type" if e.reason == "type" else f"ill_posed:{e.reason}", str(e)) from None
    if seen is not None and wording.casefold() in seen:
        raise Rejected("duplicate_question", wording)
    if answer_type in DEFAULT_DECIMALS and needs_decimals(node):
        wording += " " + rounding_note(DEFAULT_DECIMALS[answer_type])
    try:  # a value or tolerance that is not a finite number (an overflow) cannot be stored
        q = Question(text=wording, program=node, answer=answer, answer_type=answer_type, value=value,
                     tolerance=tol.rel_tol, abs_tol=tol.abs_tol, tolerance_source=tol.source,
                     question_family=f"{facts.domain}.teacher.{node.op}", source="teacher")
        n_ops, _ = _shape(node)
        tags = {**base.tags, "question_family": q.question_family, "skills": [], "steps": n_ops, "answer_type": answer_type,
                "question_source": "teacher"}
        item = Item(id=Item.make_id(base.spec, q), family=base.family, family_version=base.family_version,
                    spec=base.spec, image=base.image, facts=facts, question=q, tags=tags,
                    provenance={**base.provenance, **(provenance or {})})
    except ValidationError as e:
        raise Rejected("ill_posed:non_finite", validation_message(e, first=True)) from None
    reasons = check_item(item)
    if reasons:
        raise Rejected(f"check:{reasons[0]}", ", ".join(reasons))
    return item


# ------------------------------------------------------------------ structured output (OpenAI-compatible servers)


class _Injecting:
    """Stands in for an AsyncOpenAI client, adding `response_format` to every chat completion body
    the backend posts (a JSON object as bytes: the field is spliced in front of the others)."""

    def __init__(self, client: Any, response_format: dict[str, Any]):
        self._client = client
        self._field = b'{"response_format": ' + json.dumps(response_format).encode() + b", "

    async def post(self, path: str, *, content: bytes, **kwargs: Any) -> Any:
        body = self._field + content[1:] if content.startswith(b"{") and content != b"{}" else content
        return await self._client.post(path, content=body, **kwargs)


def structured(backend: Any, response_format: dict[str, Any] = RESPONSE_FORMAT) -> Any:
    """`backend` asking for `response_format` when it is an OpenAI-compatible one (its identity says
    so); any other backend is returned as it is."""
    from deltaprompts.models.openai_backend import OpenAIBackend

    if not isinstance(backend, OpenAIBackend):
        return backend

    class Structured(type(backend)):  # type: ignore[misc]
        async def _call(self, client: Any, *args: Any) -> Any:
            return await super()._call(_Injecting(client, response_format), *args)

    out = copy.copy(backend)
    out.__class__ = Structured
    digest = hashlib.sha256(json.dumps(response_format, sort_keys=True).encode()).hexdigest()[:8]
    out.identity = f"{backend.identity}&response_format={digest}"
    return out
