"""Drift between the training reference and a new batch of customers (`nba monitor`).

At training, `reference_profile` records what the model saw: per-feature bin shares (quantile
bin edges for numeric features, category shares for categoricals), the churn-probability
distribution, the segment mix, the action mix (when the score frame has `action_1`), the
share of `Unknown` per categorical and the training range of every numeric column (what the
score's `out_of_range` column compares customers with). `compare` measures a new batch against
it and gives every item a status, ok / watch / act, from the thresholds in
`params/monitor.yaml`; one item is the share of scored rows outside the training range, the
customers for whom the model extrapolates.

Population stability index (PSI), used for features, score, segment mix and action mix::

    PSI = sum over bins of (a - e) * ln(a / e)

where e is the reference share and a the batch share of a bin, both floored at `PSI_FLOOR`
(1e-4) so that an empty bin counts as a large but finite shift. PSI is 0 for identical shares,
symmetric in e and a, and unitless.
"""

from __future__ import annotations

import base64
import html
import io as _io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nba.data import schema
from nba.errors import DataError, NbaError
from nba.scoring import OUT_OF_RANGE, TRAINING_RANGE, training_range

log = logging.getLogger(__name__)

PSI_FLOOR = 1e-4  # share floor (a bin empty on one side adds a large but finite term)
BINS = 10  # quantile bins per numeric feature and for the score
REFERENCE_VERSION = 1
UNKNOWN = "Unknown"
ACTION = "action_1"
STATUSES = ("ok", "watch", "act")
#: Columns the balance identities tie together: `drifted_batch` recomputes the last two.
_DERIVED = ("Avg_Open_To_Buy", "Avg_Utilization_Ratio")


# --- thresholds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """Watch / act levels for every monitored item; rationale in params/monitor.yaml."""

    psi_watch: float = 0.10
    psi_act: float = 0.25
    unknown_increase_watch: float = 0.05  # share points over the reference
    unknown_increase_act: float = 0.10
    rejected_rate_watch: float = 0.01  # share of batch rows rejected by validation
    rejected_rate_act: float = 0.05
    out_of_range_watch: float = 0.01  # share of scored rows outside the training range
    out_of_range_act: float = 0.05
    roc_auc_drop_watch: float = 0.03  # points below the bundle's held-out figure
    roc_auc_drop_act: float = 0.06
    f1_drop_watch: float = 0.05
    f1_drop_act: float = 0.10
    min_labelled: int = 200  # fewer labelled customers: metrics reported, not judged
    adverse_impact_watch: float = 0.9  # a credit action's lowest selection-rate ratio below it
    adverse_impact_act: float = 0.8  # the four-fifths rule: below it, an alert
    adverse_impact_min_group: int = 30  # groups smaller than this are not compared


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    """Thresholds from a YAML file (default `params/monitor.yaml`; built-in values if that
    default is absent, e.g. an installed package). Unknown keys are an error."""
    from nba import config

    return config.load_params_file(Thresholds, path, "monitor.yaml", "thresholds")


def status(value: float | None, watch: float, act: float) -> str:
    """ "act" at or above `act`, "watch" at or above `watch`, else "ok" (None: not judged)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "ok"
    return "act" if value >= act else "watch" if value >= watch else "ok"


# --- PSI and bins -----------------------------------------------------------------------------


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = PSI_FLOOR) -> float:
    """Population stability index of two share vectors over the same bins (unitless):
    sum((a - e) * ln(a / e)) with both shares floored at `floor`."""
    e = np.clip(np.asarray(expected, dtype=float), floor, None)
    a = np.clip(np.asarray(actual, dtype=float), floor, None)
    if e.shape != a.shape:
        raise ValueError(f"PSI needs shares over the same bins, got {e.shape} and {a.shape}")
    return float(np.sum((a - e) * np.log(a / e)))


def quantile_edges(values: np.ndarray, bins: int = BINS) -> list[float]:
    """Interior bin edges at the reference's quantiles (duplicates dropped, so discrete columns
    get one bin per value range that actually occurs)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    return np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])).tolist()


def bin_shares(values: np.ndarray, edges: Sequence[float]) -> list[float]:
    """Shares of `values` in the len(edges)+1 bins [-inf, e0), [e0, e1) … [e_last, inf)."""
    x = np.asarray(values, dtype=float)
    counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
    return (counts / max(len(x), 1)).tolist()


