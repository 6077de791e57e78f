"""Import an external seed set (JSONL, or a Hugging Face dataset on disk) as a run directory.

Each row becomes an Item with no rendered Facts: `facts.kind = "external"`, the answer as the one
field `answer`, and the program `field[name=answer]()`, so the item is checked, scored, mined and
screened like a generated one. A list or set answer may be a JSON list of elements or a string in
any form the verifier reads (`apples, pears`), and is stored `|`-separated like a generated one;
other types take the first of a JSON list. Rows
that cannot be used (unreadable image, empty question or answer, a list element holding `|`, an
answer that does not verify as its own) are counted by reason in the manifest, never dropped
silently. Nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deltaprompts.errors import UserError
from deltaprompts.pipeline.config import ExternalSeed
from deltaprompts.records import Facts, ImageRef, Item, Node, Question, Spec
from deltaprompts.store import RunStore, confined
from deltaprompts.verifiers.rules import PLAIN_NUMBER, answer_value
from deltaprompts.files import text_lines
from deltaprompts.tolerances import summary as tolerance_summary

SHARD = 200
MAX_IMAGE_PIXELS = 50_000_000
"""The largest image (width x height) an import decodes; a larger header is refused before decoding."""
def infer_answer_type(value: Any) -> str:
    """`yes_no` for a bool, `number` for a number or a text that parses as one, else `string`."""
    if isinstance(value, bool):
        return "yes_no"
    if isinstance(value, (int, float)):
        return "number"
    return "number" if PLAIN_NUMBER.fullmatch(str(value).strip()) else "string"


def _source_name(cfg: ExternalSeed) -> str:
    raw = cfg.name or Path(cfg.path).stem or "set"
    return re.sub(r"[^\w.-]+", "_", raw)


def _rows_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    for n, line in text_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:  # also an integer over Python's 4300-digit limit
            raise UserError(f"{path}:{n}: not valid JSON: {str(e).splitlines()[0]}") from None
        except RecursionError:
            raise UserError(f"{path}:{n}: JSON nested too deeply; a row must be a flat JSON object") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: expected a JSON object per line")
        yield row


def _hf_dataset(cfg: ExternalSeed, path: Path) -> Any:
    try:
        import datasets
    except ImportError:
        raise UserError("importing a Hugging Face dataset needs `datasets` (deltaprompts[export])") from None
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # a local path only: never reach the hub
    saved = any((path / f).exists() for f in ("dataset_info.json", "dataset_dict.json", "state.json"))
    try:
        ds = datasets.load_from_disk(str(path)) if saved else datasets.load_dataset(str(path))
    except Exception as e:  # datasets raises many types for an unreadable folder
        raise UserError(f"{path}: cannot be read as a Hugging Face dataset: {type(e).__name__}: {e}") from None
    if isinstance(ds, (datasets.DatasetDict, dict)):
        splits = sorted(ds)
        if cfg.split is None and len(splits) != 1:
            raise UserError(f"{path} has splits {', '.join(splits)}: set seed.external.split to one of them")
        split = cfg.split or splits[0]
        if split not in ds:
            raise UserError(f"seed.external.split = {split!r} is not in {path}; splits: {', '.join(splits)}")
        ds = ds[split]
    col = cfg.image_column
    if col in ds.column_names and isinstance(ds.features.get(col), datasets.Image):
        ds = ds.cast_column(col, datasets.Image(decode=False))  # the original bytes, not a re-encoded image
    return ds


def read_rows(cfg: ExternalSeed) -> tuple[Iterator[dict[str, Any]], list[str], Path]:
    """The rows of the set, its column names and the folder relative image paths start from.
    Raises UserError for a missing path, an unknown format, or missing columns."""
    path = Path(cfg.path)
    if not path.exists():
        raise UserError(f"seed.external.path {path} does not exist")
    fmt = cfg.format
    if fmt == "auto":
        fmt = "jsonl" if path.is_file() and path.suffix in (".jsonl", ".json", ".ndjson") else "hf"
    if fmt == "jsonl":
        if not path.is_file():
            raise UserError(f"seed.external.path {path} is not a JSONL file")
        first = next(_rows_jsonl(path), None)
        if first is None:
            raise UserError(f"{path} has no rows")
        columns, rows, base = list(first), _rows_jsonl(path), path.parent
    else:
        ds = _hf_dataset(cfg, path)
        columns, rows, base = list(ds.column_names), iter(ds), path
    wanted = [cfg.image_column, cfg.question_column, cfg.answer_column, *cfg.tag_columns]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise UserError(f"{path}: no column(s) {', '.join(missing)}; columns: {', '.join(columns)} "
                        "(set seed.external.image_column / question_column / answer_column / tag_columns)")
    return rows, columns, base


def image_bytes(value: Any, base: Path) -> bytes:
    """The encoded image of a cell: a path (relative to `base`), a data URL, bytes, a PIL image or a
    {bytes, path} dict; raises ValueError saying what it got, and UserError for a malformed data URL
    or a path that leads outside `base` (`../`, an absolute path elsewhere, a symlink out)."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        if value.startswith("data:"):
            head, comma, body = value.partition(",")
            if not comma or not head.endswith(";base64"):
                raise UserError(f"data URL {value[:40]!r}... is malformed: expected data:<type>;base64,<data>")
            try:
                return base64.b64decode(body, validate=True)
            except ValueError:
                raise UserError(f"data URL {value[:40]!r}... does not hold valid base64") from None
        p = confined(base, value, "image path")
        if not p.is_file():
            raise ValueError(f"no image file {p}")
        return p.read_bytes()
    if hasattr(value, "save") and hasattr(value, "size"):  # a PIL image
        from deltaprompts.generators.base import png_bytes

        return png_bytes(value.convert("RGB") if value.mode not in ("RGB", "RGBA", "L") else value)
    raise ValueError(f"an image must be a path, data URL, bytes or PIL image, got {type(value).__name__}")


