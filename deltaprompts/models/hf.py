"""The transformers backend: `hf:PATH_OR_ID?dtype=...&device=...&batch_size=N`, local VLM sampling and scoring."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deltaprompts.errors import DeltaError, UserError
from deltaprompts.models.base import AnswerScore, Completion, Request, Sampling
from deltaprompts.models.specs import scheme
from deltaprompts.models.wrappers import split_options
from deltaprompts.rng import derive_seed

FORM = "hf:PATH_OR_ID[?dtype=bfloat16&device=cuda&batch_size=8]"
OPTIONS = {"dtype": str, "device": str, "batch_size": int, "threads": int, "revision": str}
DTYPES = ("float32", "bfloat16", "float16")
_DEVICE = re.compile(r"^(cpu|auto|mps|cuda(:\d+)?)$")
# Files whose names and sizes identify a model folder (and the only ones fetched from the hub).
MODEL_FILES = ("*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken")
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_model_path(path_or_id: str, revision: str | None = None) -> Path:
    """The local folder of a model: `path_or_id` as a folder, or a hub id found in the local
    Hugging Face cache (downloaded first unless HF_HUB_OFFLINE is set). Raises UserError."""
    p = Path(path_or_id).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise UserError(f"hf model folder {p.resolve()} has no config.json; expected a save_pretrained() folder")
        return p.resolve()
    if p.exists():
        raise UserError(f"hf model {path_or_id!r} is a file; give the folder written by save_pretrained()")
    if not _HUB_ID.match(path_or_id) or path_or_id.startswith("."):
        raise UserError(f"hf model folder {p.resolve()} does not exist (form: {FORM})")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(path_or_id, revision=revision, local_files_only=True, allow_patterns=list(MODEL_FILES)))
    except Exception as e:
        if _offline():
            raise UserError(f"hf model {path_or_id!r}: no such folder ({p.resolve()}), and not in the local Hugging Face "
                            f"cache while HF_HUB_OFFLINE is set ({type(e).__name__})") from None
    try:
        return Path(snapshot_download(path_or_id, revision=revision, allow_patterns=list(MODEL_FILES)))
    except Exception as e:
        raise UserError(f"hf model {path_or_id!r}: no such folder ({p.resolve()}), and the hub download failed: "
                        f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def files_digest(folder: Path) -> str:
    """A short hash of the names and sizes of a model folder's config, tokenizer and weight files."""
    entries = sorted({(str(f.relative_to(folder)), f.stat().st_size) for pattern in MODEL_FILES
                      for f in folder.rglob(pattern) if f.is_file() and ".cache" not in f.parts})
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:12]


@dataclass
class Generation:
    """One generated sequence: its new token ids (eos included when it stopped), text and log-probs."""

    index: int
    token_ids: list[int]
    text: str
    token_logprobs: list[float]
    finish_reason: str

    def completion(self, logprobs: bool) -> Completion:
        return Completion(text=self.text, index=self.index, finish_reason=self.finish_reason,
                          logprob=float(sum(self.token_logprobs)) if logprobs else None,
                          token_logprobs=self.token_logprobs if logprobs else None)


