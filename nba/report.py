"""Every file a run writes into `reports/`: figures, metrics JSON, and the list of files written.

Notebooks call these so that names and places are the same everywhere; writes are atomic so a
failed run never leaves a half-written file.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nba.config import Settings

if TYPE_CHECKING:
    import matplotlib.figure

log = logging.getLogger(__name__)

FIGURES = "figures"
METRICS = "metrics"


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` so that readers see the old file or the whole new one, never a part: a
    uniquely named temporary file beside it (concurrent writers do not share it), then one
    rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays, paths and tuples as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def library_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Python's and each installed distribution's version, for run summaries and bundles."""
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    text = json.dumps(_jsonable(payload), indent=2, sort_keys=False) + "\n"
    return atomic_write_bytes(Path(path), text.encode("utf-8"))


def write_metrics(name: str, metrics: dict[str, Any], settings: Settings) -> Path:
    """`reports/metrics/<name>.json`: the figures a notebook computed, for tests and the bundle."""
    path = write_json(settings.path("reports_dir") / METRICS / f"{name}.json", metrics)
    log.info("metrics written to %s", path)
    return path


def read_metrics(name: str, settings: Settings) -> dict[str, Any]:
    return json.loads((settings.path("reports_dir") / METRICS / f"{name}.json").read_text())


def figure_alt(fig: matplotlib.figure.Figure) -> str:
    """A figure's alternative text for people who cannot see it: its title (suptitle, else the
    axes' titles) and what its axes show."""
    parts = []
    title = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    parts.append(title or "; ".join(titles) or "Figure")
    axes = [
        f"{ax.get_xlabel()} against {ax.get_ylabel()}"
        for ax in fig.axes
        if ax.get_xlabel() and ax.get_ylabel()
    ]
    if axes:
        parts.append("axes: " + "; ".join(dict.fromkeys(axes)))
    return ". ".join(parts)


def save_figure(fig: matplotlib.figure.Figure, name: str, settings: Settings) -> Path:
    """`reports/figures/<name>.png` at a resolution fit for a slide; returns the path.

    The figure then also shows itself when a notebook cell ends with it, with alternative
    text: our figures are bare `Figure`s (no pyplot), for which IPython has no image formatter
    unless pyplot's inline backend happened to start, so a cell ending in `fig` printed
    "<Figure size 500x420 with 1 Axes>" in the reports. The saved PNG is what is shown."""
    import base64
    import html

    path = settings.path("reports_dir") / FIGURES / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    data = path.read_bytes()
    alt = html.escape(figure_alt(fig), quote=True)
    encoded = base64.b64encode(data).decode()
    # instance attributes: IPython looks _repr_*_ up on the object, so only saved figures change
    fig._repr_html_ = lambda: (  # type: ignore[attr-defined]
        f'<img src="data:image/png;base64,{encoded}" alt="{alt}" style="max-width:100%">'
    )
    fig._repr_png_ = lambda: data  # type: ignore[attr-defined]
    return path


def files_written(settings: Settings, since: float) -> list[str]:
    """Files under the reports folder modified at or after `since` (a time.time() value),
    relative to it, sorted: the last cell of every notebook lists them."""
    root = settings.path("reports_dir")
    if not root.exists():
        return []
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime >= since
    )


SPLIT_COLUMN = "split"


def save_split(ids_train: Any, ids_test: Any, settings: Settings) -> Path:
    """Persist the held-out split as customer ids with `train`/`test`, so later notebooks use
    exactly the customers notebook 03 set aside (ids only: no customer data in reports)."""
    import pandas as pd

    from nba.data import schema

    frame = pd.concat(
        [
            pd.DataFrame({schema.ID: list(ids_train), SPLIT_COLUMN: "train"}),
            pd.DataFrame({schema.ID: list(ids_test), SPLIT_COLUMN: "test"}),
        ],
        ignore_index=True,
    )
    return atomic_write_bytes(settings.path("split_file"), frame.to_csv(index=False).encode())


