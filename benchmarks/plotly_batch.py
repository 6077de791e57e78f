"""Per-figure time of the plotly renderer: cold (browser start + one figure) against batched (warm browser)."""

from __future__ import annotations

import argparse
import time

from deltaprompts.generators import chart_plotly
from deltaprompts.generators.chart_spec import ChartData, ChartStyle, Series
from deltaprompts.records import Spec

CHART_TYPES = ("bar", "hbar", "grouped_bar", "stacked_bar", "line", "pie")


def make_spec(index: int) -> Spec:
    """A small chart Spec of one of the six chart types, varied by `index`."""
    ct = CHART_TYPES[index % len(CHART_TYPES)]
    k = 1 if ct in ("bar", "hbar", "pie") else 3
    cats = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"][: 4 + index % 3]
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c"]
    series = [Series(name=f"S{i + 1}", values=[float(5 + (3 * j + 7 * i + index) % 11) for j in range(len(cats))],
                     color=palette[i]) for i in range(k)]
    data = ChartData(chart_type=ct, topic="bench", title=f"Benchmark chart {index}", x_label="Group",
                     y_label="Amount", unit="units", category_noun="group", series_noun="series",
                     value_noun="amount", categories=cats, series=series,
                     style=ChartStyle(value_labels=index % 2 == 0))
    return Spec(family=f"chart.{ct}", version="1", seed=0, index=index, knobs={"renderer": "plotly"},
                data=data.model_dump())


def main() -> None:
    """Print cold and batched per-figure seconds."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cold", type=int, default=2, help="cold starts to time")
    ap.add_argument("-n", type=int, default=24, help="figures in the batch")
    ap.add_argument("--tabs", type=int, default=chart_plotly.TABS, help="browser tabs rendering in parallel")
    args = ap.parse_args()
    chart_plotly.TABS = args.tabs
    cold = []
    for i in range(args.cold):
        t = time.perf_counter()
        chart_plotly.render_plotly_batch([make_spec(i)])
        chart_plotly.close_plotly()
        cold.append(time.perf_counter() - t)
    specs = [make_spec(i) for i in range(args.n)]
    chart_plotly.render_plotly_batch(specs[:1])  # start the browser outside the timing
    t = time.perf_counter()
    chart_plotly.render_plotly_batch(specs)
    batched = (time.perf_counter() - t) / args.n
    chart_plotly.close_plotly()
    print(f"tabs={args.tabs}  cold: {sum(cold) / len(cold):.2f} s/figure ({', '.join(f'{c:.2f}' for c in cold)})"
          f"  batched: {batched:.3f} s/figure over {args.n}  speed-up x{sum(cold) / len(cold) / batched:.1f}")


if __name__ == "__main__":
    main()
