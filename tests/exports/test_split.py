"""The train/eval split: deterministic; no eval item shares a Spec, a near-identical image or question with train."""

import hashlib
import io
import itertools
import json
import random

import numpy as np
import pytest
from PIL import Image

from deltaprompts.errors import UserError
from deltaprompts.records import ImageRef
from deltaprompts.split import (
    SplitConfig,
    _draw,
    _QuestionIndex,
    image_signature,
    normalize_text,
    read_split,
    select,
    split_run,
)
from deltaprompts.store import RunStore


def brute_force_conflicts(items, root, result, cfg):
    """Every (eval, train) pair that breaks a rule, checked pair by pair without the indexes."""
    by_id = {it.id: it for it in items}
    sig = {it.image.sha256: image_signature(root / it.image.path) for it in items}
    bad = []
    for e, t in itertools.product(result.eval, result.train):
        a, b = by_id[e], by_id[t]
        (ha, ta), (hb, tb) = sig[a.image.sha256], sig[b.image.sha256]
        near_image = (ha ^ hb).bit_count() <= cfg.image_bits and \
            np.percentile(np.abs(ta.astype(int) - tb.astype(int)), 99) <= cfg.image_confirm
        qa, qb = normalize_text(a.question.text), normalize_text(b.question.text)
        same = normalize_text(a.question.answer) == normalize_text(b.question.answer)
        sa, sb = set(qa.split()), set(qb.split())
        near_q = same and (qa == qb or len(sa & sb) / len(sa | sb) >= cfg.jaccard)
        if a.spec.key == b.spec.key or a.image.sha256 == b.image.sha256 or near_image or near_q:
            bad.append((e, t))
    return bad


def plant(root, item, new_id, *, png=None, text=None, cfg=SplitConfig(eval_fraction=0.5)):
    """A copy of `item` under a new id and a new Spec whose draw puts it in eval; optionally with
    other image bytes (written to images/planted/) and another question text."""
    base = int(hashlib.sha256(new_id.encode()).hexdigest()[:8], 16)  # a Spec of its own per planted item
    spec = next(s for s in (item.spec.model_copy(update={"seed": base + k}) for k in range(500))
                if _draw(s.key, cfg.seed) < cfg.eval_fraction)
    image = item.image
    if png is not None:
        rel = f"images/planted/{new_id}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(png)
        image = ImageRef(path=rel, sha256=hashlib.sha256(png).hexdigest(), width=item.image.width,
                         height=item.image.height)
    question = item.question.model_copy(update={"text": text}) if text else item.question
    return item.model_copy(update={"id": new_id, "spec": spec, "image": image, "question": question})


