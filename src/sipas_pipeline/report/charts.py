"""The report's charts, drawn with matplotlib (offline, no JavaScript): SVG text for the HTML (text kept as
<text> elements, so the page is searchable and names stay Vietnamese) and PNGs of the main charts for the press."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

plt.rcParams.update({"svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 8, "svg.hashsalt": "sipas",
                     "axes.spines.top": False, "axes.spines.right": False})
GROUP_COLOURS = {"A": "#1a9850", "B": "#91cf60", "C": "#fee08b", "D": "#fc8d59", "E": "#d73027"}
BLUE = "#2c7fb8"


def render(fig: plt.Figure, png: Path | None = None, left: float = 1.9, bottom: float = 0.6) -> str:
    """The figure as inline SVG (and a PNG beside when `png` is given); the figure is closed. Margins are fixed
    (inches: room for the province names and the axis label) rather than measured (bbox_inches="tight" draws
    every figure twice: most of the report's time)."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - 0.25 / w, bottom=bottom / h, top=1 - 0.35 / h)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    if png is not None:
        fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def sipas_ranking(provinces: pl.DataFrame, national: float, png: Path | None = None) -> str:
    """Every province's SIPAS with its 95% confidence interval, sorted, and the national mean."""
    d = provinces.filter(pl.col("value").is_not_null()).sort("value")
    fig, ax = plt.subplots(figsize=(7.5, 0.16 * d.height + 1.2))
    y = range(d.height)
    ax.errorbar(d["value"], y, xerr=[d["value"] - d["ci_low"], d["ci_high"] - d["value"]], fmt="o", color=BLUE,
                ecolor="#9ecae1", markersize=3, elinewidth=2, gid="sipas-points")
    ax.axvline(national, color="#444", linestyle="--", linewidth=1)
    ax.text(national, d.height + 0.3, f" Toàn quốc / Nation {national:.2f}", fontsize=7, color="#444")
    ax.set_yticks(list(y), d["unit_name_vi"].to_list())
    ax.set_ylim(-1, d.height + 1.5)
    ax.set_xlabel("Chỉ số SIPAS (%) và khoảng tin cậy 95% / SIPAS index (%) with its 95% confidence interval")
    return render(fig, png)


def par_index(provinces: pl.DataFrame, png: Path | None = None) -> str:
    """The PAR INDEX of every province, sorted, coloured by its group (A-E)."""
    d = provinces.filter(pl.col("par_index").is_not_null()).sort("par_index")
    fig, ax = plt.subplots(figsize=(7.5, 0.16 * d.height + 1.2))
    colours = [GROUP_COLOURS.get(g, "#999") for g in d["par_group"].to_list()]
    ax.barh(range(d.height), d["par_index"], color=colours, height=0.75)
    ax.set_yticks(range(d.height), d["unit_name_vi"].to_list())
    ax.set_xlim(max(0.0, float(d["par_index"].min()) - 5), 100)
    ax.set_ylim(-1, d.height)
    for g, c in GROUP_COLOURS.items():
        ax.barh([0], [0], color=c, label=f"Nhóm / Group {g}")
    ax.legend(loc="lower right", fontsize=7)
    ax.set_xlabel("Chỉ số CCHC (PAR INDEX, %)")
    return render(fig, png)


def regional_means(regions: pl.DataFrame) -> str:
    """SIPAS and PAR INDEX means per region (vùng), side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.8), sharey=True)
    names = regions["unit_name_vi"].to_list()
    for ax, col, title in zip(axes, ("sipas", "par_index"), ("SIPAS (%)", "Chỉ số CCHC / PAR INDEX (%)"), strict=True):
        ax.barh(range(regions.height), regions[col], color=BLUE)
        ax.set_yticks(range(regions.height), names)
        ax.set_xlim(max(0.0, float(regions[col].min()) - 10), float(regions[col].max()) + 3)
        ax.set_title(title)
        for i, v in enumerate(regions[col].to_list()):
            ax.text(v, i, f" {v:.2f}", va="center", fontsize=7)
    return render(fig, left=2.9)


def element_heatmap(elements: pl.DataFrame) -> str:
    """Province x element (yếu tố) heat map of the SIPAS elements, provinces in Vietnamese order."""
    wide = (elements.pivot(on="node", index=["unit_sort_key", "unit_name_vi"], values="value")
            .sort("unit_sort_key"))
    nodes = [c for c in wide.columns if c not in ("unit_sort_key", "unit_name_vi")]
    labels = dict(zip(elements["node"], elements["label_vi"], strict=False))
    fig, ax = plt.subplots(figsize=(0.45 * len(nodes) + 2.5, 0.16 * wide.height + 2.2))
    im = ax.imshow(wide.select(nodes).to_numpy(), aspect="auto", cmap="RdYlGn")
    ax.set_yticks(range(wide.height), wide["unit_name_vi"].to_list())
    ax.set_xticks(range(len(nodes)), [labels.get(n, n) for n in nodes], rotation=60, ha="right")
    fig.colorbar(im, ax=ax, shrink=0.4, label="%")
    return render(fig, bottom=2.6)


def rank_intervals(ranks: pl.DataFrame) -> str:
    """Each province's national SIPAS rank with its 90% rank interval."""
    d = ranks.filter(pl.col("rank_national").is_not_null()).sort("rank_national", descending=True)
    fig, ax = plt.subplots(figsize=(7.5, 0.16 * d.height + 1.2))
    y = range(d.height)
    ax.hlines(y, d["rank_low"], d["rank_high"], color="#9ecae1", linewidth=2.5)
    ax.plot(d["rank_national"], y, "o", color=BLUE, markersize=3)
    ax.set_yticks(list(y), d["unit_name_vi"].to_list())
    ax.invert_xaxis()
    ax.set_xlabel("Xếp hạng SIPAS và khoảng xếp hạng 90% / SIPAS rank with its 90% rank interval (1 = best)")
    return render(fig)
