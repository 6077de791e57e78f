"""A static HTML gallery of a run directory: look at items rather than read JSON. Opens offline."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from jinja2.sandbox import SandboxedEnvironment

from deltaprompts.files import check_out_dir
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


_PAGE = """<!doctype html><html><head><meta charset='utf-8'><title>deltaprompts run</title><style>{{ css|safe }}</style>
<script>{{ js|safe }}</script></head><body><header><h1>deltaprompts run: {{ name }}</h1>
<p>{{ counts.get('items', '?') }} items, {{ counts.get('images', '?') }} images, seed {{ seed }}; showing {{ cards|length }}.</p>
<details><summary style='font-size:13px;color:#b8c0d0'>command</summary><pre style='color:#dfe3ea;background:none'>{{ command }}</pre></details></header>
<nav>{% for f in families %}<button data-f="{{ f }}" onclick="pick(this.dataset.f)">{{ f }}</button>{% endfor %}</nav>
<main>{% for c in cards %}<div class="card" data-family="{{ c.family }}"><a href="{{ c.img }}" target="_blank"><img loading="lazy" src="{{ c.img }}" alt="item {{ c.id }}"></a>
<div class="body"><div class="q">{{ c.text }}</div><div class="a">Answer: {{ c.answer }}</div>
<div class="tags">{% for chip in c.chips %}<span>{{ chip }}</span>{% endfor %}</div>
<details><summary>program</summary><pre>{{ c.program }}</pre></details>
<details><summary>Facts</summary><pre>{{ c.facts }}</pre></details>
<div style="font-size:11px;color:#888;margin-top:4px">id {{ c.id }}</div></div></div>
{% endfor %}</main></body></html>
"""
"""The page; every value is autoescaped (a run's items and manifest are data, never markup)."""


def _card(item: dict, rel_root: str) -> dict:
    q = item["question"]
    tags = item["tags"]
    chips = [item["family"], tags.get("question_family", ""), q["answer_type"], f"{tags.get('steps', '?')} steps",
             *tags.get("skills", [])]
    return {"family": item["family"], "img": f"{rel_root}/{item['image']['path']}", "id": item["id"],
            "text": q["text"], "answer": q["answer"], "chips": [str(c) for c in chips if c],
            "program": json.dumps(q["program"], indent=1), "facts": json.dumps(item["facts"], indent=1)}


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
    check_out_dir(out.parent, "gallery folder")
    rel_root = os.path.relpath(store.root, out.parent)
    families = sorted({c["family"] for c in chosen})
    counts = manifest.get("counts")
    env = SandboxedEnvironment(autoescape=True)
    page = env.from_string(_PAGE).render(
        css=_CSS, js=_JS, name=store.root.name, counts=counts if isinstance(counts, dict) else {}, seed=manifest.get("seed"),
        command=manifest.get("command", ""), families=["all", *families], cards=[_card(c, rel_root) for c in chosen])
    atomic_write(out, page)
    return out
