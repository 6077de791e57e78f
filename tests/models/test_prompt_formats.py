"""Prompt formats: every shipped template renders; build_request makes the Request backends expect."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from deltaprompts.errors import TemplateError, UnknownNameError, UserError
from deltaprompts.models.prompts import build_request, prompt_context, prompt_formats, render_prompt
from deltaprompts.records import Facts, ImageRef, Item, Node, Question, Spec


def make_item(image_rel: str, sha: str, options: dict[str, str] | None = None, answer_type: str = "count") -> Item:
    text = "How many red circles are there?"
    answer = "3"
    if options:
        text += " Options: " + " ".join(f"({k}) {v}" for k, v in options.items())
        answer, answer_type = "B", "choice"
    question = Question(text=text, program=Node(op="count"), answer=answer, answer_type=answer_type,
                        options=options, question_family="scene.count")
    spec = Spec(family="scene.shapes", version="1", seed=0, index=0, data={})
    return Item(id=Item.make_id(spec, question), family="scene.shapes", family_version="1", spec=spec,
                image=ImageRef(path=image_rel, sha256=sha, width=64, height=80),
                facts=Facts(domain="scene", kind="shapes", width=64, height=80), question=question)


@pytest.fixture
def run_dir(tmp_path, image_paths):
    (tmp_path / "images").mkdir()
    shutil.copy(image_paths[0], tmp_path / "images" / "a.png")
    return tmp_path


@pytest.fixture
def item(run_dir):
    return make_item("images/a.png", hashlib.sha256((run_dir / "images" / "a.png").read_bytes()).hexdigest())


OPTIONS = {"A": "2", "B": "3", "C": "4", "D": "5"}


def test_the_four_formats_ship():
    assert {"plain", "boxed", "thinking", "multiple_choice"} <= set(prompt_formats())


@pytest.mark.parametrize("fmt", ["plain", "boxed", "thinking", "multiple_choice"])
@pytest.mark.parametrize("options", [None, OPTIONS])
def test_every_format_renders_the_question_without_its_answer(fmt, options):
    question = make_item("a.png", "0" * 64, options).question
    text = render_prompt(question, fmt)
    assert "How many red circles are there?" in text and text == text.strip()
    assert "answer" not in prompt_context(question) and "value" not in prompt_context(question)


def test_what_each_format_asks_for():
    plain = make_item("a.png", "0" * 64).question
    mc = make_item("a.png", "0" * 64, OPTIONS).question
    assert render_prompt(plain) == "How many red circles are there?\nAnswer the question using a single word or phrase."
    assert render_prompt(plain, "boxed").endswith("Put your final answer in \\boxed{}.")
    assert "<think> </think>" in render_prompt(plain, "thinking") and '"Answer: <answer>"' in render_prompt(plain, "thinking")
    assert render_prompt(mc, "multiple_choice") == (
        "How many red circles are there?\n(A) 2\n(B) 3\n(C) 4\n(D) 5\n"
        "Answer with the letter of the correct option (A, B, C, D).")
    assert "Options: (A) 2 (B) 3" in render_prompt(mc, "plain") and "letter" in render_prompt(mc, "plain")
    yes_no = plain.model_copy(update={"answer_type": "yes_no", "text": "Is there a red circle?"})
    assert render_prompt(yes_no).endswith("Answer yes or no.")


def test_build_request_has_one_image_part_and_the_text(item, run_dir):
    req = build_request(item, run_dir, "boxed")
    assert req.id == item.id and req.images == [str((run_dir / "images" / "a.png").resolve())]
    assert req.image_sha256 == [item.image.sha256]
    assert [m.role for m in req.messages] == ["user"]
    assert req.messages[0].content == [{"type": "image"}, {"type": "text", "text": render_prompt(item.question, "boxed")}]


def test_request_key_depends_on_format_and_image_not_on_paths(item, run_dir, tmp_path_factory):
    other_dir = tmp_path_factory.mktemp("moved")
    shutil.copytree(run_dir / "images", other_dir / "images")
    assert build_request(item, run_dir).key == build_request(item, other_dir).key
    assert build_request(item, run_dir).key != build_request(item, run_dir, "boxed").key
    changed = item.model_copy(update={"image": item.image.model_copy(update={"sha256": "f" * 64})})
    assert build_request(changed, run_dir).key != build_request(item, run_dir).key


def test_errors_name_the_format_or_the_image(item, run_dir, tmp_path):
    with pytest.raises(UnknownNameError, match="unknown prompt format 'boxd'; did you mean 'boxed'"):
        build_request(item, run_dir, "boxd")
    with pytest.raises(UserError, match="image .*missing.png does not exist"):
        build_request(item.model_copy(update={"image": item.image.model_copy(update={"path": "missing.png"})}), run_dir)
    custom = tmp_path / "mine.j2"
    custom.write_text("Q: {{ question }} ({{ answer_type }})")
    assert render_prompt(item.question, str(custom)) == "Q: How many red circles are there? (count)"
    broken = tmp_path / "broken.j2"
    broken.write_text("{{ answer }}")
    with pytest.raises(TemplateError, match="'answer' is undefined"):
        render_prompt(item.question, str(broken))