def _stored(data: bytes) -> tuple[bytes, str, int, int]:
    """Bytes to store, extension and size; PNG and JPEG are kept as they are, the rest become PNG."""
    from PIL import Image

    from deltaprompts.generators.base import png_bytes

    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise UserError(f"image is larger than {MAX_IMAGE_PIXELS:,} pixels, the most an import decodes") from None
    with im:
        fmt, (w, h) = im.format, im.size
        if w * h > MAX_IMAGE_PIXELS:  # refused from the header, before decoding
            raise UserError(f"image is {w}x{h} pixels; at most {MAX_IMAGE_PIXELS:,} pixels are allowed")
        im.load()
        if fmt in ("PNG", "JPEG"):
            return data, "png" if fmt == "PNG" else "jpg", w, h
        return png_bytes(im.convert("RGB")), "png", w, h


def make_item(row: dict[str, Any], index: int, cfg: ExternalSeed, name: str,
              base: Path) -> tuple[Item | None, str, bytes]:
    """One row as an Item (and its image bytes), or (None, rejection reason, b"")."""
    from deltaprompts.verifiers.checks import check_item

    question = str(row.get(cfg.question_column) or "").strip()
    raw = row.get(cfg.answer_column)
    if isinstance(raw, (list, tuple)):
        # a list or set answer keeps its elements; any other type takes the first of a cell's
        # accepted answers
        raw = [v for v in raw if v is not None and str(v).strip()]
        if cfg.answer_type not in ("list", "set"):
            raw = raw[0] if raw else None
    if not question:
        return None, "empty_question", b""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)) or not str(raw).strip() or raw == []:
        return None, "empty_answer", b""
    where = f"{cfg.path}: row {index + 1}"
    if any(isinstance(v, (dict, list, tuple)) for v in (raw if isinstance(raw, list) else [raw])):
        raise UserError(f"{where}: answer {str(raw)[:60]!r} is an object or holds one; "
                        "an answer must be a string, number, bool, or a list of those")
    try:
        data, ext, w, h = _stored(image_bytes(row.get(cfg.image_column), base))
    except UserError as e:
        raise UserError(f"{where}: {e}") from None
    except (ValueError, OSError):
        return None, "unreadable_image", b""
    answer_type = infer_answer_type(raw) if cfg.answer_type == "infer" else cfg.answer_type
    try:
        answer, value = answer_value(raw, answer_type)
    except ValueError:
        return None, "separator_in_element", b""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where}: answer {answer[:20]!r}... ({len(answer)} characters) is not a finite number; "
                        "a number answer must be finite (below 1.8e308)")
    sha = hashlib.sha256(data).hexdigest()
    tags = {str(c): row[c] for c in cfg.tag_columns if isinstance(row.get(c), (str, int, float, bool))}
    family = f"external.{name}"
    spec = Spec(family=family, version="1", seed=0, index=index, knobs=tags,
                data={"source": name, "row": index, "image_sha256": sha})
    q = Question(text=question, program=Node(op="field", params={"name": "answer"}), answer=answer,
                 answer_type=answer_type, value=value, question_family=family, template=None, source="external",
                 tolerance_source="unknown")  # no render to justify a tolerance: the verifiers' default
    facts = Facts(domain=cfg.domain, kind="external", width=w, height=h, fields={"answer": value})
    item = Item(id=Item.make_id(spec, q), family=family, family_version="1", spec=spec,
                image=ImageRef(path=f"images/{family}/{sha[:20]}.{ext}", sha256=sha, width=w, height=h), facts=facts,
                question=q, tags={"domain": cfg.domain, "knobs": tags, "question_family": family, "skills": [],
                                  "steps": 1, "answer_type": answer_type, "round": 0, "stage": "seed"},
                provenance={"stage": "import", "source": str(cfg.path), "row": index})
    reasons = check_item(item)
    if reasons:
        return None, f"check:{reasons[0]}", b""
    return item, "", data