def category_shares(values: pd.Series, categories: Sequence[str]) -> list[float]:
    """Shares of each category (text), in order; values outside `categories` are not counted."""
    counts = pd.Series(values).astype(str).value_counts()
    n = max(len(values), 1)
    return [float(counts.get(c, 0)) / n for c in categories]


def _mix(values: pd.Series) -> dict[str, Any]:
    shares = pd.Series(values).astype(str).value_counts(normalize=True).sort_index()
    return {"categories": shares.index.tolist(), "shares": shares.astype(float).tolist()}


# --- the reference ----------------------------------------------------------------------------


def reference_profile(
    clean: pd.DataFrame, scores: pd.DataFrame, bins: int = BINS
) -> dict[str, Any]:
    """What a batch is later compared with: a plain dict (lists, floats, text) for the bundle.

    clean: validated customers (as `nba.data.validate` returns them); scores: their score frame
    (`nba.scoring.score_frame`; `action_1` adds the action mix). At training the scores are
    in-sample (the deployed model is refitted on every customer), so they are slightly sharper
    than on new customers: an undrifted batch reads a score PSI of ~0.04, well under watch."""
    features: dict[str, Any] = {}
    for col in schema.NUMERIC:
        edges = quantile_edges(clean[col].to_numpy(), bins)
        features[col] = {
            "kind": "numeric",
            "edges": edges,
            "shares": bin_shares(clean[col].to_numpy(), edges),
        }
    for col in schema.CATEGORICAL:
        cats = list(schema.CATEGORIES[col])
        features[col] = {
            "kind": "categorical",
            "categories": cats,
            "shares": category_shares(clean[col], cats),
        }
    p = scores["churn_probability"].to_numpy()
    score_edges = quantile_edges(p, bins)
    segments = _mix(scores["segment"])
    names = dict(
        zip(scores["segment"].astype(str), scores["segment_name"].astype(str), strict=True)
    )
    segments["names"] = [names[c] for c in segments["categories"]]
    reference: dict[str, Any] = {
        "version": REFERENCE_VERSION,
        "rows": len(clean),
        "bins": bins,
        "features": features,
        "score": {"edges": score_edges, "shares": bin_shares(p, score_edges)},
        "segments": segments,
        "unknown": {
            c: float((clean[c].astype(str) == UNKNOWN).mean())
            for c in schema.CATEGORICAL
            if UNKNOWN in schema.CATEGORIES[c]
        },
    }
    if ACTION in scores.columns:
        reference["actions"] = _mix(scores[ACTION].fillna("none"))
    reference[TRAINING_RANGE] = training_range(clean)
    return reference


# --- comparing a batch ------------------------------------------------------------------------


@dataclass
class MonitorResult:
    """Every monitored item with its value and status, plus what the report shows."""

    items: list[dict[str, Any]]
    rows_in: int
    rows_scored: int
    rows_rejected: int
    metrics: dict[str, float] | None = None
    charts: dict[str, Any] = field(default_factory=dict)  # bins for the score chart
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False
    bundle_created: str = ""

    @property
    def status(self) -> str:
        """The worst item status: "act", "watch" or "ok"."""
        return max((i["status"] for i in self.items), key=STATUSES.index, default="ok")

    def items_at(self, level: str, kind: str | None = None) -> list[str]:
        """Names of items at `level` (optionally of one kind: feature, score, …)."""
        return [
            i["name"]
            for i in self.items
            if i["status"] == level and (kind is None or i["kind"] == kind)
        ]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("charts")
        out["status"] = self.status
        return out


def _item(kind: str, name: str, measure: str, value: float | None, state: str, detail: str):
    rounded = None if value is None else round(float(value), 6)
    return {
        "kind": kind,
        "name": name,
        "measure": measure,
        "value": rounded,
        "status": state,
        "detail": detail,
    }


def _psi_item(kind: str, name: str, e: Sequence[float], a: Sequence[float], t: Thresholds):
    value = psi(e, a)
    return _item(kind, name, "PSI", value, status(value, t.psi_watch, t.psi_act), "")