class HFBackend:
    """A local image-text-to-text model through transformers (loaded on first use).

    Sample i of a request is drawn with its own random generator seeded by
    (sampling.seed, request.key, i), so it does not depend on batching or on which other
    indices are asked for in the same call. Implements Backend and Scorer.
    """

    def __init__(self, path_or_id: str, *, dtype: str = "float32", device: str = "cpu", batch_size: int = 8,
                 threads: int | None = None, revision: str | None = None):
        if dtype not in DTYPES:
            raise UserError(f"hf option dtype={dtype!r} is not allowed; allowed: {', '.join(DTYPES)}")
        if not _DEVICE.match(device):
            raise UserError(f"hf option device={device!r} is not allowed; allowed: cpu, cuda, cuda:N, mps, auto")
        if batch_size < 1 or (threads is not None and threads < 1):
            raise UserError(f"hf options batch_size and threads must be >= 1, got {batch_size}, {threads}")
        self.path = resolve_model_path(path_or_id, revision)
        self.dtype, self.device, self.batch_size, self.threads = dtype, device, batch_size, threads
        self.identity = f"hf:{self.path}#{files_digest(self.path)}?dtype={dtype}"
        self._model: Any = None
        self._processor: Any = None

    # ------------------------------------------------------------------ loading

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # our own progress bar is the one a user watches
            if self.threads:
                torch.set_num_threads(self.threads)
            device = self.device if self.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
            try:
                processor = AutoProcessor.from_pretrained(self.path)
                model = AutoModelForImageTextToText.from_pretrained(self.path, dtype=getattr(torch, self.dtype))
            except (OSError, ValueError, KeyError, ImportError) as e:
                first = str(e).splitlines()[0] if str(e) else ""
                raise UserError(f"cannot load {self.path} as an image-text-to-text model: {type(e).__name__}: {first}") from None
            if getattr(processor, "chat_template", None) is None:
                raise UserError(f"{self.path} has no chat template (chat_template.jinja or in processor_config.json)")
            self._processor, self._model = processor, model.to(device).eval()
        return self._model, self._processor

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (loads the model on first use)."""
        return self._load()[1].tokenizer

    def _eos_ids(self) -> list[int]:
        model, processor = self._load()
        eos = model.generation_config.eos_token_id
        eos = processor.tokenizer.eos_token_id if eos is None else eos
        return [eos] if isinstance(eos, int) else list(eos)

    def _encode(self, requests: Sequence[Request], texts: list[str], padding_side: str):
        import torch

        from deltaprompts.models.images import DECODED

        model, processor = self._load()
        images = []
        for req in requests:
            imgs = []
            for path in req.images:
                try:
                    imgs.append(DECODED.get(path))  # decoded once per process, not once per call
                except UserError as e:
                    raise UserError(f"request {req.id}: {e}") from None
            images.append(imgs)
        processor.tokenizer.padding_side = padding_side
        kwargs = {"images": images} if any(images) else {}
        batch = processor(text=texts, padding=True, return_tensors="pt", **kwargs)
        return {k: (v.to(model.device, model.dtype) if torch.is_floating_point(v) else v.to(model.device))
                for k, v in batch.items()}

    def prompt_text(self, request: Request) -> str:
        """The request's messages through the model's chat template, with the generation prompt."""
        _, processor = self._load()
        return processor.apply_chat_template([m.model_dump() for m in request.messages],
                                             add_generation_prompt=True, tokenize=False)

    # ------------------------------------------------------------------ sampling

    def generate(self, requests: Sequence[Request], sampling: Sampling,
                 indices: Sequence[Sequence[int]]) -> list[list[Generation]]:
        """Like `sample`, with the token ids of each generation (for inspection and tests)."""
        import torch

        model, processor = self._load()
        eos = set(self._eos_ids())
        greedy = sampling.temperature == 0
        # Split each request's indices into chunks of at most batch_size rows, group chunks of equal
        # length (one generate call uses one num_return_sequences) and image count, then pack them
        # into batches of at most batch_size rows.
        groups: dict[tuple[int, int], list[tuple[int, list[int]]]] = defaultdict(list)
        for r, idx in enumerate(indices):
            rows = list(idx)[:1] if greedy and idx else list(idx)  # greedy: all samples are the same
            for s in range(0, len(rows), self.batch_size):
                groups[(len(rows[s:s + self.batch_size]), len(requests[r].images))].append((r, rows[s:s + self.batch_size]))
        found: dict[tuple[int, int], Generation] = {}
        for (n, _), chunks in groups.items():
            per_call = max(1, self.batch_size // n)
            for s in range(0, len(chunks), per_call):
                part = chunks[s:s + per_call]
                reqs = [requests[r] for r, _ in part]
                seeds = [derive_seed(sampling.seed, requests[r].key, i) % 2**63 for r, rows in part for i in rows]
                sampler = _RowSampler(seeds, sampling)
                batch = self._encode(reqs, [self.prompt_text(q) for q in reqs], "left")
                # do_sample only because greedy search refuses num_return_sequences > 1: the sampler
                # leaves one finite score per row, so generate's multinomial draw is forced (its use
                # of the global RNG is fenced off) and its own warpers are switched off.
                cuda = [model.device.index or 0] if model.device.type == "cuda" else []
                with torch.no_grad(), torch.random.fork_rng(devices=cuda):
                    out = model.generate(**batch, logits_processor=[sampler], do_sample=True, num_beams=1,
                                         temperature=1.0, top_p=1.0, top_k=0, min_p=None, typical_p=1.0,
                                         num_return_sequences=n, max_new_tokens=sampling.max_new_tokens,
                                         return_dict_in_generate=False)
                new = out[:, batch["input_ids"].shape[1]:].tolist()
                logps = sampler.logprobs()
                for row, ((r, rows), i) in enumerate((c, i) for c in part for i in c[1]):
                    ids = new[row]
                    stop = next((t for t, tok in enumerate(ids) if tok in eos), None)
                    kept = ids if stop is None else ids[:stop + 1]
                    text = processor.tokenizer.decode(kept[:stop] if stop is not None else kept, skip_special_tokens=True)
                    found[(r, i)] = Generation(i, kept, text, logps[row][:len(kept)], "length" if stop is None else "stop")
        result: list[list[Generation]] = []
        for r, idx in enumerate(indices):
            if greedy and idx:
                first = found[(r, idx[0])]
                result.append([Generation(i, first.token_ids, first.text, first.token_logprobs, first.finish_reason) for i in idx])
            else:
                result.append([found[(r, i)] for i in idx])
        return result

    def sample(self, requests: Sequence[Request], sampling: Sampling, indices: Sequence[Sequence[int]]) -> list[list[Completion]]:
        """For each request, completions with the given sample indices (see the class docstring)."""
        if len(indices) != len(requests):
            raise UserError(f"sample: {len(requests)} requests but {len(indices)} index lists")
        return [[g.completion(sampling.logprobs) for g in gens] for gens in self.generate(requests, sampling, indices)]

    # ------------------------------------------------------------------ scoring

    def score(self, requests: Sequence[Request], answers: Sequence[str]) -> list[AnswerScore]:
        """Teacher-forced log-probs of `prompt + answer + eos` for each (request, answer); the
        scored tokens are those after the prompt. Raises UserError on mismatched lengths."""
        import torch

        if len(answers) != len(requests):
            raise UserError(f"score: {len(requests)} requests but {len(answers)} answers")
        model, processor = self._load()
        tok = processor.tokenizer
        eos_text = tok.convert_ids_to_tokens(self._eos_ids()[0])
        out: dict[int, AnswerScore] = {}
        order = sorted(range(len(requests)), key=lambda i: len(requests[i].images))  # batches of one image count
        for s in range(0, len(order), self.batch_size):
            part = order[s:s + self.batch_size]
            reqs, ans = [requests[i] for i in part], [answers[i] for i in part]
            prompts = [self.prompt_text(q) for q in reqs]
            full = self._encode(reqs, [p + a + eos_text for p, a in zip(prompts, ans)], "right")
            prompt_ids = self._encode(reqs, prompts, "right")
            ids, n_full = full["input_ids"], full["attention_mask"].sum(-1).tolist()
            n_prompt = prompt_ids["attention_mask"].sum(-1).tolist()
            starts = []
            for row in range(len(reqs)):  # first scored position: where prompt and full ids part
                a, b = prompt_ids["input_ids"][row, :n_prompt[row]], ids[row, :n_prompt[row]]
                diff = (a != b).nonzero()
                starts.append(int(diff[0]) if len(diff) else n_prompt[row])
            lo, hi = min(starts) - 1, max(n_full) - 1
            with torch.no_grad():
                try:
                    logits = model(**full, logits_to_keep=torch.arange(lo, hi, device=ids.device)).logits
                except TypeError:  # a model without logits_to_keep
                    logits = model(**full).logits[:, lo:hi]
            logp = torch.log_softmax(logits.float(), dim=-1)
            for row in range(len(reqs)):
                pos = torch.arange(starts[row], n_full[row], device=ids.device)
                target = ids[row, pos]
                lps = logp[row, pos - 1 - lo].gather(-1, target[:, None])[:, 0]
                out[part[row]] = AnswerScore(tokens=tok.convert_ids_to_tokens(target.tolist()), token_logprobs=lps.tolist())
        return [out[i] for i in range(len(requests))]


class _RowSampler:
    """A logits processor that samples each row with its own seeded generator and records the
    chosen token's log-prob under the (temperature, top_k, top_p) distribution; it returns scores
    that leave only the chosen token, which generate's greedy step then picks. At temperature 0 it
    takes the argmax and records its log-prob under the untempered distribution."""

    def __init__(self, seeds: list[int], sampling: Sampling):
        import torch

        self.sampling = sampling
        # CPU generators on every device: the uniform draws, hence the samples, do not depend on it
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.steps: list[Any] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        sp = self.sampling
        if scores.shape[0] != len(self.generators):
            raise DeltaError(f"generate gave {scores.shape[0]} rows for {len(self.generators)} samples; "
                             "this model expands num_return_sequences in a way the hf backend does not support")
        scores = scores.float()
        if sp.temperature == 0:
            logp = torch.log_softmax(scores, dim=-1)
            chosen = scores.argmax(-1)
        else:
            scores = scores / sp.temperature
            if sp.top_k:
                kth = torch.topk(scores, min(sp.top_k, scores.shape[-1]), dim=-1).values[:, -1:]
                scores = scores.masked_fill(scores < kth, -float("inf"))
            if sp.top_p < 1.0:  # as transformers' TopPLogitsWarper: drop the tail whose mass is <= 1 - top_p
                sorted_scores, order = torch.sort(scores, descending=False)
                tail = sorted_scores.softmax(-1).cumsum(-1) <= 1 - sp.top_p
                tail[:, -1] = False
                scores = scores.masked_fill(tail.scatter(1, order, tail), -float("inf"))
            logp = torch.log_softmax(scores, dim=-1)
            cdf = logp.exp().cumsum(-1)
            u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.generators]).to(scores.device)
            target = (1 - u).float()[:, None] * cdf[:, -1:]  # in (0, total]: never on a zero-probability token
            chosen = torch.searchsorted(cdf, target).clamp(max=scores.shape[-1] - 1)[:, 0]
        self.steps.append(logp.gather(-1, chosen[:, None])[:, 0])
        out = torch.full_like(scores, -float("inf"))
        return out.scatter(1, chosen[:, None], 0.0)

    def logprobs(self) -> list[list[float]]:
        import torch

        if not self.steps:
            return [[] for _ in self.generators]
        return torch.stack(self.steps, dim=1).tolist()


@scheme("hf", FORM)
def _from_spec(rest: str) -> HFBackend:
    path, options = split_options(rest, OPTIONS, FORM)
    if not path:
        raise UserError(f"hf model spec needs a path or hub id; form: {FORM}")
    return HFBackend(path, **options)
