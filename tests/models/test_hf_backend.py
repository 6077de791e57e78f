"""The transformers backend on two tiny architectures (LLaVA, Idefics3) loaded from local folders."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprompts.errors import UserError
from deltaprompts.models.base import Backend, Sampling, Scorer
from deltaprompts.models.specs import load_backend

pytest.importorskip("transformers")

ARCHS = ("llava", "idefics3")
SAMPLING = Sampling(temperature=1.0, top_k=0, max_new_tokens=5, seed=7, logprobs=True)


@pytest.mark.parametrize("arch", ARCHS)
def test_sampling_gives_the_asked_indices(arch, hf_backends, requests_):
    backend = hf_backends[arch]
    assert isinstance(backend, Backend) and isinstance(backend, Scorer)
    out = backend.sample(requests_, SAMPLING, [[0, 1, 2, 3], [5, 9], []])
    assert [[c.index for c in comps] for comps in out] == [[0, 1, 2, 3], [5, 9], []]
    for c in out[0] + out[1]:
        assert isinstance(c.text, str) and c.finish_reason in ("stop", "length")
        assert c.logprob == pytest.approx(sum(c.token_logprobs)) and c.logprob < 0
        assert len(c.token_logprobs) <= SAMPLING.max_new_tokens
    assert len({c.text for c in out[0]}) > 1  # four random samples of a random model differ
    no_lp = backend.sample(requests_[:1], SAMPLING.model_copy(update={"logprobs": False}), [[0]])
    assert no_lp[0][0].logprob is None and no_lp[0][0].text == out[0][0].text


@pytest.mark.parametrize("arch", ARCHS)
def test_sample_i_depends_only_on_seed_key_and_index(arch, hf_backends, tiny_models, requests_):
    from deltaprompts.models.hf import HFBackend

    backend = hf_backends[arch]
    full = backend.sample(requests_, SAMPLING, [[0, 1, 2, 3]] * 3)
    part = backend.sample(requests_[::-1], SAMPLING, [[3], [2, 0], [1, 3]])  # other order, other subsets
    assert [c.text for c in part[2]] == [full[0][1].text, full[0][3].text]
    assert [c.text for c in part[1]] == [full[1][2].text, full[1][0].text]
    single = HFBackend(str(tiny_models[arch]), batch_size=1, threads=1)
    one_by_one = single.sample(requests_, SAMPLING, [[0, 1, 2, 3]] * 3)
    assert [[c.text for c in r] for r in one_by_one] == [[c.text for c in r] for r in full]
    np.testing.assert_allclose([c.logprob for r in one_by_one for c in r], [c.logprob for r in full for c in r],
                               atol=1e-4)
    other_seed = backend.sample(requests_, SAMPLING.model_copy(update={"seed": 8}), [[0, 1, 2, 3]] * 3)
    assert [[c.text for c in r] for r in other_seed] != [[c.text for c in r] for r in full]


@pytest.mark.parametrize("arch", ARCHS)
def test_scores_of_sampled_answers_match_their_sampled_logprobs(arch, hf_backends, requests_):
    backend = hf_backends[arch]
    tok = backend.tokenizer
    gens = backend.generate(requests_, SAMPLING, [list(range(10))] * 3)
    checked = {"stop": 0, "length": 0}
    for req, row in zip(requests_, gens):
        for g in row:
            ids = g.token_ids[:-1] if g.finish_reason == "stop" else g.token_ids
            # a random model samples non-canonical token sequences too; their text re-tokenizes differently
            if tok(g.text, add_special_tokens=False).input_ids != ids:
                continue
            score = backend.score([req], [g.text])[0]
            assert score.tokens[-1] == tok.eos_token
            # score is always `answer + eos`; a sample cut at max_new_tokens has no eos
            expected = score.token_logprobs if g.finish_reason == "stop" else score.token_logprobs[:-1]
            np.testing.assert_allclose(expected, g.token_logprobs, atol=1e-3)
            checked[g.finish_reason] += 1
    assert checked["stop"] >= 2 and checked["length"] >= 1, checked


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_batched_equals_unbatched(arch, hf_backends, tiny_models, requests_):
    from deltaprompts.models.hf import HFBackend

    greedy = Sampling(temperature=0, max_new_tokens=6, logprobs=True)
    batched = hf_backends[f"{arch}_plain"].sample(requests_, greedy, [[0, 1, 2], [0], [4]])
    single = HFBackend(str(tiny_models[f"{arch}_plain"]), batch_size=1, threads=1).sample(requests_, greedy, [[0], [0], [4]])
    assert [c.text for c in batched[0]] == [single[0][0].text] * 3  # greedy: every index is the same answer
    assert [r[0].text for r in batched] == [r[0].text for r in single]
    assert all(r[0].text for r in batched)  # plain random weights do not stop at once
    np.testing.assert_allclose([r[0].logprob for r in batched], [r[0].logprob for r in single], atol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_top_k_1_and_tiny_top_p_sample_the_argmax(arch, hf_backends, requests_):
    backend = hf_backends[f"{arch}_plain"]
    greedy = backend.sample(requests_, Sampling(temperature=0, max_new_tokens=SAMPLING.max_new_tokens), [[0]] * 3)
    for update in ({"top_k": 1}, {"top_p": 1e-6}):
        sampled = backend.sample(requests_, SAMPLING.model_copy(update=update), [[0, 1]] * 3)
        assert [[c.text for c in r] for r in sampled] == [[g[0].text] * 2 for g in greedy]
        assert all(lp == pytest.approx(0.0, abs=1e-5) for r in sampled for c in r for lp in c.token_logprobs)


@pytest.mark.parametrize("arch", ARCHS)
def test_scoring_batched_equals_unbatched_and_masks_the_prompt(arch, hf_backends, tiny_models, requests_):
    from deltaprompts.models.hf import HFBackend

    answers = ["3", "red square", "no"]
    batched = hf_backends[arch].score(requests_, answers)
    single = HFBackend(str(tiny_models[arch]), batch_size=1, threads=1).score(requests_, answers)
    tok = hf_backends[arch].tokenizer
    for b, s, a in zip(batched, single, answers):
        assert b.tokens == s.tokens == tok.convert_ids_to_tokens(tok(a, add_special_tokens=False).input_ids) + [tok.eos_token]
        np.testing.assert_allclose(b.token_logprobs, s.token_logprobs, atol=1e-4)
        assert b.logprob < 0


def test_bfloat16_option_runs(tiny_models, requests_):
    backend = load_backend(f"hf:{tiny_models['llava']}?dtype=bfloat16&batch_size=2&threads=1")
    assert backend.identity.endswith("?dtype=bfloat16") and backend.batch_size == 2
    out = backend.sample(requests_[:2], SAMPLING, [[0, 1], [0]])
    assert [len(r) for r in out] == [2, 1]
    assert len(backend.score(requests_[:1], ["3"])[0].token_logprobs) == 2


def test_identity_names_the_folder_and_its_files(tmp_path):
    from deltaprompts.models.hf import HFBackend

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    first = HFBackend(str(tmp_path)).identity
    assert first.startswith(f"hf:{tmp_path.resolve()}#")
    (tmp_path / "model.safetensors").write_bytes(b"x" * 11)
    assert HFBackend(str(tmp_path)).identity != first


def test_missing_model_gives_a_clear_user_error(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="does not exist"):
        load_backend(f"hf:{tmp_path / 'nope'}")
    with pytest.raises(UserError, match="no config.json"):
        load_backend(f"hf:{tmp_path}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        load_backend("hf:some-org/some-model")


@pytest.mark.parametrize("spec, message", [
    ("hf:PATH?colour=red", "unknown option 'colour'.*allowed: batch_size, device, dtype"),
    ("hf:PATH?batch_size=many", "batch_size='many'.*not a valid int"),
    ("hf:PATH?dtype=int8", "dtype='int8' is not allowed; allowed: float32, bfloat16, float16"),
    ("hf:PATH?device=tpu", "device='tpu' is not allowed"),
    ("hf:?dtype=float32", "needs a path or hub id"),
])
def test_bad_hf_specs_name_what_is_allowed(spec, message, tiny_models):
    with pytest.raises(UserError, match=message):
        load_backend(spec.replace("PATH", str(tiny_models["llava"])))


def test_text_only_requests_batch_apart_from_image_requests(hf_backends, requests_):
    from deltaprompts.models.base import Message, Request

    text_only = Request(id="t", messages=[Message(role="user", content=[{"type": "text", "text": "Is 3 more than 2?"}])])
    mixed = [requests_[0], text_only, requests_[1]]
    backend = hf_backends["idefics3"]
    out = backend.sample(mixed, SAMPLING, [[0, 1], [0, 1], [0, 1]])
    alone = backend.sample([text_only], SAMPLING, [[0, 1]])
    assert [c.text for c in out[1]] == [c.text for c in alone[0]]
    scores = backend.score(mixed, ["3", "yes", "red"])
    np.testing.assert_allclose(scores[1].token_logprobs, backend.score([text_only], ["yes"])[0].token_logprobs, atol=1e-4)
    np.testing.assert_allclose(scores[0].token_logprobs, backend.score(requests_[:1], ["3"])[0].token_logprobs, atol=1e-4)


def test_a_folder_without_chat_template_is_a_user_error(tiny_models, requests_, tmp_path):
    import shutil

    from deltaprompts.models.hf import HFBackend

    folder = tmp_path / "no_template"
    shutil.copytree(tiny_models["llava"], folder)
    (folder / "chat_template.jinja").unlink()
    backend = HFBackend(str(folder), threads=1)
    for _ in range(2):  # and it stays an error, the half-loaded model is not kept
        with pytest.raises(UserError, match="has no chat template"):
            backend.sample(requests_[:1], SAMPLING, [[0]])
