"""What the app's page shows, as HTML text: probabilities, money, tables, messages, the data
banner and the customer's result card. Pure functions of their arguments (no widgets), so the
widgets in `nba.app.widgets` only place their output, and tests can read it directly.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Colour of each risk band on the card.
BAND_COLOURS = {"low": "#2e7d32", "medium": "#ef6c00", "high": "#c62828"}


def escape(value: Any) -> str:
    """Any value as HTML-escaped text."""
    return html.escape(str(value))


def percent(p: float) -> str:
    """A probability for people: one decimal, and "< 0.1%" rather than a misleading 0.0%."""
    if p < 0.001:
        return "< 0.1%"
    if p > 0.999:
        return "> 99.9%"
    return f"{p:.1%}"


def number(value: float) -> str:
    """10000000 → "10,000,000", 0.5 → "0.5"."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def money(value: float) -> str:
    """$1,234 (whole dollars); a dash when there is no value."""
    return "—" if value is None or not np.isfinite(value) else f"${value:,.0f}"


def png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes (120 dpi, tight), the figure closed afterwards."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")  # sharp when scaled
    plt.close(fig)
    return buffer.getvalue()


def table_html(df: pd.DataFrame, max_height: str = "420px") -> str:
    """A frame as an escaped, scrollable HTML table."""
    body = df.to_html(index=False, escape=True, border=0, classes="nba-table", na_rep="")
    return (
        f'<div style="max-height:{max_height};overflow:auto;font-size:12px">'
        "<style>.nba-table{border-collapse:collapse}.nba-table td,.nba-table th"
        "{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}</style>"
        f"{body}</div>"
    )


def download_link(df: pd.DataFrame, name: str, css: str) -> str:
    """A link that downloads `df` as the CSV file `name` (data URL: no server round trip)."""
    data = base64.b64encode(df.to_csv(index=False).encode()).decode()
    return (
        f"<a class='{css}' download='{escape(name)}' href='data:text/csv;base64,{data}' "
        f"style='font-weight:bold'>⬇ Download {escape(name)} ({len(df):,} rows)</a>"
    )


#: Decimals kept in a downloaded scores file: probabilities to 0.01 percentage point, money to
#: the cent; enough for any decision, without float noise such as 1339.1879999999999.
CSV_DECIMALS = {"churn_probability": 4, "value_at_risk": 2}


def rounded_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """A scores frame for people to download: probabilities to 4 decimals, dollars to cents."""
    out = scores.copy()
    for col in out.columns:
        if col in CSV_DECIMALS:
            out[col] = out[col].round(CSV_DECIMALS[col])
        elif col.startswith("action_") and col.endswith("_value"):
            out[col] = out[col].round(2)
        elif col.endswith("_contribution"):
            out[col] = out[col].round(4)
    return out


def batch_table_html(scores: pd.DataFrame, action_names: Mapping[str, str]) -> str:
    """Scored customers, one line each: churn risk as %, risk band, segment, the best action by
    name, its expected net value and the value at risk in $, and its reason cut to one line
    (the whole reason on hover and in the download)."""
    rows = []
    for _, r in scores.iterrows():
        action = str(r.get("action_1") or "")
        reason = str(r.get("action_1_reason") or "")
        rows.append(
            "<tr>"
            f"<td>{escape(r[schema_id(scores)])}</td>"
            f"<td style='text-align:right'>{escape(percent(float(r['churn_probability'])))}</td>"
            f"<td>{escape(r['risk_band'])}</td>"
            f"<td>{escape(r['segment_name'])}</td>"
            f"<td>{escape(action_names.get(action, action))}</td>"
            f"<td style='text-align:right'>{money(float(r['action_1_value']))}</td>"
            f"<td style='text-align:right'>{money(float(r['value_at_risk']))}</td>"
            f"<td class='nba-reason' title='{escape(reason)}' style='max-width:420px;"
            "white-space:nowrap;overflow:hidden;text-overflow:ellipsis'>"
            f"{escape(reason)}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "customer",
            "churn risk",
            "risk band",
            "segment",
            "best action",
            "expected net value",
            "value at risk",
            "why (hover for all)",
        )
    )
    return (
        "<div style='max-height:420px;overflow:auto;font-size:12px'>"
        "<style>.nba-batch{border-collapse:collapse}.nba-batch td,.nba-batch th"
        "{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap}"
        "</style>"
        f"<table class='nba-batch'><tr>{head}</tr>{''.join(rows)}</table></div>"
    )