def load_split(df: Any, settings: Settings) -> tuple[Any, Any]:
    """(train, test) parts of `df` by the persisted split; every id must be in the split."""
    import pandas as pd

    from nba.data import schema
    from nba.errors import NbaError

    path = settings.path("split_file")
    if not path.exists():
        raise NbaError(f"No split at {path}: run notebook 03_data_preparation first.")
    split = pd.read_csv(path)
    side = df[schema.ID].map(dict(zip(split[schema.ID], split[SPLIT_COLUMN], strict=True)))
    if side.isna().any():
        raise NbaError(
            f"{int(side.isna().sum())} customers are not in the split at {path}: "
            "the data changed since notebook 03 ran; run the pipeline from the start."
        )
    train = df[side.eq("train").to_numpy()].reset_index(drop=True)
    test = df[side.eq("test").to_numpy()].reset_index(drop=True)
    return train, test


def _money(amount: float) -> str:
    """Dollars for markdown read by Jupyter and by the app: the `$` escaped (no maths)."""
    return f"{'-' if amount < 0 else ''}\\${abs(amount):,.0f}"


def _lineage_lines(metadata: dict[str, Any]) -> list[str]:
    lineage = metadata.get("lineage") or {}
    metrics = metadata["metrics"]
    if not lineage:
        return []
    where = f" (`{lineage['file']}`)" if lineage.get("file") else ""
    return [
        f"- Built from the choices of the {lineage.get('origin', 'unknown origin')}{where}; "
        f"it holds {metrics.get('models', 'the evaluated models')}.",
    ]


#: The churn model's feature variants (the setting `churn_features`) for a business reader.
FEATURE_SET_MEANING = {
    "full": "the whole customer record, 12-month behaviour included (the most accurate score, "
    "but partly a description of leaving rather than a warning of it)",
    "trend": "the customer's profile and the Q4/Q1 trend of spend and transactions only "
    "(an earlier warning, at a stated cost in accuracy: notebook 04)",
    "early_warning": "the customer's profile only, no 12-month behaviour (the earliest warning, "
    "at a large cost in accuracy: notebook 04)",
}

#: Each metric of the model card in one sentence for a business reader.
METRIC_MEANING = {
    "roc_auc": "chance the model ranks a random leaver above a random stayer (0.5 = guessing, 1 = perfect)",
    "pr_auc": "how precise the flags stay as more leavers are caught (the churn rate = guessing, 1 = perfect)",
    "f1": "balance of precision and recall at the chosen threshold (0 to 1)",
    "precision": "share of flagged customers who really leave",
    "recall": "share of leavers the model flags",
    "ece": "average gap between predicted and observed churn rates (0 = probabilities to be trusted as they are)",
    "silhouette": "how clearly the segments are apart (-1 to 1; above about 0.25 is distinct)",
    "stability_ari": "how much the same segments come back on resampled customers (0 = chance, 1 = identical)",
    "silhouette_test": "how clearly the segments are apart on held-out customers (-1 to 1)",
    "stability_ari_test": "how much refitted segments assign held-out customers alike (1 = identical)",
    "churn_ratio": "churn of the riskiest segment divided by the safest's",
    "churn_ratio_high_low": "churn of the riskiest segment divided by the safest's",
}


def _criteria_lines(metrics: dict[str, Any]) -> list[str]:
    from nba.value import NOT_MEASURED, SIMULATION, check_criteria

    seg = metrics["segments"]
    measured = {
        "churn": metrics["churn"],
        "segments": {**seg, "churn_ratio_high_low": seg.get("churn_ratio")},
        "actions": metrics.get("actions", {}),
    }
    lines = [
        "| stage | metric | measured | target | basis | status | what it means |",
        "|---|---|---|---|---|---|---|",
    ]
    checked = check_criteria(measured)
    for row in checked.itertuples():
        if row.status == "not measured":
            shown = "—"
        elif row.stage == "actions":
            shown = _money(row.measured)
        else:
            shown = (
                f"{row.measured:.0f}" if float(row.measured).is_integer() else f"{row.measured:.4f}"
            )
        lines.append(
            f"| {row.stage} | {row.metric} | {shown} | {row.comparison} {row.target:g} | "
            f"{row.basis} | {row.status} | {METRIC_MEANING.get(row.metric, '')} |"
        )
    lines.append(
        ""
        if (checked["status"] != "not met").all()
        else '\n"not met" means the held-out result misses the target the business set in '
        "notebook 01: the model still works, but that promise is not kept on this data."
    )
    simulated = checked[(checked["basis"] == SIMULATION) & (checked["status"] != NOT_MEASURED)]
    if len(simulated):
        lines.append(
            "\nThe action figures are an assumption-based simulation on every customer: the engine "
            'and its baselines share the same assumed save rates, so they cannot be "met" until a '
            "campaign with a control group measures outcomes (notebook 07 gives the verdict per stage)."
        )
    return lines