def import_external(cfg: ExternalSeed, out: Path | str) -> dict[str, Any]:
    """Write the external set as the run at `out` (resuming a partial import; a complete one is
    left as it is) and return its manifest. Raises UserError for a missing file, format or column."""
    from deltaprompts.pipeline.cells import is_complete, start_run

    out = Path(out)
    store = RunStore(out)
    if is_complete(out):
        return store.read_manifest()
    rows, columns, base = read_rows(cfg)
    name = _source_name(cfg)
    start_run(out, {"command": "deltaprompts seed (import)", "seed": 0,
                    "config": {"stage": "seed", "external": json.loads(cfg.model_dump_json()), "columns": columns}})
    t0 = time.perf_counter()
    def content(it: Item) -> tuple[str, str, str]:  # a row repeated in the set is the same image, question, answer
        return it.image.sha256, it.question.text, it.question.answer

    seen = {content(it) for it in store.iter_items()}  # items of shards written before a kill
    batch: list[tuple[Item, bytes]] = []
    rejections: Counter = Counter()

    def flush(k: int) -> None:
        if not store.shard_done(k):
            for item, data in batch:
                store.write_image(item.image.path, data)
            store.write_items(k, [it for it, _ in batch], rejections)
        batch.clear()
        rejections.clear()

    k = n = 0
    for index, row in enumerate(rows):
        if cfg.limit is not None and index >= cfg.limit:
            break
        n = index + 1
        if index // SHARD != k:
            flush(k)
            k = index // SHARD
        if store.shard_done(k):  # written before a kill: skip its rows without decoding images
            continue
        item, reason, data = make_item(row, index, cfg, name, base)
        if item is None:
            rejections[reason] += 1
        elif content(item) in seen:
            rejections["duplicate_row"] += 1
        else:
            seen.add(content(item))
            batch.append((item, data))
    flush(k)
    k = max(1, math.ceil(n / SHARD))
    manifest = store.finish(store.read_manifest(), k)
    manifest["import_seconds"] = round(time.perf_counter() - t0, 2)
    manifest["tolerances"] = tolerance_summary(it.question for it in store.iter_items())
    store.write_manifest(manifest)
    return manifest
