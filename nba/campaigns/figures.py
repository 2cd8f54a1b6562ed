"""Figures of the closed loop (matplotlib `Figure`s with titles and labelled axes) and the
impact report's HTML."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

HELP = "#4C72B0"
HURT = "#C44E52"
NEUTRAL = "#8C8C8C"


def _interval_bars(
    table: pd.DataFrame, value: str, low: str, high: str, title: str, xlabel: str
) -> Figure:
    t = table.dropna(subset=[value]).reset_index(drop=True)
    fig = Figure(figsize=(7.5, 0.45 * max(len(t), 1) + 1.4))
    ax = fig.subplots()
    y = np.arange(len(t))
    colours = [HURT if v < 0 else HELP for v in t[value]]
    ax.barh(y, t[value], color=colours, alpha=0.8)
    ax.errorbar(
        t[value],
        y,
        xerr=[t[value] - t[low], t[high] - t[value]],
        fmt="none",
        ecolor="black",
        capsize=3,
    )
    ax.axvline(0, color=NEUTRAL, linewidth=1)
    ax.set_yticks(y, t["action"])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("action")
    ax.set_title(title)
    return fig


def lift_chart(table: pd.DataFrame) -> Figure:
    """Incremental retention per action (treated − control) with its 95 % interval."""
    return _interval_bars(
        table.assign(
            lift=table["lift"] * 100,
            lift_low=table["lift_low"] * 100,
            lift_high=table["lift_high"] * 100,
        ),
        "lift",
        "lift_low",
        "lift_high",
        "Incremental retention per action, treated vs control (95 % interval)",
        "retention lift (percentage points)",
    )


def net_value_chart(table: pd.DataFrame) -> Figure:
    """Incremental net value per treated customer ($) with its 95 % interval."""
    return _interval_bars(
        table,
        "net_value",
        "net_value_low",
        "net_value_high",
        "Incremental net value per treated customer (95 % interval)",
        "net value per treated customer ($)",
    )


def effects_chart(effects: pd.DataFrame, true: pd.Series | None = None) -> Figure:
    """Per action: the catalogue's assumed average effect on retention, the learned one with
    its 95 % interval and, when given, the simulator's true one."""
    t = effects.reset_index(drop=True)
    fig = Figure(figsize=(8, 0.5 * len(t) + 1.6))
    ax = fig.subplots()
    y = np.arange(len(t))
    ax.errorbar(
        t["learned_effect"] * 100,
        y,
        xerr=[
            (t["learned_effect"] - t["learned_low"]) * 100,
            (t["learned_high"] - t["learned_effect"]) * 100,
        ],
        fmt="o",
        color=HELP,
        capsize=3,
        label="learned (95 % interval)",
    )
    ax.scatter(t["assumed_effect"] * 100, y, marker="x", color=NEUTRAL, label="catalogue (assumed)")
    if true is not None:
        ax.scatter(
            true.reindex(t["action"]).to_numpy() * 100, y, marker="D", color=HURT, label="true"
        )
    ax.axvline(0, color=NEUTRAL, linewidth=1)
    ax.set_yticks(y, t["action"])
    ax.invert_yaxis()
    ax.set_xlabel("average effect on retention (percentage points)")
    ax.set_ylabel("action")
    ax.set_title("What each action does to retention: assumed vs learned")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def waves_chart(waves: pd.DataFrame) -> Figure:
    """Share of the oracle's true net value reached by each wave's bundle (exploitation plan
    on the same held-back customers), with the 90 % target."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(waves["wave"], waves["ratio"] * 100, marker="o", color=HELP, label="learning bundle")
    ax.axhline(waves["ratio"].iloc[0] * 100, color=NEUTRAL, linestyle=":", label="first bundle")
    ax.axhline(90, color=HURT, linestyle="--", label="target 90 %")
    ax.set_xticks(waves["wave"])
    ax.set_xlabel("bundle after wave (1 = the first bundle, before any outcome)")
    ax.set_ylabel("true net value, % of the oracle's")
    ax.set_ylim(0, 105)
    ax.set_title("The closed loop: each bundle's plan against the oracle")
    ax.legend(loc="lower right")
    return fig


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:,.4f}"
    if isinstance(v, int | np.integer):
        return f"{v:,}"
    return html.escape(str(v))


def impact_html(summary: dict[str, Any], table: pd.DataFrame) -> str:
    """The self-contained impact report: campaigns, the per-action table, two charts and the
    per-segment table."""
    e = html.escape
    cols = list(table.columns)
    head = "".join(f"<th>{e(c)}</th>" for c in cols)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{_cell(r[c])}</td>" for c in cols) + "</tr>"
        for r in table.to_dict(orient="records")
    )
    seg = pd.DataFrame(summary["segments"])
    seg_html = (
        seg.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:,.4f}") if len(seg) else ""
    )
    charts = ""
    if table["lift"].notna().any():
        charts = (
            f'<h2>Incremental retention</h2><img alt="lift" src="data:image/png;base64,'
            f'{_png(lift_chart(table))}"><p>Bars left of zero: the action lost customers.</p>'
            f'<h2>Incremental net value</h2><img alt="net value" src="data:image/png;base64,'
            f'{_png(net_value_chart(table))}"><p>Per treated customer, after the cost of the '
            "action.</p>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nba campaign impact</title>
<style>body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #999; padding: 3px 8px; }}</style>
</head><body>
<h1>Campaign impact</h1>
<p>Campaigns: {e(", ".join(summary["campaigns"]))}. {summary["outcomes"]:,} recorded outcomes;
{summary["explored_left_out"]:,} exploration rows left out. {e(summary["method"])}.</p>
<h2>Per action</h2>
<table id="actions"><tr>{head}</tr>
{body}
</table>
{charts}
<h2>Per action and segment</h2>
{seg_html}
</body></html>
"""