def _stage1_lines(stage1: dict[str, Any]) -> list[str]:
    if not stage1:
        return []
    lines = [
        "",
        "## Stage 1 against default learners (same held-out customers, same run)",
        "| model | PR-AUC | F1 | threshold |",
        "|---|---|---|---|",
    ]
    for name, row in stage1["models"].items():
        lines.append(f"| {name} | {row['pr_auc']:.4f} | {row['f1']:.4f} | {row['threshold']:.3f} |")
    lines += [
        "",
        f"Leads of the chosen model, with paired bootstrap {stage1['level']:.0%} intervals "
        f"({stage1['n_boot']} resamples):",
        "",
        "| against | metric | lead | interval |",
        "|---|---|---|---|",
    ]
    for r in stage1["leads"]:
        lines.append(
            f"| {r['baseline']} | {r['metric']} | {r['lead']:+.4f} | "
            f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] |"
        )
    return lines


def _actions_lines(actions: dict[str, Any]) -> list[str]:
    if not actions:
        return []
    return [
        "",
        "## Next best actions (simulated on every customer of the data)",
        f"- Expected net value {_money(actions['expected_net_value'])} from contacting "
        f"{actions['customers_contacted']:,} of {actions['customers']:,} customers at a cost of "
        f"{_money(actions['cost'])}.",
        f"- Gain over doing nothing {_money(actions['net_value_uplift_vs_no_action'])}; over one "
        f"retention offer to every flagged customer "
        f"{_money(actions['net_value_uplift_vs_churn_score_one_offer'])}; over a random "
        f"allowed action {_money(actions['net_value_uplift_vs_random_action'])}.",
    ]


def _fairness_lines(fairness: dict[str, Any], churn: dict[str, Any]) -> list[str]:
    """Responsible decisioning: the protected attributes, the default, the blind model's cost on
    held-out customers and the adverse impact of the credit actions, all from the metadata."""
    if not fairness:
        return []
    blind = fairness["credit_churn"]
    keeps = fairness["churn_keeps_protected"]
    lines = [
        "",
        "## Responsible decisioning",
        f"- Protected attributes (params/protected.yaml): {', '.join(fairness['protected'])}.",
        f"- Credit actions ({', '.join(fairness['credit_actions'])}) are ruled and valued on a "
        "churn model fitted without them; a catalogue whose credit-action rule names one is "
        "refused, and their reasons quote none.",
        f"- The main churn model {'keeps' if keeps else 'leaves out'} them for retention "
        f"marketing (setting `churn_keeps_protected = {keeps}`, the default: the model the study "
        "chose; the cost of removing them is measured in notebook 04).",
        f"- Held-out ROC-AUC {churn['roc_auc']:.4f} with them, {blind['roc_auc']:.4f} without; "
        f"PR-AUC {churn['pr_auc']:.4f} with, {blind['pr_auc']:.4f} without.",
        f"- Adverse impact on {fairness['customers']:,} held-out customers (lowest selection-rate "
        f"ratio to the most-selected group; below {fairness['four_fifths']:g} fails the "
        "four-fifths rule):",
        "",
        "| action | attribute | lowest group | ratio | four-fifths |",
        "|---|---|---|---|---|",
    ]
    credit = [r for r in fairness["adverse_impact"] if r["action"] in fairness["credit_actions"]]
    for r in credit:
        verdict = "passes" if r["passes"] else "**fails**"
        if not r["passes"]:
            chance = not r.get("significant", True)
            verdict += " (within chance)" if chance else " (significant)"
        lines.append(
            f"| {r['action']} | {r['attribute']} | {r['lowest_group']} | {r['min_ratio']:.2f} "
            f"| {verdict} |"
        )
    return lines


