"""Charts of the user's own table (`generate --data FILE`): a CSV, JSON or parquet file read once
per process, its shape inferred, and chart Specs whose values are the table's own.

The table needs one label column (text: the categories; a time column when its header or its
values say so: dates, months, quarters, years) and at least one numeric column. A header such as
"Glucose (mg/dL)" gives the noun "glucose" and the unit "mg/dL". Each Spec holds a window of the
table's rows and columns as a ChartData, so rendering and questions need no file, and every
answer is computed from the table's values (rounded to the decimals they are written with).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from deltaprompts.errors import UserError
from deltaprompts.files import read_text
from deltaprompts.generators.base import choice
from deltaprompts.generators.chart_kind import ChartKind, kind_of
from deltaprompts.generators.chart_sampling import PALETTES, _style, plural
from deltaprompts.generators.chart_spec import ChartData, Series
from deltaprompts.records import Spec
from deltaprompts.rng import item_rng

FORMATS = (".csv", ".json", ".parquet")
MAX_DECIMALS = 3
# The kinds a table can be drawn as; pie and stacked bars only when asked for by name (--family
# chart.pie), since only the user knows whether values are parts of one whole that add up.
DATA_KINDS = ("bar", "hbar", "grouped_bar", "stacked_bar", "line", "scatter", "pie")
EXPLICIT_ONLY = ("pie", "stacked_bar")
_TIME_WORDS = {"date", "time", "month", "year", "week", "day", "quarter", "period", "hour"}
_TIME_VALUE = re.compile(r"^(\d{4}(-\d{2}(-\d{2})?)?|Q[1-4] \d{4}|\d{4} Q[1-4]|\d{1,2}:\d{2}|"
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*( \d{4})?)$")
_HEADER = re.compile(r"^(.*?)\s*[(\[]([^)\]]*)[)\]]\s*$")


class DataError(UserError):
    """The --data file cannot be drawn: the message names the file, row and column. Exit code 2."""


@dataclass(frozen=True)
class Column:
    """One column: its header, the noun and unit read from it, and its cells (text or numbers)."""

    header: str
    noun: str
    unit: str
    cells: tuple[Any, ...]
    decimals: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        """The header without its unit, as written ("Reference high (mg/dL)" -> "Reference high")."""
        m = _HEADER.match(self.header)
        return m.group(1).strip() if m and m.group(1) else self.header

    @property
    def nonnegative(self) -> bool:
        """Values a bar can show from zero: none negative, some positive."""
        return min(self.cells) >= 0 and max(self.cells) > 0

    @property
    def positive(self) -> bool:
        """Values a pie can show as slices: all above zero."""
        return min(self.cells) > 0


@dataclass(frozen=True)
class Table:
    """A user's table: its label column (the categories), whether that is a time axis, and its numeric columns."""

    path: str
    label: Column
    time: bool
    numeric: tuple[Column, ...]

    @property
    def name(self) -> str:
        return Path(self.path).stem

    @property
    def rows(self) -> int:
        return len(self.label.cells)


def file_sha256(path: str | Path) -> str:
    """The sha256 of the file's bytes (a run records it, so --resume refuses a changed table)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_header(header: str) -> tuple[str, str]:
    """("Glucose (mg/dL)") -> ("glucose", "mg/dL"): the noun (first letter lowered unless an
    acronym such as "LDL" or "HbA1c") and the unit in brackets (empty when none)."""
    m = _HEADER.match(header)
    name, unit = (m.group(1), m.group(2).strip()) if m and m.group(1) else (header, "")
    name = name.strip()
    first = name.split(" ", 1)[0]
    if len(first) > 1 and first[0].isupper() and first[1:].isalpha() and first[1:].islower():
        name = name[0].lower() + name[1:]
    return name, unit


def _decimals(text: str) -> int:
    """Decimals a number is written with ("3.50" -> 2, "1e-3" -> 3, "12" -> 0), at most MAX_DECIMALS."""
    exp = Decimal(text).as_tuple().exponent
    return min(MAX_DECIMALS, max(0, -exp)) if isinstance(exp, int) else 0


def _records_csv(path: Path) -> tuple[list[str], list[list[Any]], str]:
    text = read_text(path)
    rows = [r for r in csv.reader(text.splitlines()) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: the file is empty; a table needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], 1):
        if len(r) != len(header):
            raise DataError(f"{path}: row {i}: {len(r)} cells for {len(header)} columns ({', '.join(header)})")
    return header, [[c.strip() for c in r] for r in rows[1:]], "row"


def _records_list(path: Path, records: Any, what: str) -> tuple[list[str], list[list[Any]], str]:
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path}: {what} must be a non-empty list of records (objects of column: value)")
    header = [str(k) for k in records[0]]
    out = []
    for i, r in enumerate(records, 1):
        if set(map(str, r)) != set(header):
            odd = sorted(set(map(str, r)) ^ set(header))
            raise DataError(f"{path}: row {i}: column {odd[0]!r} is not in every row; each record needs the columns "
                            f"{', '.join(header)}")
        out.append([_cell(r[k]) for k in r])
    return header, out, "row"


def _cell(v: Any) -> Any:
    """A JSON / parquet cell as text or a number (dates as ISO text, missing as empty text)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return v
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