def campaign_figures(
    scores: pd.DataFrame, action_names: Mapping[str, str], costs: Mapping[str, float]
) -> dict[str, float]:
    """A scored list's campaign totals ($): value at risk, the cost of contacting everyone with
    their best action, and the expected net value of doing so (customers whose best is no
    action cost and bring nothing)."""
    best = scores["action_1"].astype("str")
    # float even for an empty list (a text column's empty sum is "", not 0)
    cost = best.map({a: float(c) for a, c in costs.items()}).astype("float64").fillna(0.0)
    net = scores["action_1_value"].fillna(0.0).where(best.ne("no_action"), 0.0)
    return {
        "customers": float(len(scores)),
        "value_at_risk": float(scores["value_at_risk"].sum()),
        "campaign_cost": float(cost.sum()),
        "expected_net_value": float(net.sum()),
        "contacted": float((best.ne("no_action") & best.ne("")).sum()),
    }


def summary_chart(scores: pd.DataFrame, action_names: Mapping[str, str]) -> Any:
    """Two bar charts of a scored list: customers by risk band, and by best action (by name)."""
    from matplotlib.figure import Figure

    bands = scores["risk_band"].astype("str").value_counts().reindex(["high", "medium", "low"])
    actions = scores["action_1"].astype("str").map(lambda a: action_names.get(a, a))
    by_action = actions.value_counts().sort_values()
    fig = Figure(figsize=(10, 2.2 + 0.18 * len(by_action)), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 2])
    left.bar(bands.index, bands.fillna(0), color=[BAND_COLOURS[b] for b in bands.index])
    left.set(title="Customers by risk band", xlabel="risk band", ylabel="customers")
    right.barh(by_action.index, by_action.to_numpy(), color="#455a64")
    right.set(title="Customers by best action", xlabel="customers", ylabel="")
    return fig


def schema_id(scores: pd.DataFrame) -> str:
    """The customer id column of a scores frame."""
    return "CLIENTNUM" if "CLIENTNUM" in scores.columns else scores.columns[0]


def message(text: str, kind: str = "error") -> str:
    """A coloured one-line message ("error", "ok" or "info"), escaped."""
    colour = {"error": "#c62828", "ok": "#2e7d32", "info": "#555"}[kind]
    return f'<span class="nba-{kind}" style="color:{colour}">{escape(text)}</span>'


def banner_html(source: dict[str, Any], what: str) -> str:
    """One line naming the data behind `what`; a loud red block when it is synthetic."""
    sha = str(source.get("sha256", ""))[:12]
    rows = source.get("rows", 0)
    where = f"{escape(source.get('path', '?'))}, {rows:,} rows, sha256 {sha}…"
    if source.get("synthetic"):
        return (
            '<div class="nba-banner nba-synthetic" style="background:#c62828;color:white;'
            'padding:8px 12px;font-weight:bold;border-radius:4px;margin:2px 0">'
            f"⚠ SYNTHETIC DATA — {escape(what)} generated customers, not real ones: figures show "
            f"the method, not the bank. ({where})</div>"
        )
    return (
        '<div class="nba-banner nba-real" style="background:#e8f5e9;padding:6px 12px;'
        f'border-radius:4px;margin:2px 0">Real data — {escape(what)} {where}</div>'
    )