def model_card(metadata: dict[str, Any], profiles: Any, threshold: float) -> str:
    """The model card as Markdown, from a bundle's metadata and its segment profiles: what the
    model is for, the data it learnt from (loudly if synthetic), which choices it was built from,
    what it promises (every figure read from the metadata, none recomputed), its limits."""
    data, metrics = metadata["data"], metadata["metrics"]
    churn, seg = metrics["churn"], metrics["segments"]
    lines = ["# Model card — nba next best action", ""]
    if metadata.get("synthetic"):
        lines += [
            "> ⚠️ **SYNTHETIC DATA.** This bundle learnt from generated customers calibrated to "
            "the public Kaggle file, not from real ones. Its figures show the method, not the bank.",
            "",
        ]
    lines += [
        "## Model details",
        f"- Bundle format {metadata['format_version']}, created {metadata['created']} (UTC).",
        *_lineage_lines(metadata),
        f"- Stage 1 churn model: {churn.get('model', 'LightGBM')}, calibration "
        f"{churn.get('calibration', '—')}, threshold {threshold:.3f} by the "
        f"{churn.get('threshold_rule', '—')} rule: customers with a churn probability at or above "
        f"{threshold:.1%} are flagged.",
        f"- Churn model inputs: {FEATURE_SET_MEANING.get(churn.get('features', 'full'), churn.get('features'))}.",
        f"- Stage 2 segmentation: {seg['k']} segments.",
        "- Libraries: "
        + ", ".join(f"{k} {v}" for k, v in sorted(metadata["libraries"].items()))
        + ".",
        "",
        "## Intended use",
        "Rank a bank's credit-card customers by risk of leaving, place each in a needs-based "
        "segment and support retention decisions by people. Its credit offers (limit increase, "
        "card upgrade, instalment plan) are proposals decided without protected attributes; "
        "underwriting stays with the bank's credit process. Not for pricing or any automated "
        "decision about a customer without review.",
        "",
        "## Data",
        f"- Source: `{data['path']}` ({data['origin']}), {data['rows']:,} rows, "
        f"sha256 `{data['sha256']}`, {'SYNTHETIC' if data['synthetic'] else 'real'}.",
        f"- Evaluation: {metrics.get('evaluation', '')}",
        "",
        "## Metrics (held-out customers)",
        "| metric | value | what it means |",
        "|---|---|---|",
        *(
            f"| {m} | {churn[m]:.4f} | {METRIC_MEANING[m]} |"
            for m in ("roc_auc", "pr_auc", "f1", "precision", "recall", "ece")
            if m in churn
        ),
        *(
            f"| {m} | {seg[m]:.4f} | {METRIC_MEANING[m]} |"
            for m in ("silhouette", "stability_ari", "churn_ratio")
            if seg.get(m) is not None
        ),
        "",
        "## Success criteria",
        *_criteria_lines(metrics),
        *_stage1_lines(metrics.get("stage1", {})),
        *_actions_lines(metrics.get("actions", {})),
        *_fairness_lines(metrics.get("fairness", {}), churn),
    ]
    held_out = {int(r["id"]): r.get("churn_rate_test") for r in seg.get("segments", [])}
    lines += [
        "",
        "## Segments",
        "| id | name | share | churn rate (training) | churn rate (held-out) |",
        "|---|---|---|---|---|",
    ]
    for row in profiles.itertuples():
        test_rate = held_out.get(int(row.segment))
        shown = "—" if test_rate is None else f"{test_rate:.1%}"
        lines.append(
            f"| {row.segment} | {row.name} | {row.share:.1%} | {row.churn_rate:.1%} | {shown} |"
        )
    lines += [
        "",
        "## Limitations",
        "- The 12-month behaviour columns (transaction count and amount, their Q4/Q1 change, "
        "inactivity) may overlap the churn event itself: a customer already leaving spends "
        "less. Scores are strongest as a description of disengagement, weaker as an early warning.",
        "- Small groups (e.g. Platinum cards) have few customers: their rates are uncertain.",
        "- Value figures rest on stated assumptions (params/default.yaml), not on revenue data.",
    ]
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(Path(path), text.encode("utf-8"))
