"""A static HTML gallery of a run directory: look at items rather than read JSON. Opens offline."""

from __future__ import annotations

import html
import json
import os
from collections import defaultdict
from pathlib import Path

from deltaprompts.store import RunStore, atomic_write

_CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{padding:16px 24px;background:#1d2330;color:#fff}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#b8c0d0;font-size:13px}
nav{padding:8px 24px;font-size:13px}nav button{margin:2px;border:1px solid #c5cad5;background:#fff;border-radius:12px;padding:3px 10px;cursor:pointer}
nav button.on{background:#1d2330;color:#fff}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:16px;padding:8px 24px 24px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;overflow:hidden;display:flex;flex-direction:column}
.card img{width:100%;background:#eee;display:block;cursor:zoom-in}.body{padding:10px 12px;font-size:14px}
.q{font-weight:600;margin-bottom:6px}.a{color:#0a6b2d;margin-bottom:6px}.tags span{display:inline-block;background:#eef0f4;border-radius:4px;padding:1px 6px;margin:2px 2px 0 0;font-size:11px}
details{font-size:12px;margin-top:6px}pre{white-space:pre-wrap;word-break:break-all;max-height:320px;overflow:auto;background:#f7f7f9;padding:6px}
"""
_JS = """
function pick(f){document.querySelectorAll('nav button').forEach(b=>b.classList.toggle('on',b.dataset.f===f));
document.querySelectorAll('.card').forEach(c=>c.style.display=(f==='all'||c.dataset.family===f)?'':'none');}
"""


def _card(item: dict, rel_root: str) -> str:
    q = item["question"]
    tags = item["tags"]
    chips = [item["family"], tags.get("question_family", ""), q["answer_type"], f"{tags.get('steps', '?')} steps",
             *tags.get("skills", [])]
    facts = html.escape(json.dumps(item["facts"], indent=1))
    program = html.escape(json.dumps(q["program"], indent=1))
    img = html.escape(f"{rel_root}/{item['image']['path']}")
    return (f'<div class="card" data-family="{html.escape(item["family"])}">'
            f'<a href="{img}" target="_blank"><img loading="lazy" src="{img}" alt="item {item["id"]}"></a>'
            f'<div class="body"><div class="q">{html.escape(q["text"])}</div>'
            f'<div class="a">Answer: {html.escape(q["answer"])}</div>'
            f'<div class="tags">{"".join(f"<span>{html.escape(str(c))}</span>" for c in chips if c)}</div>'
            f'<details><summary>program</summary><pre>{program}</pre></details>'
            f'<details><summary>Facts</summary><pre>{facts}</pre></details>'
            f'<div style="font-size:11px;color:#888;margin-top:4px">id {item["id"]}</div></div></div>')


def write_gallery(run_dir: Path | str, limit: int = 500, out: Path | None = None) -> Path:
    """Write `gallery/index.html` inside the run (images referenced relatively); return its path.

    Takes up to `limit` items, round-robin over families so each family shows. Raises
    UserError if `run_dir` is not a run directory.
    """
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
    out = out or store.root / "gallery" / "index.html"
    rel_root = os.path.relpath(store.root, out.parent)
    families = sorted({c["family"] for c in chosen})
    buttons = "".join(f'<button data-f="{html.escape(f)}" onclick="pick(this.dataset.f)">{html.escape(f)}</button>'
                      for f in ["all", *families])
    counts = manifest.get("counts", {})
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>deltaprompts run</title><style>{_CSS}</style>"
            f"<script>{_JS}</script></head><body><header><h1>deltaprompts run: {html.escape(str(store.root.name))}</h1>"
            f"<p>{counts.get('items', '?')} items, {counts.get('images', '?')} images, seed {manifest.get('seed')}; "
            f"showing {len(chosen)}.</p><details><summary style='font-size:13px;color:#b8c0d0'>command</summary>"
            f"<pre style='color:#dfe3ea;background:none'>{html.escape(manifest.get('command', ''))}</pre></details></header>"
            f"<nav>{buttons}</nav><main>{''.join(_card(c, rel_root) for c in chosen)}</main></body></html>")
    atomic_write(out, page)
    return out