def card_html(
    scored: Mapping[str, Any],
    *,
    label: str,
    threshold: float,
    description: str,
    action_names: Mapping[str, str],
    changes: Sequence[str] = (),
    before: float | None = None,
    outcome: str | None = None,
    segment_before: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """The result card of one scored customer (a `recommend` row): title `label`, what-if line
    (`changes`, the probability `before` them and the segment `segment_before` them, marked as
    a what-if that saves nothing), churn probability with its risk band and a gauge marking
    `threshold`, what happened to the customer in the data (`outcome`), the segment and its `description`, the top-3 actions (shown by `action_names`), the value at
    risk, the main risk drivers, and — when the customer lies outside what the model learnt
    from — which fields, so that a person knows the score is an extrapolation."""
    p = float(scored["churn_probability"])
    band = scored["risk_band"]
    colour = BAND_COLOURS.get(band, "#555")
    parts = [f"<h3 style='margin:4px 0'>{escape(label)}</h3>"]
    if changes and before is not None:
        moved = (
            f"; segment {escape(segment_before)} → <b>{escape(scored['segment_name'])}</b>"
            if segment_before and segment_before != scored["segment_name"]
            else ""
        )
        parts.append(
            "<p class='nba-what-if' style='background:#fff8e1;padding:4px'>"
            f"<b>What-if</b> ({escape('; '.join(changes))}): churn risk "
            f"{escape(percent(before))} → <b>{escape(percent(p))}</b> "
            f"({(p - before) * 100:+.1f} points){moved}.<br><small>A what-if only: the "
            "customer's record is unchanged and nothing is saved; a contact recorded below is "
            "recorded for the customer as they are.</small></p>"
        )
    parts.append(
        "<div><span style='font-size:15px'>Churn risk "
        f"<b class='nba-probability'>{escape(percent(p))}</b></span> "
        f"<span class='nba-band' style='background:{colour};color:white;padding:2px 8px;"
        f"border-radius:10px;margin-left:6px'>{escape(band)} risk</span></div>"
        "<div style='position:relative;background:#eee;height:14px;width:100%;"
        "max-width:460px;margin:4px 0;border-radius:3px'>"
        f"<div class='nba-gauge' style='background:{colour};height:14px;width:{p * 100:.1f}%;"
        "border-radius:3px'></div>"
        f"<div title='threshold' style='position:absolute;left:{threshold * 100:.1f}%;top:-3px;"
        "height:20px;border-left:2px solid black'></div></div>"
        f"<small>Flagged at or above the model's threshold {threshold:.1%} (black line)."
        "</small>"
    )
    beyond = ", ".join(
        (labels or {}).get(c.strip(), c.strip())
        for c in str(scored.get("out_of_range") or "").split(",")
        if c.strip()
    )
    if beyond:
        parts.append(
            "<p class='nba-out-of-range' style='background:#fff3e0;padding:4px'><small>Outside "
            f"the range the model learnt from: <b>{escape(beyond)}</b>. The score extrapolates; "
            "read it with care.</small></p>"
        )
    if outcome:
        parts.append(f"<p><small>In the data this customer {escape(outcome)}.</small></p>")
    parts.append("<h4 style='margin:8px 0 2px 0'>Next best actions</h4>")
    rows = []
    for k in (1, 2, 3):
        action = scored.get(f"action_{k}") or ""
        if not action:
            continue
        name = action_names.get(action, action)
        rows.append(
            f"<tr><td>{k}</td><td class='nba-action' style='white-space:nowrap'>{escape(name)}</td>"
            f"<td style='text-align:right;white-space:nowrap'>"
            f"{money(scored[f'action_{k}_value'])}</td>"
            f"<td>{escape(scored[f'action_{k}_reason'])}</td></tr>"
        )
    parts.append(
        "<table class='nba-actions' style='border-collapse:collapse;font-size:13px'>"
        "<tr><th>#</th><th>action</th><th>expected net value</th><th>why</th></tr>"
        + "".join(rows)
        + "</table>"
        f"<small>Value at risk if this customer leaves: "
        f"{money(float(scored.get('value_at_risk', np.nan)))}.</small>"
    )
    # the segment after the actions: on a laptop screen the actions sit above the fold
    parts.append(
        f"<h4 style='margin:8px 0 2px 0'>Segment: <span class='nba-segment'>"
        f"{escape(scored['segment_name'])}</span></h4><p style='margin:0'>{escape(description)}</p>"
    )
    drivers = [scored[k] for k in ("driver_1", "driver_2", "driver_3") if scored.get(k)]
    parts.append(
        "<h4 style='margin:8px 0 2px 0'>Main risk drivers</h4><ol class='nba-drivers'>"
        + "".join(f"<li>{escape(d)}</li>" for d in drivers)
        + "</ol>"
    )
    return "<div class='nba-card'>" + "".join(parts) + "</div>"
