"""Replay backend: answers from a JSONL file; export of the requests a remote job must answer."""

from __future__ import annotations

import json

import pytest

from deltaprompts.errors import DeltaError, UserError
from deltaprompts.models.base import Sampling
from deltaprompts.models.cache import CachedBackend
from deltaprompts.models.replay import ReplayBackend, export_requests
from deltaprompts.models.specs import load_backend
from deltaprompts.models.wrappers import PartialResults

SAMPLING = Sampling(temperature=0.7, max_new_tokens=32, seed=4)


def write_lines(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_export_then_replay_the_answers_of_a_remote_job(requests_, tmp_path):
    out = tmp_path / "todo.jsonl"
    assert export_requests(requests_, SAMPLING, 2, out) == 3
    todo = [json.loads(line) for line in out.read_text().splitlines()]
    assert [t["key"] for t in todo] == [r.key for r in requests_]
    assert todo[0]["indices"] == [0, 1] and todo[0]["sampling"]["temperature"] == 0.7
    assert todo[0]["images"] == requests_[0].images and todo[0]["messages"][0]["content"][1]["text"].startswith("How many")
    # the remote job answers by key, with log-probs for some lines
    answers = [{"key": t["key"], "index": i, "text": f"{t['id']} says {i}", "token_logprobs": [-0.5, -0.5]}
               for t in todo for i in t["indices"]]
    backend = load_backend(f"replay:{write_lines(tmp_path / 'answers.jsonl', answers)}")
    got = backend.sample(requests_, SAMPLING, [[1, 0], [0], []])
    assert [[(c.index, c.text) for c in r] for r in got] == [[(1, f"{requests_[0].id} says 1"), (0, f"{requests_[0].id} says 0")],
                                                            [(0, f"{requests_[1].id} says 0")], []]
    assert got[0][0].logprob == -1.0
    assert backend.identity.startswith(f"replay:{(tmp_path / 'answers.jsonl').resolve()}#")


def test_export_with_index_lists_per_request(requests_, tmp_path):
    export_requests(requests_[:2], SAMPLING, [[4, 5], [7]], tmp_path / "todo.jsonl")
    assert [json.loads(x)["indices"] for x in (tmp_path / "todo.jsonl").read_text().splitlines()] == [[4, 5], [7]]
    with pytest.raises(UserError, match="2 requests but 1 index lists"):
        export_requests(requests_[:2], SAMPLING, [[0]], tmp_path / "x.jsonl")


def test_answers_by_item_id_and_sampling_specific_lines(requests_, tmp_path):
    rows = [{"id": requests_[0].id, "index": 0, "text": "any sampling"},
            {"id": requests_[0].id, "index": 1, "text": "greedy only", "sampling": Sampling(temperature=0).model_dump()}]
    backend = ReplayBackend(write_lines(tmp_path / "a.jsonl", rows))
    assert backend.sample(requests_[:1], Sampling(temperature=0), [[0, 1]])[0][1].text == "greedy only"
    with pytest.raises(PartialResults, match="no answer for 1 of 2 wanted samples"):
        backend.sample(requests_[:1], SAMPLING, [[0, 1]])


def test_missing_answers_name_the_file_and_the_count(requests_, tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [{"key": requests_[0].key, "index": 0, "text": "3"}])
    with pytest.raises(PartialResults) as info:
        ReplayBackend(path).sample(requests_, SAMPLING, [[0, 1], [0], [0]])
    message = str(info.value)
    assert str(path) in message and "no answer for 3 of 4 wanted samples (3 requests)" in message
    assert isinstance(info.value, DeltaError) and [len(c) for c in info.value.completions] == [1, 0, 0]
    cached = CachedBackend(ReplayBackend(path), tmp_path / "c.sqlite")  # what was there is kept
    with pytest.raises(PartialResults):
        cached.sample(requests_, SAMPLING, [[0, 1]] * 3)
    assert cached.sample(requests_[:1], SAMPLING, [[0]])[0][0].text == "3" and cached.inner_calls == 1


@pytest.mark.parametrize("line, message", [
    ('{"key": "k", "index": 0}', ":1: text: Field required"),
    ('{"index": 0, "text": "x"}', "needs 'key'"),
    ('{"key": "k", "index": -1, "text": "x"}', "index: Input should be greater than or equal to 0"),
    ('{"key": "k", "index": 0, "text": "x", "colour": 1}', "colour: Extra inputs are not permitted"),
    ("not json", ":1: line: Invalid JSON"),
])
def test_malformed_lines_are_user_errors_naming_the_line(line, message, tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(UserError, match=message):
        ReplayBackend(path)


def test_conflicting_answers_and_missing_files(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [{"key": "k", "index": 0, "text": "x"}, {"key": "k", "index": 0, "text": "y"}])
    with pytest.raises(UserError, match=r"a.jsonl:2: a second, different answer for key=k index 0"):
        ReplayBackend(path)
    with pytest.raises(UserError, match="does not exist"):
        load_backend(f"replay:{tmp_path / 'none.jsonl'}")