def _read(path: Path) -> tuple[list[str], list[list[Any]], str]:
    ext = path.suffix.lower()
    if ext not in FORMATS:
        raise DataError(f"{path}: unknown data file type {ext or '(none)'!r}; allowed: {', '.join(FORMATS)}")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if ext == ".csv":
        return _records_csv(path)
    if ext == ".json":
        try:
            return _records_list(path, json.loads(read_text(path)), "the JSON")
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading parquet needs pyarrow (pip install pyarrow); or give a .csv or .json") from None
    try:
        return _records_list(path, pq.read_table(path).to_pylist(), "the parquet table")
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: not a readable parquet file ({' '.join(str(e).split())[:120]})") from None


def _number(v: Any) -> tuple[float, int] | None:
    """(value, decimals) of a cell that is a finite number, else None."""
    if isinstance(v, (int, float)):
        text = repr(float(v)) if isinstance(v, float) else str(v)
    else:
        text = str(v).strip()
        try:
            float(text)
        except ValueError:
            return None
    x = float(text)
    if not math.isfinite(x):
        return None
    d = 0 if isinstance(v, float) and x == int(x) else _decimals(text)  # a JSON 12.0 is the number 12
    return round(x, d), d


def read_table(path: str | Path) -> Table:
    """Read and check a table; raises DataError (one line naming the file, row and column) for an
    unreadable file, an unknown type, an empty table, no label or numeric column, a duplicate
    label, or a cell that is not a number in a numeric column."""
    path = Path(path)
    header, rows, unit = _read(path)
    if not rows:
        raise DataError(f"{path}: the table has a header but no rows; give at least 3 rows")
    for j, h in enumerate(header):
        if not h:
            raise DataError(f"{path}: column {j + 1} has no header; every column needs a name")
        if header.index(h) != j:
            raise DataError(f"{path}: column {h!r} appears twice in the header")
    label: Column | None = None
    numeric: list[Column] = []
    for j, h in enumerate(header):
        cells = [r[j] for r in rows]
        parsed = [_number(c) for c in cells]
        noun, unit_ = split_header(h)
        if sum(p is not None for p in parsed) * 2 > len(cells):  # mostly numbers: a numeric column
            for i, (c, p) in enumerate(zip(cells, parsed), 1):
                if p is None:
                    what = "an empty cell" if c == "" else f"{c!r} is not a number"
                    raise DataError(f"{path}: row {i}, column {h!r}: {what}; a numeric column needs a finite number "
                                    "in every row (e.g. 12 or 3.5)")
            numeric.append(Column(h, noun, unit_, tuple(p[0] for p in parsed), tuple(p[1] for p in parsed)))
        elif label is None:
            seen: dict[str, int] = {}
            for i, c in enumerate(cells, 1):
                text = str(c)
                if not text:
                    raise DataError(f"{path}: row {i}, column {h!r}: an empty label; every row needs a label")
                if text in seen:
                    raise DataError(f"{path}: row {i}, column {h!r}: {text!r} repeats row {seen[text]}; labels must be "
                                    "unique (one row per category)")
                seen[text] = i
            label = Column(h, noun, unit_, tuple(str(c) for c in cells))
    if label is None:
        raise DataError(f"{path}: no label column; one column must hold text (the names of the rows), the others "
                        f"numbers (columns: {', '.join(header)})")
    if not numeric:
        raise DataError(f"{path}: no numeric column; besides the label column {label.header!r}, at least one column "
                        "must hold numbers")
    time = (label.noun.lower() in _TIME_WORDS or label.header.lower().split(" ")[0] in _TIME_WORDS
            or all(_TIME_VALUE.match(c) for c in label.cells))
    return Table(str(path), label, time, tuple(numeric))