def png_of(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_split_is_deterministic_and_keeps_specs_together(run_copy):
    a = split_run(run_copy, SplitConfig(eval_fraction=0.5, seed=3))
    first = (run_copy / "split.json").read_bytes()
    b = split_run(run_copy, SplitConfig(eval_fraction=0.5, seed=3))
    assert (run_copy / "split.json").read_bytes() == first and a == b
    assert a.eval and a.train and sorted(a.train + a.eval) == sorted(it.id for it in RunStore(run_copy).iter_items())
    c = split_run(run_copy, SplitConfig(eval_fraction=0.5, seed=4))
    assert c.eval != a.eval  # another seed draws other items
    items = list(RunStore(run_copy).iter_items())
    spec_of = {it.id: it.spec.key for it in items}
    assert not {spec_of[i] for i in a.eval} & {spec_of[i] for i in a.train}
    assert read_split(run_copy) == c


def test_planted_duplicates_are_all_caught(run_copy):
    cfg = SplitConfig(eval_fraction=0.5)
    store = RunStore(run_copy)
    items = list(store.iter_items())
    clean = split_run(run_copy, cfg)
    train = [it for it in items if it.id in set(clean.train)]
    t1, t2, t3 = train[0], train[2], train[4]
    pixels = np.asarray(Image.open(run_copy / t3.image.path).convert("RGB")).copy()
    pixels[10, 10] = 255 - pixels[10, 10]  # one pixel changed: other bytes, same picture
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    noise2 = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    t2_text = t2.question.text.upper().replace("?", " ?!").replace(" ", "  ")
    planted = [
        plant(run_copy, t1, "planted-same-bytes", png=(run_copy / t1.image.path).read_bytes()),
        plant(run_copy, t2, "planted-question", png=png_of(noise), text=t2_text),
        plant(run_copy, t3, "planted-one-pixel", png=png_of(pixels), text="How many objects touch the border?"),
        plant(run_copy, t1, "planted-clean", png=png_of(noise2), text="Is the sky in this picture falling down?"),
    ]
    assert normalize_text(t2_text) == normalize_text(t2.question.text) and t2_text != t2.question.text
    store.write_items(999, planted)
    result = split_run(run_copy, cfg)
    sha = {it.id: it.image.sha256 for it in items}
    reasons = {c["item"]: (c["reason"], sha.get(c["with"])) for c in result.conflicts}
    assert reasons["planted-same-bytes"] == ("image", t1.image.sha256)  # caught against t1 or its image mate
    assert reasons["planted-question"] == ("question", t2.image.sha256)
    assert reasons["planted-one-pixel"] == ("image", t3.image.sha256)
    assert "planted-clean" in result.eval  # the checks do not fire on an unrelated item
    assert {"planted-same-bytes", "planted-question", "planted-one-pixel"} <= set(result.train)
    assert result.left_eval["image"] >= 2 and result.left_eval["question"] >= 1
    assert brute_force_conflicts(list(store.iter_items()), run_copy, result, cfg) == []
    saved = json.loads((run_copy / "split.json").read_text())
    assert saved["left_eval"] == result.left_eval and saved["counts"]["eval"] == len(result.eval)

    dropped = split_run(run_copy, cfg.model_copy(update={"on_conflict": "drop"}))
    assert {"planted-same-bytes", "planted-question", "planted-one-pixel"} <= set(dropped.dropped)
    assert not set(dropped.dropped) & (set(dropped.train) | set(dropped.eval))


def test_item_unit_moves_items_that_share_a_spec(run_copy):
    cfg = SplitConfig(eval_fraction=0.5, unit="item", seed=1)
    result = split_run(run_copy, cfg)
    items = list(RunStore(run_copy).iter_items())
    assert result.left_eval["spec"] > 0  # two questions per image: drawn apart, then joined in train
    assert brute_force_conflicts(items, run_copy, result, cfg) == []


def test_question_index_matches_brute_force_jaccard():
    rng = random.Random(0)
    words = [f"w{i}" for i in range(12)]
    texts = [" ".join(rng.sample(words, rng.randint(1, 10))) for _ in range(300)]
    for t in (0.5, 0.8, 0.9, 1.0):
        order = {w: rng.randint(0, 5) for w in words}
        index = _QuestionIndex(t, order)
        for n, text in enumerate(texts[:150]):
            index.add(str(n), "", text)
        for text in texts[150:]:
            s = set(text.split())
            truth = any(len(s & set(o.split())) / len(s | set(o.split())) >= t for o in texts[:150])
            assert (index.match("", text) is not None) == truth, (t, text)


def test_bad_input_is_a_clear_error(tmp_path, run_copy):
    with pytest.raises(UserError, match="no manifest.json"):
        split_run(tmp_path)
    with pytest.raises(UserError, match="deltaprompts split"):
        select(list(RunStore(run_copy).iter_items()), run_copy, "eval")
    with pytest.raises(ValueError, match="eval_fraction"):
        SplitConfig(eval_fraction=1.5)
    split_run(run_copy, SplitConfig(eval_fraction=0.5))
    (run_copy / "images" / "scene.shapes").rename(run_copy / "moved")
    with pytest.raises(UserError, match="cannot read image"):
        split_run(run_copy)


def test_distinct_templated_documents_are_not_near_identical(tmp_path):
    # Invoices share one layout, so their 64-bit pHashes can be 2 bits apart; the thumbnail check
    # must still tell them apart, or every eval invoice would be moved to train.
    from tests.exports.helpers import make_run

    run = make_run(tmp_path / "inv", families=("document.invoice",), n=8)
    items = list(RunStore(run).iter_items())
    assert len({it.image.sha256 for it in items}) == 8
    result = split_run(run, SplitConfig(eval_fraction=0.5))
    assert result.left_eval["image"] == 0
    for a, b in itertools.combinations({it.image.path for it in items}, 2):
        (_, ta), (_, tb) = image_signature(run / a), image_signature(run / b)
        assert np.percentile(np.abs(ta.astype(int) - tb.astype(int)), 99) > SplitConfig().image_confirm


def test_reencoded_and_rescaled_copies_are_near_identical(generated_run, tmp_path):
    from deltaprompts.split import _ImageIndex

    item = next(RunStore(generated_run).iter_items())
    original = Image.open(generated_run / item.image.path).convert("RGB")
    w, h = original.size
    variants = {"orig": original, "small": original.resize((int(w * 0.8), int(h * 0.8))).resize((w, h))}
    buf = io.BytesIO()
    original.save(buf, format="JPEG", quality=85)
    variants["jpeg"] = Image.open(io.BytesIO(buf.getvalue()))
    for name, im in variants.items():
        im.save(tmp_path / f"{name}.png")
    sigs = {name: image_signature(tmp_path / f"{name}.png") for name in variants}
    index = _ImageIndex(4, 6.0, sigs)
    index.add("orig")
    assert index.match("jpeg") == "orig" and index.match("small") == "orig"


@pytest.mark.parametrize("fraction", [0.01, 0.99])
def test_a_small_run_never_leaves_a_side_empty(run_copy, fraction):
    """Six Specs drawn at 1% (or 99%) would all land on one side: one crosses over."""
    result = split_run(run_copy, SplitConfig(eval_fraction=fraction, seed=0))
    assert result.train and result.eval
    spec_of = {it.id: it.spec.key for it in RunStore(run_copy).iter_items()}
    assert len({spec_of[i] for i in (result.eval if fraction < 0.5 else result.train)}) == 1