def _mix_item(kind: str, ref: Mapping[str, Any], batch: pd.Series, t: Thresholds):
    """PSI over a mix; categories new in the batch count as bins with a zero reference share."""
    cats = list(ref["categories"])
    new = sorted(set(batch.astype(str)) - set(cats))
    expected = [*ref["shares"], *[0.0] * len(new)]
    item = _psi_item(kind, kind, expected, category_shares(batch, [*cats, *new]), t)
    if new:
        item["detail"] = f"new in batch: {', '.join(new)}"
    return item


def out_of_range_item(flags: pd.Series, t: Thresholds) -> dict[str, Any]:
    """The share of scored rows with any value outside the training range (`out_of_range`
    not empty), judged by `t`, with the columns most often outside in the detail."""
    text = flags.fillna("").astype(str)
    outside = text != ""
    share = float(outside.mean()) if len(text) else 0.0
    counts = text[outside].str.split(", ").explode().value_counts()
    top = ", ".join(f"{c} {n:,}" for c, n in counts.head(3).items())
    detail = f"{int(outside.sum()):,} of {len(text):,} scored rows" + (
        f"; most often {top}" if top else ""
    )
    state = status(share, t.out_of_range_watch, t.out_of_range_act)
    return _item(
        "out_of_range",
        "rows outside the training range",
        "share of scored rows",
        share,
        state,
        detail,
    )


def compare(
    reference: Mapping[str, Any],
    clean: pd.DataFrame,
    scores: pd.DataFrame,
    thresholds: Thresholds | None = None,
    rows_rejected: int = 0,
) -> MonitorResult:
    """Measure a validated, scored batch against `reference`; pure (no I/O)."""
    t = thresholds or Thresholds()
    items: list[dict[str, Any]] = []
    notes: list[str] = []
    for col, ref in reference["features"].items():
        if ref["kind"] == "numeric":
            shares = bin_shares(clean[col].to_numpy(), ref["edges"])
        else:
            shares = category_shares(clean[col], ref["categories"])
        items.append(_psi_item("feature", col, ref["shares"], shares, t))

    p = scores["churn_probability"].to_numpy()
    score_shares = bin_shares(p, reference["score"]["edges"])
    items.append(
        _psi_item("score", "churn_probability", reference["score"]["shares"], score_shares, t)
    )
    items.append(_mix_item("segment_mix", reference["segments"], scores["segment"], t))
    if "actions" in reference:
        if ACTION in scores.columns:
            items.append(
                _mix_item("action_mix", reference["actions"], scores[ACTION].fillna("none"), t)
            )
        else:
            notes.append("the reference has an action mix but the batch's scores have no action_1")

    for col, ref_share in reference.get("unknown", {}).items():
        share = float((clean[col].astype(str) == UNKNOWN).mean())
        rise = share - ref_share
        state = status(rise, t.unknown_increase_watch, t.unknown_increase_act)
        detail = f"{share:.1%} in batch vs {ref_share:.1%} in reference"
        items.append(_item("unknown_rate", col, "increase in Unknown share", rise, state, detail))

    if TRAINING_RANGE not in reference:
        notes.append("the bundle records no training range: out-of-range share not measured")
    elif OUT_OF_RANGE not in scores.columns:
        notes.append(f"the batch's scores have no {OUT_OF_RANGE} column")
    else:
        items.append(out_of_range_item(scores[OUT_OF_RANGE], t))

    rows_in = len(clean) + rows_rejected
    rate = rows_rejected / rows_in if rows_in else 0.0
    items.append(
        _item(
            "rejected_rate",
            "rejected rows",
            "share of batch",
            rate,
            status(rate, t.rejected_rate_watch, t.rejected_rate_act),
            f"{rows_rejected:,} of {rows_in:,} rows failed validation",
        )
    )
    charts = {
        "score_edges": list(reference["score"]["edges"]),
        "score_reference": list(reference["score"]["shares"]),
        "score_batch": score_shares,
    }
    return MonitorResult(
        items=items,
        rows_in=rows_in,
        rows_scored=len(clean),
        rows_rejected=rows_rejected,
        charts=charts,
        notes=notes,
    )


