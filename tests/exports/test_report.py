"""The HTML report and gallery: every section on scored and unscored runs, images that resolve, run fields
escaped, a clean headless Chromium render."""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from deltaprompts.errors import UserError
from deltaprompts.gallery import write_gallery
from deltaprompts.report import NOT_SCORED, rejections, write_report
from deltaprompts.split import SplitConfig, split_run
from deltaprompts.store import RunStore

PLOTS = {"delta_hist.png", "zero_delta_family.png", "zero_delta_question_family.png", "accuracy_family.png",
         "yield_rounds.png", "rejections.png"}
ROUNDS = [{"round": 1, "generated": 40, "screened": 38, "kept": 9},
          {"round": 2, "generated": 40, "screened": 40, "kept": 14}]


class Page(HTMLParser):
    """The <img> sources, the tags, every attribute value and the text of an HTML page."""

    def __init__(self, text):
        super().__init__()
        self.images, self.text, self.tags, self.attrs = [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [v for _, v in attrs if v]
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def copy(run, tmp_path, name):
    out = tmp_path / name
    shutil.copytree(run, out)
    return out


def test_unscored_run_gets_every_section_saying_not_scored(generated_run, tmp_path):
    run = copy(generated_run, tmp_path, "plain")
    path = write_report(run)
    page = Page(path.read_text())
    assert path == run / "report" / "index.html"
    assert path.read_text().count(NOT_SCORED) == 4  # Δ histogram, zero-Δ by family and question family, accuracy
    assert {p.name for p in (run / "report" / "plots").glob("*.png")} <= {"rejections.png"}
    cards = [src for src in page.images if "/images/" in src]
    assert len(cards) == 12 and all((path.parent / src).is_file() for src in page.images)
    assert "No rounds.json" in "".join(page.text)


def test_scored_run_gets_every_plot_and_a_gallery_sorted_by_delta(scored_run, tmp_path):
    run = copy(scored_run, tmp_path, "scored")
    (run / "rounds.json").write_text(json.dumps(ROUNDS))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["screen"] = {"min_delta": 0.1, "min_teacher_acc": 0.5, "dropped": {"zero_delta": 3, "low_delta": 2}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    split = split_run(run, SplitConfig(eval_fraction=0.5))
    path = write_report(run, gallery_limit=10)
    html = path.read_text()
    page = Page(html)
    assert {p.name for p in (run / "report" / "plots").glob("*.png")} == PLOTS
    assert NOT_SCORED not in html and "No rounds.json" not in html
    assert all((path.parent / src).is_file() for src in page.images)
    assert len([s for s in page.images if "/images/" in s]) == 10 and "Kept items by Δ" in html
    assert f"split: train {len(split.train)}, eval {len(split.eval)}" in html
    shown = [float(v) for v in re.findall(r"Δ = ([0-9.]+) \(tv, debiased\)", html)]
    assert len(shown) == 10 and shown == sorted(shown, reverse=True)
    assert rejections(manifest)["screen: zero_delta"] == 3 and rejections(manifest)["screen: low_delta"] == 2
    for png in (run / "report" / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"round": 1}), "must be a list"),
    (json.dumps([{"round": 1, "kept": "many"}]), "kept must be whole numbers"),
])
def test_a_malformed_rounds_file_is_named(generated_run, tmp_path, content, message):
    run = copy(generated_run, tmp_path, "bad")
    (run / "rounds.json").write_text(content)
    with pytest.raises(UserError, match=message):
        write_report(run)


HOSTILE = "<script>alert(1)</script>\"'&<>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;&lt;&gt;"
SERIALIZED = "&lt;script&gt;alert(1)&lt;/script&gt;\"'&amp;&lt;&gt;"  # as a browser writes the text back out


def hostile_run(scored_run, tmp_path, name="hostile"):
    """A copy of the scored run whose question, answer, family, tags, knob, model samples, model names and
    command all hold HOSTILE (the first item's only, for per-item fields)."""
    run = copy(scored_run, tmp_path, name)
    shard = min((run / "items").glob("shard-*.jsonl"))
    lines = shard.read_text().splitlines()
    item = json.loads(lines[0])
    item["question"].update(text=f"Q {HOSTILE}", answer=f"A {HOSTILE}", question_family=f"qf {HOSTILE}")
    item["family"] = f"fam {HOSTILE}"
    item["tags"].update(question_family=f"tag {HOSTILE}", skills=[f"skill {HOSTILE}"])
    item["spec"]["knobs"][f"knob {HOSTILE}"] = f"value {HOSTILE}"
    lines[0] = json.dumps(item)
    shard.write_text("\n".join(lines) + "\n")
    scores = run / "scores" / "deltas.jsonl"
    deltas = [json.loads(line) for line in scores.read_text().splitlines()]
    for d in deltas:
        if d["item"] == item["id"]:
            d.update(family=item["family"], question_family=item["question"]["question_family"],
                     student={f"sample {HOSTILE}": sum(d["student"].values())})
    scores.write_text("".join(json.dumps(d) + "\n" for d in deltas))
    meta = json.loads((run / "scores" / "meta.json").read_text())
    meta.update(teacher=f"teacher {HOSTILE}", student=f"student {HOSTILE}")
    (run / "scores" / "meta.json").write_text(json.dumps(meta))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["command"] = f"cmd {HOSTILE}"
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


