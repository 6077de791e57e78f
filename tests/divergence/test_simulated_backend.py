"""The `sim:` backend: a seeded, deterministic, clearly labelled simulation of a model."""

import math

import numpy as np
import pytest

from deltaprompts.verifiers import UNPARSEABLE, answer_class
from deltaprompts.errors import UserError
from deltaprompts.models.base import Backend, Message, Request, Sampling, Scorer
from deltaprompts.models.simulated import SimulatedBackend, _Answers
from deltaprompts.models.specs import load_backend


def req(i):
    return Request(id=f"q{i}", messages=[Message(role="user", content=[{"type": "text", "text": f"question {i}"}])])


REQS = [req(i) for i in range(40)]


def test_spec_builds_a_scoring_backend_that_says_it_is_simulated():
    b = load_backend("sim:big?skill=0.9&seed=3")
    assert isinstance(b, Backend) and isinstance(b, Scorer)
    assert b.identity.startswith("simulated:big?") and "skill=0.9" in b.identity and "seed=3" in b.identity
    out = b.sample(REQS[:3], Sampling(seed=0), [[0, 1]] * 3)
    assert all(c.text.startswith("[simulated big]") for row in out for c in row)
    assert not isinstance(load_backend("sim:plain?score=0"), Scorer)


@pytest.mark.parametrize("spec, message", [
    ("sim:big?skil=1", "option 'skil=1' is not valid; options .*skill"),
    ("sim:big?skill=abc", "skill='abc' must be a float"),
    ("sim:big?zero=1.5", r"zero='1.5' must be in \[0.0, 1.0\]"),
    ("sim:bad name", "NAME must be"),
])
def test_bad_specs_name_the_problem(spec, message):
    with pytest.raises(UserError, match=message):
        load_backend(spec)


def test_samples_depend_only_on_seed_request_and_index():
    b = load_backend("sim:m")
    whole = b.sample(REQS[:5], Sampling(seed=4), [list(range(8))] * 5)
    part = b.sample(REQS[:5], Sampling(seed=4), [[6, 2]] * 5)
    for w, p in zip(whole, part):
        assert [c.index for c in p] == [6, 2]
        assert [c.text for c in p] == [w[6].text, w[2].text]
    other = b.sample(REQS[:5], Sampling(seed=5), [list(range(8))] * 5)
    assert [c.text for r in whole for c in r] != [c.text for r in other for c in r]
    assert b.completions == 5 * 8 + 5 * 2 + 5 * 8


def test_zero_share_decides_which_items_all_models_share():
    a, b = load_backend("sim:a?zero=1"), load_backend("sim:b?zero=1")
    assert all(np.allclose(a.mixture(r), b.mixture(r)) for r in REQS)
    a, b = load_backend("sim:a?zero=0"), load_backend("sim:b?zero=0")
    assert not any(np.allclose(a.mixture(r), b.mixture(r)) for r in REQS)
    a, b = load_backend("sim:a"), load_backend("sim:b")
    shared = sum(np.allclose(a.mixture(r), b.mixture(r)) for r in [req(i) for i in range(400)]) / 400
    assert 0.6 < shared < 0.78  # default zero=0.69


def test_temperature_zero_is_greedy_and_garbled_outputs_are_unparseable():
    b = load_backend("sim:m?garble=0")
    out = b.sample(REQS, Sampling(temperature=0), [list(range(6))] * len(REQS))
    for r, row in zip(REQS, out):
        assert len({c.text for c in row}) == 1
        p = b.mixture(r)
        assert row[0].text == b._say(b.answers(r), int(np.argmax(p)), len(p) - 1)
    g = load_backend("sim:m?garble=1")
    texts = [c.text for row in g.sample(REQS[:3], Sampling(), [[0, 1]] * 3) for c in row]
    assert {answer_class(t, "string") for t in texts} == {UNPARSEABLE}


def test_scores_are_the_log_of_the_answer_class_mass():
    b = load_backend("sim:m?garble=0.05")
    r = REQS[0]
    p = b.mixture(r)
    texts = [b._say(b.answers(r), j, len(p) - 1) for j in range(len(p))]
    scores = b.score([r] * len(p), texts)
    assert [s.logprob for s in scores] == pytest.approx([math.log(x) for x in p])
    assert b.score([r], ["[simulated m] The answer is something else"])[0].logprob == pytest.approx(math.log(1e-6))


def test_distractors_are_different_answer_classes_of_the_item_type():
    cases = [("5", "count", None), ("yes", "yes_no", None), ("B", "choice", {"A": "cat", "B": "dog", "C": "cow"}),
             ("$12.50", "currency", None), ("45%", "percent", None), ("red|blue", "list", None), ("1999", "year", None),
             ("red", "string", None)]
    for answer, kind, options in cases:
        a = _Answers(answer, kind, options, {})
        truth = answer_class(f"The answer is {a.text(0)}", kind, options)
        assert truth == answer_class(f"The answer is {answer}", kind, options) != UNPARSEABLE
        assert answer_class(f"The answer is {a.text(1)}", kind, options) not in (truth, UNPARSEABLE), (answer, kind)


def test_mixture_is_a_distribution_and_skill_leans_to_the_correct_answer():
    good, bad = SimulatedBackend("good", zero=0.0, skill=1.0), SimulatedBackend("bad", zero=0.0, skill=0.0)
    for r in REQS:
        assert good.mixture(r).sum() == pytest.approx(1.0)
    assert np.mean([good.mixture(r)[0] for r in REQS]) > np.mean([bad.mixture(r)[0] for r in REQS]) + 0.2