@lru_cache(maxsize=4)
def load_table(path: str, sha256: str = "") -> Table:
    """read_table, once per process (keyed by the file's hash); raises DataError when the file's
    bytes are no longer those the run was started with."""
    if sha256 and file_sha256(path) != sha256:
        raise DataError(f"{path}: the file changed since the run started; start a new run (--overwrite)")
    return read_table(path)


# ------------------------------------------------------------------ which kinds fit


def _groups(cols: tuple[Column, ...], positive: bool) -> list[list[Column]]:
    """Numeric columns by unit (several series share one value axis), only non-negative ones if asked."""
    out: dict[str, list[Column]] = {}
    for c in cols:
        if not positive or c.nonnegative:
            out.setdefault(c.unit, []).append(c)
    return list(out.values())


def misfit(table: Table, kind: str) -> str | None:
    """Why `kind` cannot draw this table, or None when it can."""
    if kind not in DATA_KINDS:
        return f"a {kind} chart cannot draw a table (kinds that can: {', '.join(DATA_KINDS)})"
    k = kind_of(kind)
    if table.rows < k.n_categories[0]:
        return f"a {kind} chart needs at least {k.n_categories[0]} rows; the table has {table.rows}"
    if kind == "line" and not table.time:
        return (f"a line chart needs a time column (dates, months, years...); {table.label.header!r} is not one "
                "(name it Date, Month, Year... or write ISO dates)")
    if kind in ("hbar", "scatter", "pie") and table.time:
        return f"a {kind} chart needs named categories, not the time column {table.label.header!r}"
    if kind in ("bar", "hbar") and not any(c.nonnegative for c in table.numeric):
        return f"a {kind} chart needs a numeric column of values >= 0 (bars start at zero)"
    if kind == "pie" and not any(c.positive for c in table.numeric):
        return "a pie chart needs a numeric column of values > 0 (the parts of one whole)"
    if kind in ("grouped_bar", "stacked_bar") and not any(len(g) >= 2 for g in _groups(table.numeric, True)):
        return f"a {kind} chart needs 2+ numeric columns of values >= 0 in one unit"
    if kind == "scatter" and len(table.numeric) < 2:
        return "a scatter chart needs 2 numeric columns (x and y)"
    return None


def fitting_families(table: Table, asked: list[str]) -> list[str]:
    """The chart families to draw the table with: those asked for (each must fit, else DataError
    saying why), or, when none are, every kind that fits its shape (pie only when asked)."""
    if asked:
        for fam in asked:
            domain, _, kind = fam.partition(".")
            why = misfit(table, kind) if domain == "chart" else f"only chart families draw a --data table, not {fam}"
            if why:
                raise DataError(f"{table.path}: {fam} does not fit: {why}")
        return asked
    fams = [f"chart.{k}" for k in DATA_KINDS if k not in EXPLICIT_ONLY and misfit(table, k) is None]
    if not fams:
        raise DataError(f"{table.path}: no chart kind fits this table ({table.rows} rows, label column "
                        f"{table.label.header!r}, {len(table.numeric)} numeric column(s))")
    return fams


# ------------------------------------------------------------------ sampling


def _window(rng: np.random.Generator, table: Table, kind: ChartKind, knobs: dict[str, Any]) -> list[int]:
    """Row indices to draw: a consecutive run of a time column, an ordered subset of named rows."""
    lo, hi = kind.n_categories
    r_lo, r_hi = kind.n_categories_random
    want = int(knobs.get("n_categories", 0)) or int(rng.integers(r_lo, r_hi + 1))
    n = max(lo, min(want, hi, table.rows))
    if table.time:
        start = int(rng.integers(0, table.rows - n + 1))
        return list(range(start, start + n))
    return sorted(rng.choice(table.rows, size=n, replace=False).tolist())


