"""Build tiny random-weight VLM folders offline (LLaVA, Idefics3) for tests and dry runs."""

from __future__ import annotations

import random
from pathlib import Path

from deltaprompts.errors import UnknownNameError

ARCHITECTURES = ("llava", "idefics3")

# The words our questions and answers use, so the tokenizer learns them as whole tokens.
WORDS = (
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 20 25 50 100 . , % $ ? : ( ) { } - + "
    "A B C D E yes no Yes No true false "
    "red green blue yellow orange purple pink brown black white gray grey cyan magenta "
    "circle circles square squares triangle triangles star cube sphere cylinder shape shapes object objects "
    "how many what which is are there the a an of in on to and or than more less most least "
    "color colour count value total sum difference largest smallest highest lowest bar bars chart line "
    "item items price amount date tax invoice receipt year percent "
    "answer Answer Options option letter word number single phrase final step think boxed \\boxed "
    "Put your inside Use using question with assistant user system"
).split()

_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=1024)
_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
               image_size=32, patch_size=8)


def _training_text(n: int, seed: int):
    rng = random.Random(seed)
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 14))]
        yield " ".join(words) + rng.choice(["?", ".", "", " \\boxed{" + rng.choice(WORDS) + "}"])


def _tokenizer(special: list[str], seed: int, **kw):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(_training_text(4000, seed), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, **kw)


def _chat_template(bot: str, eot: str, image: str) -> str:
    return ("{% for m in messages %}" + bot + "{{ m['role'] }}\n"
            "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
            "{% if c['type'] == 'image' %}" + image + "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
            "{% endfor %}{% endif %}" + eot + "\n{% endfor %}{% if add_generation_prompt %}" + bot + "assistant\n{% endif %}")


def _boost_eos(model, eos_id: int, logit: float) -> None:
    """Make the end-of-turn token likely at every step (about `logit` above the rest), so tiny
    models give short answers: one embedding coordinate is set to a constant, which dominates the
    RMS-normalised hidden state, and only the eos row of the output matrix reads it."""
    import torch

    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    if emb.data_ptr() == head.data_ptr():
        return  # tied embeddings: leave the model as it is
    d = emb.shape[1]
    with torch.no_grad():
        emb[:, 0] = 1.0
        head[:, 0] = 0.0
        head[eos_id, 0] = logit / d**0.5  # the normalised coordinate is about sqrt(d)


def build_tiny_vlm(arch: str, out_dir: Path | str, *, seed: int = 0, eos_logit: float = 5.5) -> Path:
    """Write a tiny random-weight VLM (weights, config, processor, chat template) to `out_dir`.

    `arch` is one of ARCHITECTURES; `eos_logit` raises the end-of-turn logit (0 = leave the random
    weights alone; 5.5 ends about one answer in four per token). Loads back with AutoProcessor +
    AutoModelForImageTextToText. Returns the folder. Raises UnknownNameError for an unknown arch.
    """
    if arch not in ARCHITECTURES:
        raise UnknownNameError("tiny architecture", arch, ARCHITECTURES)
    import torch
    import transformers as T

    out = Path(out_dir)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch == "llava":
            tok = _tokenizer(["<pad>", "<|im_start|>", "<|im_end|>", "<image>"], seed,
                             eos_token="<|im_end|>", pad_token="<pad>")
            ids = tok.convert_tokens_to_ids
            proc = T.LlavaProcessor(
                image_processor=T.SiglipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer=tok,
                patch_size=8, vision_feature_select_strategy="full", num_additional_image_tokens=0,
                chat_template=_chat_template("<|im_start|>", "<|im_end|>", "<image>"), image_token="<image>")
            text = T.LlamaConfig(vocab_size=len(tok), **_TEXT, bos_token_id=None,
                                 eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<pad>"))
            model = T.LlavaForConditionalGeneration(T.LlavaConfig(
                vision_config=T.SiglipVisionConfig(**_VISION), text_config=text, image_token_index=ids("<image>"),
                image_seq_length=16, vision_feature_select_strategy="full", vision_feature_layer=-1))
        else:
            special = ["<pad>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>", "<global-img>"]
            special += [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
            tok = _tokenizer(special, seed, eos_token="<end_of_utterance>", pad_token="<pad>")
            ids = tok.convert_tokens_to_ids
            proc = T.Idefics3Processor(
                image_processor=T.Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": 32},
                                                            max_image_size={"longest_edge": 32}),
                tokenizer=tok, image_seq_len=4,
                chat_template=_chat_template("<|im_start|>", "<end_of_utterance>", "<image>"))
            text = T.LlamaConfig(vocab_size=len(tok), **_TEXT, bos_token_id=None,
                                 eos_token_id=ids("<end_of_utterance>"), pad_token_id=ids("<pad>"))
            model = T.Idefics3ForConditionalGeneration(T.Idefics3Config(
                vision_config=_VISION, text_config=text, image_token_id=ids("<image>"), scale_factor=2,
                pad_token_id=ids("<pad>")))
        if eos_logit:
            _boost_eos(model, tok.eos_token_id, eos_logit)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out
