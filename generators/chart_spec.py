"""The chart Spec model, shared by the matplotlib and plotly renderers (either may draw the same Spec)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Series(BaseModel):
    """One data series: a name (legend entry), one value per category, and its colour (#rrggbb)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    values: list[float]
    color: str


class ChartStyle(BaseModel):
    """Presentation choices; none of them changes the data."""

    model_config = ConfigDict(extra="forbid")
    width_px: int = 640
    height_px: int = 480
    dpi: int = 100
    font_size: float = 10.0
    title_size: float = 13.0
    font_family: str = "DejaVu Sans"
    background: str = "#ffffff"
    grid: bool = True
    value_labels: bool = False
    value_decimals: int = 0
    legend: bool = True
    legend_loc: str = "upper right"
    bar_width: float = 0.7
    line_markers: bool = True
    line_width: float = 2.0
    tick_rotation: int = 0
    theme: str = "plain"


class ChartData(BaseModel):
    """Everything a chart shows: kind, texts, categories, series, style, and what else its kind draws."""

    model_config = ConfigDict(extra="forbid")
    chart_type: str = Field(description="The chart kind (generators/chart_kind.py KINDS), e.g. 'bar'.")
    topic: str
    title: str
    x_label: str
    y_label: str
    unit: str = Field(description="Unit of the values, e.g. 'million USD', '%', 'tonnes'.")
    category_noun: str = Field(description="What a category is, e.g. 'country', 'month'.")
    series_noun: str = Field(description="What a series is, e.g. 'product', 'year'.")
    value_noun: str = Field(description="What the values measure, e.g. 'revenue'.")
    categories: list[str]
    series: list[Series]
    style: ChartStyle = Field(default_factory=ChartStyle)
    extra: dict[str, Any] = Field(default_factory=dict, description="Kind-specific data beyond series over "
                                  "categories (a scatter's x values, a heatmap's rows); left out of a Spec when empty.")

    def spec_data(self) -> dict[str, Any]:
        """The JSON-able dict a Spec stores (`extra` only when the kind uses it, so the Specs of kinds
        that do not keep the bytes they had before it existed)."""
        out = self.model_dump()
        if not out["extra"]:
            del out["extra"]
        return out