def _columns(rng: np.random.Generator, table: Table, kind: ChartKind, knobs: dict[str, Any]) -> list[Column]:
    """The numeric columns drawn as series: one, or several sharing a unit."""
    if kind.n_series is None:
        pool = [c for c in table.numeric if (c.positive if kind.name == "pie" else c.nonnegative)]
        return [choice(rng, pool)]
    lo, hi = kind.n_series
    groups = [g for g in _groups(table.numeric, kind.name != "line") if len(g) >= lo]
    group = choice(rng, groups)
    r_lo, r_hi = kind.n_series_random or kind.n_series
    want = int(knobs.get("n_series", 0)) or int(rng.integers(r_lo, r_hi + 1))
    n = max(lo, min(want, hi, len(group)))
    return [group[i] for i in sorted(rng.choice(len(group), size=n, replace=False).tolist())]


def sample_data(rng: np.random.Generator, kind: ChartKind, knobs: dict[str, Any], table: Table) -> ChartData:
    """One chart of `kind` over a window of the table; all randomness from `rng`."""
    rows = _window(rng, table, kind, knobs)
    label = table.label
    cats = [label.cells[i] for i in rows]
    if kind.name == "scatter":
        x_col, y_col = (table.numeric[i] for i in rng.choice(len(table.numeric), size=2, replace=False).tolist())
        cols = [y_col]
    else:
        cols = _columns(rng, table, kind, knobs)
    style = _style(rng, kind, knobs, len(cols))
    pal = PALETTES[knobs["palette"] if knobs["palette"] != "random" else choice(rng, list(PALETTES))]
    picks = sorted(rng.choice(len(pal), size=len(cols), replace=False).tolist())
    series = [Series(name=c.header if len(cols) == 1 else c.name, values=[float(c.cells[i]) for i in rows],
                     color=pal[p][1]) for c, p in zip(cols, picks)]
    # labels print the values as the table writes them: the most decimals of any value drawn
    style.value_decimals = max(c.decimals[i] for c in cols for i in rows)
    rotation = knobs.get("tick_rotation", "auto")
    style.tick_rotation = kind.auto_rotation(cats, style) if rotation == "auto" else int(rotation)
    one = cols[0]
    unit = one.unit
    value_noun = one.noun if len(cols) == 1 else "value"
    value_label = one.header if len(cols) == 1 else (f"Value ({unit})" if unit else "Value")
    cat_label = label.header if rng.random() < 0.7 else ""
    x_label, y_label = kind.axis_labels(cat_label, value_label)
    nouns = [c.noun for c in cols]
    what = one.header if len(cols) == 1 else ", ".join(nouns[:-1]) + f" and {nouns[-1]}"
    title = f"{what[:1].upper()}{what[1:]} by {label.noun}"
    data = ChartData(chart_type=kind.name, topic=f"data:{table.name}", title=title, x_label=x_label, y_label=y_label,
                     unit=unit, category_noun=label.noun, series_noun="measure", value_noun=value_noun,
                     categories=cats, series=series, style=style)
    if kind.name == "scatter":
        trend = knobs.get("trend", "random")
        data.extra = {"x": [float(x_col.cells[i]) for i in rows], "x_noun": x_col.noun, "x_unit": x_col.unit,
                      "trend": trend == "on" or (trend == "random" and bool(rng.random() < 0.5))}
        data.style.value_decimals = max(c.decimals[i] for c in (x_col, y_col) for i in rows)
        data.x_label, data.y_label = x_col.header, y_col.header
        data.title = f"{y_col.header} vs {x_col.noun}"
        data.style.legend = data.style.value_labels = False
    return data


def sample_spec(family: Any, seed: int, index: int, knobs: dict[str, Any], attempt: int, table: Table) -> Spec:
    """The Spec of item `index` of a chart family drawn from the user's table (the family's own
    stream, so item i depends on (seed, family, index, knobs, table) alone)."""
    rng = item_rng(seed, family.name, index, "spec", attempt)
    data = sample_data(rng, kind_of(family.chart_type), knobs, table)
    return Spec(family=family.name, version=family.version, seed=seed, index=index, knobs=knobs,
                data=data.spec_data())


def describe(table: Table) -> str:
    """One line saying how the table was read (printed by generate --data)."""
    axis = "time" if table.time else "category"
    cols = ", ".join(f"{c.header!r}" for c in table.numeric)
    return (f"{table.path}: {table.rows} rows; {axis} column {table.label.header!r} "
            f"({plural(table.label.noun)}); numeric columns {cols}")
