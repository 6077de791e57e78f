"""Page documents: a scientific-paper page (two columns, a captioned table) and a multi-page report whose
pages hold prose, a table carried over a page break and a chart drawn by the chart families."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pymupdf

from deltaprompts.errors import RenderError
from deltaprompts.generators.base import FAMILIES, choice, register
from deltaprompts.generators.doc_layout import Drawing
from deltaprompts.generators.locales import format_date
from deltaprompts.generators.records_base import RecordDocument, record_knobs, short
from deltaprompts.records import Entity, Spec, TextSpan

_FIELDS = {
    "language": (("sentiment classification", "natural language inference", "question answering",
                  "paraphrase detection"),
                 ("SST-2", "MNLI", "QNLI", "QQP", "RTE", "CoLA", "MRPC", "BoolQ"),
                 ("BERT-base", "RoBERTa-base", "DistilBERT", "ELECTRA-small", "XLNet-base", "ALBERT-base",
                  "DeBERTa-v3", "T5-small"), "Accuracy"),
    "vision": (("image classification", "few-shot recognition", "domain adaptation", "fine-grained recognition"),
               ("CIFAR-10", "CIFAR-100", "SVHN", "STL-10", "Caltech-101", "Flowers-102", "Food-101"),
               ("ResNet-50", "ViT-B/16", "EfficientNet-B0", "MobileNetV3", "ConvNeXt-T", "DenseNet-121", "Swin-T"),
               "Top-1 accuracy"),
    "speech": (("keyword spotting", "speaker identification", "emotion recognition"),
               ("SpeechCmds", "VoxCeleb1", "IEMOCAP", "ESC-50", "FluentSC", "CREMA-D"),
               ("wav2vec 2.0", "HuBERT", "CNN-LSTM", "TDNN", "Conformer", "WavLM"), "Accuracy"),
}
_ADJ = ("Sparse", "Adaptive", "Contrastive", "Hierarchical", "Robust", "Efficient", "Latent", "Modular", "Gated")
_NOUN = ("Attention", "Adapters", "Distillation", "Augmentation", "Pretraining", "Routing", "Prompting")
_SUFFIX = ("Former", "Mix", "Net", "Adapt", "Distill", "Route")
_SENTENCES = (
    "Recent work on {task} has relied on ever larger models trained on curated data.",
    "We propose {ours}, a simple method that improves {task} without extra labels.",
    "{ours} combines a lightweight encoder with a learned routing of features.",
    "Compared with {base}, our approach needs fewer parameters and less compute.",
    "We evaluate on {n} public benchmarks and report {metric} on the test split.",
    "Prior methods such as {base} and {base2} treat every input in the same way.",
    "Our ablations show that each component contributes to the final result.",
    "All models are trained for the same number of steps with identical data.",
    "The training objective adds a consistency term to the usual cross-entropy loss.",
    "Hyperparameters were tuned on a held-out validation set for each benchmark.",
    "Results on {ds} suggest that the gains are largest when labelled data is scarce.",
    "We release code and trained models to support further research on {task}.",
    "Table 1 compares {ours} with strong baselines under the same protocol.",
    "Each number is the mean over three runs with different random seeds.",
    "The remaining gap to human performance leaves room for future work.",
    "Related approaches differ mainly in how they share information across layers.",
    "We keep the backbone frozen and train only the new layers.",
    "Training takes about a day on a single accelerator.",
    "The batch size and learning rate follow the settings of {base}.",
    "On {ds}, most errors come from inputs that are rare in the training data.",
    "A small validation split is enough to choose the one extra hyperparameter.",
    "Removing the routing step costs most of the gain on every benchmark.",
    "We also tried a larger encoder, with little further improvement.",
    "Our implementation builds on public code and adds fewer than 500 lines.",
    "Qualitative examples show that {ours} attends to the informative parts of the input.",
    "Early stopping uses the validation loss with a patience of five epochs.",
    "The method adds about three percent to the inference time of {base}.",
    "Work on {task} has mostly reported {metric} on a handful of benchmarks.",
    "We leave the study of larger training sets to future work.",
    "Scores of the baselines are taken from our own runs, not from the original papers.",
    "The same preprocessing is applied to every method.",
    "Section 4 describes the benchmarks and the evaluation protocol.",
    "Limitations include the focus on {metric} and on public benchmarks.",
    "We thank the reviewers for their helpful comments.",
)
_REPORT_SENTENCES = (
    "Demand was {trend} than planned in most regions, and {best} led the year.",
    "Margins held up despite higher transport costs in the second half.",
    "Two new distribution centres opened during the year.",
    "The regions are listed in the order of the sales organisation.",
    "Headcount grew moderately while spend stayed within budget.",
)
_REGIONS = ("North", "South", "East", "West", "Central", "Coastal", "Highlands", "Metro", "Valley", "Lakes",
            "Northeast", "Northwest", "Southeast", "Southwest", "Islands", "Border", "Midlands", "Capital",
            "Riverside", "Plains", "Harbour", "Uplands")
_DEPARTMENTS = ("Sales", "Marketing", "Operations", "Finance", "IT", "Human resources", "Logistics",
                "Customer service", "Research", "Legal", "Procurement", "Facilities")
_METRICS = (("Headcount", 4, 180), ("Budget", 120, 2400), ("Spend", 100, 2600), ("Projects", 2, 40),
            ("Open roles", 0, 25), ("Training hours", 40, 900))


def _prose(rng: np.random.Generator, n: int, words: dict[str, Any]) -> str:
    picks = rng.choice(len(_SENTENCES), size=n, replace=False)
    return " ".join(_SENTENCES[int(i)].format(**words) for i in picks)


def _distinct_scores(rng: np.random.Generator, n: int, lo: float, hi: float) -> list[float]:
    """n scores with one decimal, no two equal (so a best method is always unique)."""
    out: list[float] = []
    while len(out) < n:
        v = round(float(rng.uniform(lo, hi)), 1)
        if v not in out:
            out.append(v)
    return out


@register
class Paper(RecordDocument):
    """A page of a scientific paper: title, authors, abstract, two columns of sections, Table 1 with caption."""

    name = "document.paper"
    kind = "paper"
    version = "1"
    description = "Scientific-paper page: two columns of prose, section headings and a captioned results table."
    knobs = record_knobs("paper", 110)

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self.common(rng, knobs)
        field = str(choice(rng, sorted(_FIELDS)))
        tasks, datasets, baselines, metric = _FIELDS[field]
        task = str(choice(rng, tasks))
        adj = str(choice(rng, _ADJ))
        ours = f"{adj}{choice(rng, _SUFFIX)}"
        n_ds, n_base = int(rng.integers(3, 5)), int(rng.integers(3, 6))
        ds = [str(x) for x in rng.choice(datasets, size=n_ds, replace=False)]
        methods = [str(x) for x in rng.choice(baselines, size=n_base, replace=False)] + [f"{ours} (ours)"]
        cols = [_distinct_scores(rng, len(methods), lo, lo + float(rng.uniform(6, 18)))
                for lo in (float(rng.uniform(55, 85)) for _ in ds)]
        for c in cols:  # the proposed method is usually, not always, the best
            if rng.random() < 0.7:
                c[-1] = round(max(c) + float(rng.integers(1, 25)) / 10, 1)
        rows = [{"id": f"m{i}", "method": m,
                 "scores": [cols[j][i] for j in range(n_ds)]} for i, m in enumerate(methods)]
        words = {"task": task, "ours": ours, "base": methods[0], "base2": methods[1], "n": n_ds,
                 "metric": metric.lower(), "ds": ds[0]}
        body = []
        for head, n in (("1 Introduction", 5), ("2 Related Work", 4), ("3 Method", 5), ("4 Experiments", 5),
                        ("5 Conclusion", 3)):
            body += [{"heading": head}, {"text": _prose(rng, n, words)}, {"text": _prose(rng, n - 1, words)}]
        data.update({
            "title": f"{adj} {choice(rng, _NOUN)} for {task.title()}",
            "authors": [short(fake.name(), 30) for _ in range(int(rng.integers(2, 5)))],
            "affiliation": short(f"{fake.company()}, {fake.city()}", 70),
            "abstract": _prose(rng, 5, words), "body": body, "metric": metric, "datasets": ds, "rows": rows,
            "caption": f"Table 1: {metric} (%) of each method on {n_ds} benchmarks. Higher is better.",
            "doc_noun": "paper"})
        return data

    def entities(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": f"{r['id']}.d{j}", "page": 0, "roles": [f"cell:{r['id']}:d{j}"],
                 "printed": {"value": f"cell:{r['id']}:d{j}"},
                 "attrs": {"method": r["method"], "dataset": d, "value": r["scores"][j]}}
                for r in data["rows"] for j, d in enumerate(data["datasets"])]

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"title": data["title"], "caption": data["caption"]}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "metric": data["metric"].lower(), "doc": "paper"}


#: Where each built-in report layout puts its figure (points: x, y, width, height); others get the default.
FIGURE_BOX = {"report_corporate": (72, 330, 468, 351), "report_minimal": (90, 360, 415, 311)}
_DEFAULT_FIGURE = (72, 340, 468, 351)


def figure_place(figure: list[float], width: int, height: int) -> tuple[float, float, float]:
    """Where a `width` x `height` px chart goes in the figure box (x, y, w, h in points): its top-left
    corner and the points per chart pixel (scaled to fit, centred across the box, at its top)."""
    x, y, w, h = figure
    k = min(w / width, h / height)
    return x + (w - width * k) / 2, y, k


@register
class Report(RecordDocument):
    """A three-page report: summary and a regional table on page 1, the table continued (brought forward)
    and a bar chart on page 2, an appendix table on page 3."""

    name = "document.report"
    kind = "report"
    version = "1"
    description = "Three-page report: prose, a table carried over a page break, a chart and an appendix table."
    knobs = record_knobs("report", 90)

    def n_pages(self, data: dict[str, Any]) -> int:
        return 3

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self.common(rng, knobs)
        year = int(rng.integers(2016, 2026))
        n, n2 = int(rng.integers(12, 17)), int(rng.integers(4, 7))
        regions = [str(x) for x in rng.choice(_REGIONS, size=n, replace=False)]
        rows = [{"id": f"r{i}", "region": r, "values": [int(rng.integers(120, 990)) for _ in range(4)],
                 "page": 0 if i < n - n2 else 1} for i, r in enumerate(regions)]
        carried = [sum(r["values"][k] for r in rows if r["page"] == 0) for k in range(4)]
        depts = [str(x) for x in rng.choice(_DEPARTMENTS, size=int(rng.integers(5, 9)), replace=False)]
        mets = [_METRICS[int(i)] for i in sorted(rng.choice(len(_METRICS), size=3, replace=False))]
        detail = [{"id": f"d{i}", "item": d, "values": [int(rng.integers(lo, hi + 1)) for _, lo, hi in mets]}
                  for i, d in enumerate(depts)]
        bar = FAMILIES.get("chart.bar")()
        ck = bar.resolve_knobs({"value_labels": "on", "size": "medium", "n_categories": int(rng.integers(4, 8)),
                                "style": str(choice(rng, ("plain", "minimal", "gray")))})
        chart = {"knobs": ck, "data": bar.sample_data(rng, ck), "version": bar.version}
        data.update({"company": short(fake.company(), 44), "year": year,
                     "title": f"{choice(rng, ('Annual Sales Report', 'Regional Performance Review', 'Sales Review'))} {year}",
                     "date": format_date(dt.date(year + 1, int(rng.integers(1, 4)), int(rng.integers(1, 29))),
                                         data["locale"], "long"),
                     "summary": [f"This report reviews sales across {n} regions in {year}. " + " ".join(
                         _REPORT_SENTENCES[int(i)] for i in rng.choice(len(_REPORT_SENTENCES), size=2, replace=False)
                     ).format(trend=choice(rng, ("stronger", "weaker")), best=max(rows, key=lambda r: sum(r["values"]))["region"]),
                                 "Figures are in thousands. The regional table continues on the next page, where the "
                                 "subtotal of this page is brought forward."],
                     "quarters": ["Q1", "Q2", "Q3", "Q4"], "rows": rows, "carried": carried, "metrics": [m[0] for m in mets],
                     "detail": detail, "chart": chart, "figure": list(FIGURE_BOX.get(data["layout"], _DEFAULT_FIGURE)),
                     "doc_noun": "report"})
        return data

    def entities(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        out = [{"id": f"{r['id']}.q{k}", "page": r["page"], "roles": [f"cell:{r['id']}:q{k}"],
                "printed": {"value": f"cell:{r['id']}:q{k}"},
                "attrs": {"table": "sales", "region": r["region"], "quarter": q, "value": r["values"][k]}}
               for r in data["rows"] for k, q in enumerate(data["quarters"])]
        out += [{"id": f"{d['id']}.m{k}", "page": 2, "roles": [f"cell:{d['id']}:m{k}"],
                 "printed": {"value": f"cell:{d['id']}:m{k}"},
                 "attrs": {"table": "detail", "item": d["item"], "metric": m, "value": d["values"][k]}}
                for d in data["detail"] for k, m in enumerate(data["metrics"])]
        return out

    def overlay(self, data: dict[str, Any], page: int, pdf_page: Any, drawing: Drawing,
                scale: float) -> tuple[list[Entity], list[TextSpan], dict[str, Any]]:
        """On page 2, draw the bar chart into the figure box and map its Facts into page pixels."""
        if page != 1:
            return [], [], {}
        c = data["chart"]
        r = FAMILIES.get("chart.bar")().render(Spec(family="chart.bar", version=c["version"], seed=0, index=0,
                                                     knobs=c["knobs"], data=c["data"]))
        x0, y0, k = figure_place(data["figure"], r.facts.width, r.facts.height)
        pdf_page.insert_image(pymupdf.Rect(x0, y0, x0 + r.facts.width * k, y0 + r.facts.height * k), stream=r.png)

        def px(b: tuple[float, ...] | None) -> tuple[float, float, float, float]:
            if b is None:
                raise RenderError("report: a chart entity has no box")
            return (round((x0 + b[0] * k) * scale, 2), round((y0 + b[1] * k) * scale, 2),
                    round((x0 + b[2] * k) * scale, 2), round((y0 + b[3] * k) * scale, 2))

        ents = [Entity(id=f"chart.{e.id}", box=px(e.box), attrs={**e.attrs, "table": "chart"}, image=page)
                for e in r.facts.entities]
        texts = [TextSpan(text=t.text, box=px(t.box), role=f"chart:{t.role}", image=page) for t in r.facts.texts]
        printed = {f"chart.{eid}": v for eid, v in (r.facts.extra.get("printed") or {}).items()}
        return ents, texts, {"printed": printed, "chart_title": r.facts.fields.get("title")}

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"title": data["title"], "company": data["company"]}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "company": data["company"], "year": data["year"], "doc": "report",
                "chart_title": data["chart"]["data"].get("title", "")}
