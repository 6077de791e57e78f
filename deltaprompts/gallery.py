"""A static HTML gallery of a run directory: look at items rather than read JSON. Opens offline."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from deltaprompts.files import check_out_dir
from deltaprompts.report import render_page
from deltaprompts.store import RunStore, atomic_write


def _card(item: dict, rel_root: str) -> dict:
    q = item["question"]
    tags = item["tags"]
    chips = [item["family"], tags.get("question_family", ""), q["answer_type"], f"{tags.get('steps', '?')} steps",
             *tags.get("skills", [])]
    more = [f"{rel_root}/{ref['path']}" for ref in item.get("more_images", [])]
    return {"family": item["family"], "img": f"{rel_root}/{item['image']['path']}", "more": more, "id": item["id"],
            "text": q["text"], "answer": q["answer"], "chips": [str(c) for c in chips if c],
            "program": json.dumps(q["program"], indent=1), "facts": json.dumps(item["facts"], indent=1)}


def gallery_page(run_dir: Path | str, limit: int = 500, rel_root: str = ".",
                 review: dict[str, dict] | None = None) -> str:
    """The gallery page of a run as HTML, image links under `rel_root`. With `review` (the latest
    decision per item id, maybe empty; deltaprompts.review) each card gets accept / reject buttons
    and a note field that post to /review. Raises UserError if `run_dir` is not a run directory."""
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    per_family: dict[str, list[dict]] = defaultdict(list)
    for item in store.iter_items():
        if len(per_family[item.family]) < limit:
            per_family[item.family].append(item.model_dump(mode="json"))
    chosen: list[dict] = []
    while len(chosen) < limit and any(per_family.values()):
        for fam in sorted(per_family):
            if per_family[fam] and len(chosen) < limit:
                chosen.append(per_family[fam].pop(0))
    families = sorted({c["family"] for c in chosen})
    counts = manifest.get("counts")
    counts = counts if isinstance(counts, dict) else {}
    return render_page(
        "gallery.html.j2", name=store.root.name, items=counts.get("items", "?"), images=counts.get("images", "?"),
        seed=manifest.get("seed"), command=manifest.get("command", ""), families=["all", *families],
        cards=[_card(c, rel_root) for c in chosen], review=review)


def write_gallery(run_dir: Path | str, limit: int = 500, out: Path | None = None) -> Path:
    """Write `gallery/index.html` inside the run (images referenced relatively); return its path.

    Takes up to `limit` items, round-robin over families so each family shows. Raises
    UserError if `run_dir` is not a run directory.
    """
    store = RunStore(run_dir)
    store.read_manifest()  # not a run: UserError before any folder is made
    out = out or store.root / "gallery" / "index.html"
    check_out_dir(out.parent, "gallery folder")
    page = gallery_page(store.root, limit, os.path.relpath(store.root, out.parent))
    atomic_write(out, page)
    return out