def realised_metrics(
    result: MonitorResult,
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    promised: Mapping[str, float],
    thresholds: Thresholds | None = None,
) -> None:
    """Add realised precision, recall, F1, ROC-AUC (and PR-AUC) at `threshold` to `result`
    (`nba.evaluation.metric_set`, i.e. scikit-learn's), and items for the drops in ROC-AUC and
    F1 below the bundle's promised held-out figures."""
    from nba.evaluation import metric_set

    t = thresholds or Thresholds()
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        result.notes.append("labels present but only one class: realised metrics not computed")
        return
    result.metrics = {**metric_set(y, p, threshold), "threshold": float(threshold), "n": len(y)}
    judged = len(y) >= t.min_labelled
    if not judged:
        result.notes.append(
            f"only {len(y)} labelled customers (< {t.min_labelled}): metrics shown, not judged"
        )
    for metric, watch, act in (
        ("roc_auc", t.roc_auc_drop_watch, t.roc_auc_drop_act),
        ("f1", t.f1_drop_watch, t.f1_drop_act),
    ):
        if metric not in promised:
            continue
        drop = float(promised[metric]) - result.metrics[metric]
        detail = f"realised {result.metrics[metric]:.4f} vs promised {promised[metric]:.4f}"
        state = status(drop, watch, act) if judged else "ok"
        result.items.append(_item("performance", metric, "drop from promised", drop, state, detail))


def adverse_impact_items(
    result: MonitorResult,
    clean: pd.DataFrame,
    scores: pd.DataFrame,
    credit_actions: Sequence[str],
    protected: Sequence[str],
    thresholds: Thresholds | None = None,
) -> None:
    """Add one item per credit action and protected attribute: the lowest ratio of a group's
    selection rate (the action as first choice) to the most-selected group's
    (`nba.fairness.adverse_impact`); "act" below `adverse_impact_act` (0.8, the four-fifths
    rule) when the gap is significant, "watch" below it by chance or below
    `adverse_impact_watch`."""
    from nba.fairness import adverse_impact, selections

    t = thresholds or Thresholds()
    if not credit_actions or "action_1" not in scores.columns:
        result.notes.append("no credit action or no action_1 column: adverse impact not measured")
        return
    table = adverse_impact(
        selections(scores, list(credit_actions)), clean, list(protected), t.adverse_impact_min_group
    )
    for (action, attribute), part in table.groupby(["action", "attribute"], sort=False):
        compared = part.dropna(subset=["ratio"])
        if compared.empty:
            detail = "no group large enough and selected to compare"
            result.items.append(
                _item(
                    "adverse_impact", f"{action} by {attribute}", "lowest ratio", None, "ok", detail
                )
            )
            continue
        low = compared.loc[compared["ratio"].idxmin()]
        ratio = float(low["ratio"])
        # lower is worse. "act" below the act level when the gap is not chance (the ratio's
        # 95 % interval lies wholly below 1): with a handful of selections a ratio of 0.5 is
        # noise, and an alert on noise would fire on every batch; below it by chance: "watch"
        significant = bool(low["significant"])
        below = ratio < t.adverse_impact_act
        state = (
            "act"
            if below and significant
            else "watch"
            if below or ratio < t.adverse_impact_watch
            else "ok"
        )
        detail = (
            f"{low['group']} selected at {low['selection_rate']:.1%} vs {low['reference']} at "
            f"{compared['selection_rate'].max():.1%} (ratio {ratio:.2f}; four-fifths rule "
            f"{t.adverse_impact_act:g}; 95 % interval {low['ratio_low']:.2f}-"
            f"{low['ratio_high']:.2f}, {'significant' if significant else 'within chance'})"
        )
        result.items.append(
            _item(
                "adverse_impact", f"{action} by {attribute}", "lowest ratio", ratio, state, detail
            )
        )


def monitor_frame(
    bundle: Any, raw: pd.DataFrame, thresholds: Thresholds | None = None
) -> MonitorResult:
    """Validate, score and compare a raw batch (as `read_table` returns it) with the bundle's
    reference; realised metrics when the batch has `Attrition_Flag`. DataError when no row is
    usable or the bundle has no reference."""
    from nba.data.validate import validate

    if not bundle.reference:
        raise NbaError("The bundle has no monitoring reference: rebuild it with `nba train`.")
    checked = validate(raw)
    if checked.clean.empty:
        raise DataError(f"no usable row: all {checked.n_in:,} rows failed validation")
    scores = bundle.score(checked.clean)
    result = compare(bundle.reference, checked.clean, scores, thresholds, len(checked.rejects))
    catalogue = bundle.action_catalogue if bundle.catalogue else None
    if catalogue is not None:
        adverse_impact_items(
            result, checked.clean, scores, catalogue.credit_ids, bundle.protected, thresholds
        )
    if schema.TARGET in checked.clean.columns:
        promised = bundle.metadata.get("metrics", {}).get("churn", {})
        realised_metrics(
            result,
            checked.clean[schema.TARGET].to_numpy(),
            scores["churn_probability"].to_numpy(),
            bundle.threshold,
            promised,
            thresholds,
        )
    result.synthetic = bool(bundle.metadata.get("synthetic"))
    result.bundle_created = str(bundle.metadata.get("created", ""))
    log.info("monitored %d rows: status %s", result.rows_in, result.status)
    return result