@pytest.mark.parametrize("write, shown, scripts", [
    (write_report, ("Q", "A", "fam", "qf", "sample", "teacher", "student", "cmd"), 0),
    (write_gallery, ("Q", "A", "fam", "tag", "skill", "cmd"), 1),
], ids=["report", "gallery"])
def test_every_run_field_is_escaped(scored_run, tmp_path, write, shown, scripts):
    html = write(hostile_run(scored_run, tmp_path)).read_text()
    page = Page(html)
    for what in shown:
        assert f"{what} {ESCAPED}" in html, what
        assert f"{what} {HOSTILE}" in "".join(page.text) + "".join(page.attrs), what
    assert "<script>alert" not in html and HOSTILE[-5:] not in html
    assert page.tags.count("script") == scripts == html.count("<script")


def _chromium():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def render_in_chromium(page: Path, tmp_path: Path) -> tuple[str, str]:
    """Load a copy of `page` (same folder, so relative links hold) with a script that writes
    '<loaded images>/<images> scripts:<script elements>' into the title; return (dumped DOM, browser log)."""
    probe = page.with_name("probe.html")
    script = ("<script>window.addEventListener('load',()=>{const im=[...document.images];"
              "document.title='imgs:'+im.filter(i=>i.complete&&i.naturalWidth>0).length+'/'+im.length"
              "+' scripts:'+document.scripts.length;});</script>")
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    args = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chrome'}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=10000", "--window-size=1600,20000", "--dump-dom", probe.as_uri()]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    probe.unlink()
    return done.stdout, done.stderr


@pytest.mark.skipif(_chromium() is None, reason="no chromium / chromium-browser / google-chrome on PATH")
@pytest.mark.parametrize("which", ["generated_run", "scored_run"])
def test_report_renders_offline_in_headless_chromium(which, request, tmp_path):
    run = copy(request.getfixturevalue(which), tmp_path, "r")
    (run / "rounds.json").write_text(json.dumps(ROUNDS))
    page = write_report(run)
    dom, log = render_in_chromium(page, tmp_path)
    title = re.search(r"<title>imgs:(\d+)/(\d+) scripts:1</title>", dom)
    assert title, dom[:500]
    loaded, total = map(int, title.groups())
    expected = len(list(RunStore(run).iter_items())) + len(list((run / "report" / "plots").glob("*.png")))
    assert loaded == total == expected
    assert not [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.skipif(_chromium() is None, reason="no chromium / chromium-browser / google-chrome on PATH")
def test_gallery_renders_offline_in_headless_chromium(generated_run, tmp_path):
    run = copy(generated_run, tmp_path, "g")
    page = write_gallery(run)
    dom, log = render_in_chromium(page, tmp_path)
    title = re.search(r"<title>imgs:(\d+)/(\d+) scripts:2</title>", dom)  # the gallery's filter script and the probe
    assert title, dom[:500]
    loaded, total = map(int, title.groups())
    assert loaded == total == len(list(RunStore(run).iter_items()))
    assert dom.count('class="card"') == total and "<button" in dom
    assert not [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.skipif(_chromium() is None, reason="no chromium / chromium-browser / google-chrome on PATH")
@pytest.mark.parametrize("write, scripts", [(write_report, 1), (write_gallery, 2)], ids=["report", "gallery"])
def test_a_hostile_run_renders_as_text_in_headless_chromium(scored_run, tmp_path, write, scripts):
    page = write(hostile_run(scored_run, tmp_path))
    dom, log = render_in_chromium(page, tmp_path)
    assert re.search(rf"<title>imgs:(\d+)/\1 scripts:{scripts}</title>", dom), dom[:500]
    assert f"Q {SERIALIZED}" in dom
    assert not [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line or "alert" in line]