# --- the report -------------------------------------------------------------------------------

_COLOURS = {"ok": "#d8f0d8", "watch": "#ffe9a8", "act": "#f7b4b4"}


def _png(fig: Any) -> str:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def psi_chart(result: MonitorResult, thresholds: Thresholds) -> Any:
    """Horizontal bars: PSI per feature, with the watch and act levels as lines."""
    from matplotlib.figure import Figure

    feats = [i for i in result.items if i["kind"] == "feature"]
    fig = Figure(figsize=(7, 0.3 * len(feats) + 1.2))
    ax = fig.subplots()
    colours = {"ok": "#4c9a4c", "watch": "#d9a400", "act": "#c0392b"}
    ax.barh(
        [i["name"] for i in feats],
        [i["value"] for i in feats],
        color=[colours[i["status"]] for i in feats],
    )
    ax.axvline(thresholds.psi_watch, color="#d9a400", linestyle="--", label="watch")
    ax.axvline(thresholds.psi_act, color="#c0392b", linestyle="--", label="act")
    ax.invert_yaxis()
    ax.set_xlabel("PSI (unitless)")
    ax.set_title("Population stability index per feature, batch vs training reference")
    ax.legend(loc="lower right")
    return fig


def score_chart(result: MonitorResult) -> Any:
    """Bars: share of customers per churn-probability bin, reference vs batch."""
    from matplotlib.figure import Figure

    edges = result.charts["score_edges"]
    bounds = [0.0, *edges, 1.0]
    labels = [f"{lo:.3f}–{hi:.3f}" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    x = np.arange(len(labels))
    fig = Figure(figsize=(8, 3.8))
    ax = fig.subplots()
    ax.bar(x - 0.2, result.charts["score_reference"], width=0.4, label="reference", color="#7f8fa6")
    ax.bar(x + 0.2, result.charts["score_batch"], width=0.4, label="batch", color="#2e86de")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("churn probability bin (reference deciles)")
    ax.set_ylabel("share of customers")
    ax.set_title("Score distribution: reference vs batch")
    ax.legend()
    return fig


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def render_html(result: MonitorResult, thresholds: Thresholds, source: str = "") -> str:
    """The self-contained report: banner, summary table with status colours, two charts."""
    e = html.escape
    rows = "\n".join(
        f'<tr style="background:{_COLOURS[i["status"]]}"><td>{e(i["kind"])}</td>'
        f"<td>{e(i['name'])}</td><td>{e(i['measure'])}</td>"
        f"<td>{_fmt(i['value'])}</td>"
        f"<td><b>{e(i['status'])}</b></td><td>{e(i['detail'])}</td></tr>"
        for i in result.items
    )
    banner = (
        '<div class="synthetic">SYNTHETIC DATA: this bundle learnt from generated customers, '
        "not real ones; drift figures show the method, not the bank.</div>"
        if result.synthetic
        else ""
    )
    metrics = ""
    if result.metrics:
        cells = "".join(
            f"<tr><td>{e(k)}</td><td>{v:.4f}</td></tr>"
            for k, v in result.metrics.items()
            if k != "n"
        )
        metrics = f"<h2>Realised performance ({result.metrics['n']:,} labelled)</h2><table>{cells}</table>"
    notes = "".join(f"<li>{e(n)}</li>" for n in result.notes)
    psi_png = _png(psi_chart(result, thresholds))
    score_png = _png(score_chart(result))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nba monitor: {e(result.status)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #999; padding: 3px 8px; }}
.synthetic {{ background: #c0392b; color: white; font-size: 1.5em; font-weight: bold;
  padding: 0.6em; margin-bottom: 1em; }}
</style></head><body>
{banner}
<h1>Drift report — overall status: {e(result.status.upper())}</h1>
<p>Input {e(source)}: {result.rows_in:,} rows, {result.rows_scored:,} scored,
{result.rows_rejected:,} rejected. Bundle created {e(result.bundle_created)}.
PSI watch {thresholds.psi_watch:g}, act {thresholds.psi_act:g}.</p>
<h2>Summary</h2>
<table id="summary"><tr><th>kind</th><th>item</th><th>measure</th><th>value</th><th>status</th>
<th>detail</th></tr>
{rows}
</table>
{metrics}
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<h2>PSI per feature</h2>
<img alt="PSI per feature" src="data:image/png;base64,{psi_png}">
<p>Bars past the dashed lines are at watch or act.</p>
<h2>Score distribution</h2>
<img alt="score distribution" src="data:image/png;base64,{score_png}">
<p>Share of customers in each churn-probability bin of the training reference (deciles).</p>
</body></html>
"""


def monitor_file(
    bundle_path: str | Path,
    input_path: str | Path,
    out: str | Path,
    thresholds: Thresholds | None = None,
) -> tuple[MonitorResult, Path, Path]:
    """The `nba monitor` edge: load bundle and batch, compare, write the HTML report and the
    JSON summary beside it (same name, .json). Returns the result and both paths."""
    from nba import report
    from nba.bundle import load_bundle
    from nba.data.io import read_table

    t = thresholds or load_thresholds()
    bundle = load_bundle(bundle_path)
    result = monitor_frame(bundle, read_table(input_path), t)
    out = Path(out)
    html_path = report.write_text(out, render_html(result, t, str(input_path)))
    summary = {**result.to_dict(), "input": str(input_path), "bundle": str(bundle_path)}
    summary["thresholds"] = asdict(t)
    json_path = report.write_json(out.with_suffix(".json"), summary)
    return result, html_path, json_path


# --- drifted batches for demonstrations and tests --------------------------------------------


def drifted_batch(
    rows: int,
    seed: int,
    add: Mapping[str, float] | None = None,
    scale: Mapping[str, float] | None = None,
    unknown: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """A synthetic Kaggle-format batch (`nba.data.synth.generate`) with deliberate drift that
    still validates.

    add: column → amount added (e.g. {"Months_Inactive_12_mon": 1}); scale: column → factor
    (e.g. {"Total_Trans_Ct": 0.7}); unknown: categorical → share of rows set to `Unknown`.
    Results are rounded for whole-number columns and clipped to `schema.BOUNDS`; changing
    Credit_Limit or Total_Revolving_Bal recomputes Avg_Open_To_Buy and Avg_Utilization_Ratio
    (balance capped at the limit) so the identities hold. The derived columns cannot be
    shifted themselves."""
    from nba.data import synth

    add, scale, unknown = dict(add or {}), dict(scale or {}), dict(unknown or {})
    for col in {*add, *scale}:
        if col not in schema.NUMERIC or col in _DERIVED:
            raise ValueError(f"{col} cannot be shifted: shift a drawn numeric column")
    for col in unknown:
        if UNKNOWN not in schema.CATEGORIES.get(col, ()):
            raise ValueError(f"{col} has no {UNKNOWN} category")
    df = synth.generate(rows, seed)
    for col in {*add, *scale}:
        x = df[col].to_numpy(dtype=float) * scale.get(col, 1.0) + add.get(col, 0.0)
        if col in schema.INTEGERS:
            x = np.round(x)
        lo, hi = schema.BOUNDS[col]
        df[col] = np.clip(x, lo, hi).astype(df[col].dtype)
    if {"Credit_Limit", "Total_Revolving_Bal"} & {*add, *scale}:
        limit = df["Credit_Limit"].to_numpy(dtype=float)
        balance = np.minimum(df["Total_Revolving_Bal"].to_numpy(dtype=float), np.floor(limit))
        df["Total_Revolving_Bal"] = balance.astype(df["Total_Revolving_Bal"].dtype)
        df["Avg_Open_To_Buy"] = limit - balance
        df["Avg_Utilization_Ratio"] = np.round(balance / limit, 3)
    rng = np.random.default_rng(seed)
    for col, share in unknown.items():
        df.loc[rng.random(len(df)) < share, col] = UNKNOWN
    return df
