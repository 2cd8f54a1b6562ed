"""How stage 2 was chosen: the prototype's KMeans baseline, the design search over feature
sets, transforms and k, the choice rule, and the tables notebook 05 shows beside them.

The baseline (`baseline`, `baseline_comparison`) reproduces the prototype: KMeans (k=3) on
Contacts_Count_12_mon, Credit_Limit, Total_Revolving_Bal and Avg_Utilization_Ratio,
standard-scaled and projected to 2 PCA components, silhouette measured in that 2-D space,
optionally with one-hot categoricals added before the projection.

Why this design (chosen by `choose_segmentation` from `compare_segmentations` on the training
split of the development data only; the held-out split is only reported):
- Compared: the prototype's four columns, all ten need columns, a six-column core, spend +
  utilisation, spend + revolver flag, amount + revolver flag; transforms log, none, quantile;
  k = 3…8; 48 candidates. Rich sets (6–10 columns) never separate well (silhouette 0.15–0.36 in
  their own space): the need columns are continuous and mostly unimodal. Spend on a log scale
  is multimodal (modes near $1.8k, $4.2k, $8k and $15k a year) and borrowing or not is a crisp
  behaviour, so spend × revolver gives clusters separated in their own space: silhouette 0.578
  at k=5, bootstrap ARI 0.995, Calinski–Harabasz 9,472; the inertia elbow is also at k=5.
  The binary flag is not what carries the score: within revolvers and within transactors the
  spend tiers alone have silhouette 0.58–0.59 (`silhouette_within_credit_groups`).
- Rule: keep candidates with k ≥ 4, silhouette ≥ 0.50, mean bootstrap ARI ≥ 0.95, every
  segment ≥ 5 % of customers and every segment ≥ 95 % one credit behaviour (revolver or
  transactor, so one offer fits the segment); among those prefer the candidate that describes
  the most needs (most features), then the highest silhouette. Churn plays no part: the
  segments are cut on needs, and whether they differ in churn is a finding measured afterwards
  on the held-out customers (the stage-2 criterion), not a filter that makes it true. The
  silhouette and stability floors are also success criteria; the selection applies them to
  training customers, the criteria are checked on held-out customers, where they can fail.
  Amount alone (k=5, silhouette 0.664) passes but drops transaction frequency; raw (unlogged)
  spend scores 0.603 but isolates only the top-spend tail and mixes revolvers with
  transactors (purity 87 %); k=4 also mixes them.
- Result: spend_revolver, log transform, k = 5. The segments differ in needs (high-spend
  revolvers with few products: cross-sell; everyday revolvers at 40 % utilisation: balance and
  rate offers; light or declining transactors: activation) and, as a consequence, in churn:
  3 % to 71 % on the training split.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.metrics import calinski_harabasz_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from nba.config import Settings
from nba.data import schema
from nba.segments.metrics import (
    bootstrap_ari,
    churn_rates,
    churn_ratio,
    json_float,
    purity,
    silhouette,
    silhouette_pca2,
)
from nba.segments.space import (
    BASELINE_FEATURES,
    FEATURE_SETS,
    fit_pipeline,
    make_pipeline,
    require_columns,
)

logger = logging.getLogger(__name__)

#: (feature set, transform) pairs `compare_segmentations` tries by default.
CANDIDATES: tuple[tuple[str, str], ...] = (
    ("original4", "none"),
    ("needs_all", "log"),
    ("needs_all", "quantile"),
    ("needs_core", "log"),
    ("spend_utilisation", "log"),
    ("spend_revolver", "log"),
    ("spend_revolver", "none"),
    ("amount_revolver", "log"),
)


#: Selection floors on cluster quality and actionability (see `choose_segmentation`). No floor
#: reads churn: a segmentation that differs in churn is a result to measure on held-out
#: customers (`nba.value.success_criteria`), not a property to select for.
MIN_K = 4
MIN_SILHOUETTE = 0.50
MIN_STABILITY = 0.95
MIN_SHARE = 0.05
MIN_PURITY = 0.95


@dataclass(frozen=True)
class BaselineResult:
    """The prototype's clustering: score in its 2-D PCA space and one row per group.

    groups: group (0 = lowest churn), size, share, churn_rate and the median of each of the
    four features; labels: the group of every input row.
    """

    categoricals: bool
    silhouette_pca2: float
    groups: pd.DataFrame
    labels: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "features": "numeric + one-hot categoricals" if self.categoricals else "numeric",
            "k": int(len(self.groups)),
            "silhouette_pca2": json_float(self.silhouette_pca2),
            "sizes": [int(s) for s in self.groups["size"]],
            "churn_rate": [json_float(r) for r in self.groups["churn_rate"]],
        }


def baseline(df: pd.DataFrame, settings: Settings, *, categoricals: bool = False) -> BaselineResult:
    """Reproduce the prototype on `df`: StandardScaler on `BASELINE_FEATURES` (+ one-hot
    categoricals if asked), PCA to 2 components, KMeans k=3; silhouette in the PCA space."""
    cols = list(BASELINE_FEATURES) + (list(schema.CATEGORICAL) if categoricals else [])
    require_columns(df, cols, "the baseline")
    parts: list[tuple[str, Any, list[str]]] = [
        ("numeric", StandardScaler(), list(BASELINE_FEATURES))
    ]
    if categoricals:
        parts.append(
            (
                "categorical",
                OneHotEncoder(sparse_output=False, dtype=float),
                list(schema.CATEGORICAL),
            )
        )
    pipe = Pipeline(
        [
            ("prepare", ColumnTransformer(parts)),
            ("pca", PCA(2, random_state=settings.seed)),
            ("kmeans", KMeans(n_clusters=3, n_init=10, random_state=settings.seed)),
        ]
    )
    raw = fit_pipeline(pipe, df[cols])[-1].labels_
    space = pipe[:-1].transform(df[cols])
    score = silhouette(space, raw, settings.seed)
    has_churn = schema.TARGET in df.columns
    if has_churn:
        rates = churn_rates(df[schema.TARGET].to_numpy(), raw, 3)
        order = np.argsort(rates, kind="stable")  # like the prototype: 8.1 %, 10.7 %, 30.3 %
    else:
        order = np.argsort(-np.bincount(raw, minlength=3), kind="stable")
    mapping = np.empty(3, dtype=int)
    mapping[order] = np.arange(3)
    labels = mapping[raw]
    sizes = np.bincount(labels, minlength=3)
    groups = pd.DataFrame({"group": np.arange(3), "size": sizes, "share": sizes / len(df)})
    groups["churn_rate"] = (
        churn_rates(df[schema.TARGET].to_numpy(), labels, 3) if has_churn else np.nan
    )
    medians = df[list(BASELINE_FEATURES)].groupby(labels).median()
    for c in BASELINE_FEATURES:
        groups[f"median_{c}"] = medians[c].to_numpy()
    return BaselineResult(categoricals, score, groups, labels)


def baseline_comparison(df: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The prototype's numeric-only vs numeric + one-hot comparison, one tidy row each:
    features, k, silhouette_pca2, churn per group (lowest to highest) and sizes."""
    rows = []
    for cats in (False, True):
        r = baseline(df, settings, categoricals=cats)
        row: dict[str, Any] = {
            "features": "numeric + one-hot categoricals" if cats else "numeric",
            "k": len(r.groups),
            "silhouette_pca2": r.silhouette_pca2,
        }
        for g in r.groups.itertuples():
            row[f"churn_rate_{g.group}"] = g.churn_rate
        for g in r.groups.itertuples():
            row[f"size_{g.group}"] = g.size
        rows.append(row)
    return pd.DataFrame(rows)


def evaluate_candidate(
    df: pd.DataFrame,
    settings: Settings,
    feature_set: str,
    transform: str,
    k: int,
    n_boot: int = 20,
) -> dict[str, Any]:
    """All selection measures for one (feature set, transform, k) on `df` (training data).
    Churn is not read, so `df` may carry it or not: the choice cannot depend on it."""
    pipe = fit_pipeline(make_pipeline(feature_set, transform, k, settings.seed), df)
    labels = pipe[-1].labels_
    space = pipe[:-1].transform(df)
    sizes = np.bincount(labels, minlength=k)
    aris = bootstrap_ari(pipe, df, labels, settings.seed, n_boot)
    row: dict[str, Any] = {
        "feature_set": feature_set,
        "transform": transform,
        "n_features": len(FEATURE_SETS[feature_set]),
        "k": k,
        "inertia": float(pipe[-1].inertia_),
        "silhouette": silhouette(space, labels, settings.seed),
        "silhouette_pca2": silhouette_pca2(space, labels, settings.seed),
        "calinski_harabasz": float(calinski_harabasz_score(space, labels)),
        "stability_ari": float(aris.mean()),
        "stability_ari_min": float(aris.min()),
        "smallest_share": float(sizes.min() / len(df)),
        "purity": purity(df["Total_Revolving_Bal"].to_numpy() > 0, labels, k),
    }
    return row


def compare_segmentations(
    df: pd.DataFrame,
    settings: Settings,
    candidates: Sequence[tuple[str, str]] = CANDIDATES,
    ks: Iterable[int] = range(3, 9),
    n_boot: int = 20,
    progress: bool = True,
) -> pd.DataFrame:
    """Tidy table, one row per (feature set, transform, k): inertia (elbow), silhouette in
    the clustering space and in 2-D PCA, Calinski–Harabasz, bootstrap ARI (mean, min),
    smallest segment share and credit-behaviour purity. Churn is not among them.

    Run it on the training split only. About `n_boot` + 1 KMeans fits per row."""
    grid = [(f, t, k) for f, t in candidates for k in ks]
    try:
        from tqdm.auto import tqdm

        it = tqdm(grid, desc="segmentations", disable=not progress)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        it = grid
    rows = []
    for f, t, k in it:
        rows.append(evaluate_candidate(df, settings, f, t, k, n_boot))
        logger.info("candidate %s/%s k=%d: %s", f, t, k, rows[-1])
    return pd.DataFrame(rows)


def elbow_k(table: pd.DataFrame) -> int:
    """The elbow of an inertia curve (one candidate's rows): the k farthest below the straight
    line from the first to the last point, on min–max-scaled axes (the 'kneedle' idea)."""
    t = table.sort_values("k")
    k = t["k"].to_numpy(dtype=float)
    y = t["inertia"].to_numpy(dtype=float)
    if len(k) < 3:
        return int(k[0])
    kn = (k - k[0]) / (k[-1] - k[0])
    yn = (y - y.min()) / (y.max() - y.min()) if y.max() > y.min() else np.zeros_like(y)
    line = yn[0] + (yn[-1] - yn[0]) * kn
    return int(k[np.argmax(line - yn)])


@dataclass(frozen=True)
class Choice:
    """The chosen segmentation and why, from a comparison table."""

    feature_set: str
    transform: str
    k: int
    row: dict[str, Any]
    eligible: pd.DataFrame
    rationale: str


def eligibility(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table with one boolean column per floor and `eligible` (all of them)."""
    t = table.copy()
    t["ok_k"] = t["k"] >= MIN_K
    t["ok_silhouette"] = t["silhouette"] >= MIN_SILHOUETTE
    t["ok_stability"] = t["stability_ari"] >= MIN_STABILITY
    t["ok_size"] = t["smallest_share"] >= MIN_SHARE
    t["ok_purity"] = t["purity"] >= MIN_PURITY
    oks = [c for c in t.columns if c.startswith("ok_")]
    t["eligible"] = t[oks].all(axis=1)
    return t


def choose_segmentation(table: pd.DataFrame) -> Choice:
    """Pick from `compare_segmentations` output: among rows meeting every floor
    (`eligibility`), the feature set describing the most needs, then the highest silhouette,
    then the higher Calinski–Harabasz. Raises if nothing qualifies."""
    t = eligibility(table)
    ok = t[t["eligible"]].sort_values(
        ["n_features", "silhouette", "calinski_harabasz"], ascending=[False, False, False]
    )
    if ok.empty:
        raise ValueError(
            "no candidate segmentation meets every floor; relax them or add candidates"
        )
    best = ok.iloc[0].to_dict()
    same = t[(t["feature_set"] == best["feature_set"]) & (t["transform"] == best["transform"])]
    elbow = elbow_k(same)
    best_sil = t.loc[t["silhouette"].idxmax()]
    failed = [c.removeprefix("ok_") for c in t.columns if c.startswith("ok_") and not best_sil[c]]
    is_best = (
        best_sil["feature_set"] == best["feature_set"]
        and best_sil["transform"] == best["transform"]
        and int(best_sil["k"]) == int(best["k"])
    )
    if is_best:
        why_not = "is this choice."
    elif failed:
        why_not = f"misses the floor(s) on {', '.join(failed)}."
    else:
        why_not = f"describes fewer needs ({int(best_sil['n_features'])} features)."
    rich = t.sort_values("n_features", ascending=False).iloc[0]
    rich_best = t[t["feature_set"] == rich["feature_set"]]["silhouette"].max()
    rationale = (
        f"Chosen: {best['feature_set']} ({', '.join(FEATURE_SETS[best['feature_set']])}), "
        f"transform {best['transform']}, k={int(best['k'])}. On the training data it scores "
        f"silhouette {best['silhouette']:.3f} in its own space ({best['silhouette_pca2']:.3f} "
        f"in 2-D PCA), Calinski–Harabasz {best['calinski_harabasz']:,.0f}, bootstrap ARI "
        f"{best['stability_ari']:.3f} (worst {best['stability_ari_min']:.3f}), smallest segment "
        f"{best['smallest_share']:.0%}, credit-behaviour purity {best['purity']:.0%}. "
        f"{int(t['eligible'].sum())} of {len(t)} candidates meet every floor (k ≥ {MIN_K}, "
        f"silhouette ≥ {MIN_SILHOUETTE}, ARI ≥ {MIN_STABILITY}, segments ≥ {MIN_SHARE:.0%}, "
        f"purity ≥ {MIN_PURITY:.0%}; churn is not read); "
        f"among them it describes the most needs ({int(best['n_features'])} features) with the "
        f"best silhouette. The richest set ({rich['feature_set']}, {int(rich['n_features'])} "
        f"features) reaches only silhouette {rich_best:.3f}; the highest silhouette overall "
        f"({best_sil['silhouette']:.3f}, {best_sil['feature_set']}/{best_sil['transform']} "
        f"k={int(best_sil['k'])}) {why_not}"
        + f" The inertia elbow of the chosen feature set is at k={elbow}."
    )
    return Choice(
        feature_set=str(best["feature_set"]),
        transform=str(best["transform"]),
        k=int(best["k"]),
        row=best,
        eligible=t,
        rationale=rationale,
    )


#: The prototype's published figures, quoted from its report (not computed by this project):
#: KMeans k=3 on `BASELINE_FEATURES`, silhouette in 2-D PCA, churn per group lowest first, on
#: the full public file. Its main run and its numeric vs one-hot comparison quote slightly
#: different silhouettes (0.497 and 0.496).
PROTOTYPE_CLAIMS: dict[str, float] = {
    "silhouette_pca2": 0.497,
    "churn_rate_0": 0.081,
    "churn_rate_1": 0.107,
    "churn_rate_2": 0.303,
    "silhouette_pca2_numeric": 0.496,
    "silhouette_pca2_one_hot": 0.491,
}


def baseline_silhouette_own_space(
    df: pd.DataFrame, result: BaselineResult, settings: Settings
) -> float:
    """Silhouette of the numeric baseline's groups in the space it clusters before its PCA:
    `BASELINE_FEATURES` standard-scaled (4 dimensions). `result` is `baseline(df, settings)`."""
    require_columns(df, BASELINE_FEATURES, "the baseline")
    space = StandardScaler().fit_transform(df[list(BASELINE_FEATURES)].to_numpy(np.float64))
    return silhouette(space, result.labels, settings.seed)


def baseline_vs_prototype(
    numeric: BaselineResult, one_hot: BaselineResult, own_space_silhouette: float
) -> pd.DataFrame:
    """The prototype's published figures (`PROTOTYPE_CLAIMS`) beside this run's, one row per
    measure, as display text: silhouettes, churn and size per group (lowest churn first), the
    churn ratio (highest ÷ lowest group) and the numeric vs numeric + one-hot comparison."""
    c = PROTOTYPE_CLAIMS
    g = numeric.groups
    rows = [
        (
            "Silhouette in 2-D PCA (numeric)",
            f"{c['silhouette_pca2']:.3f}",
            f"{numeric.silhouette_pca2:.3f}",
        ),
        ("Silhouette in its own scaled 4-D space", "not published", f"{own_space_silhouette:.3f}"),
    ]
    rows += [
        (f"Churn rate, group {r.group}", f"{c[f'churn_rate_{r.group}']:.1%}", f"{r.churn_rate:.1%}")
        for r in g.itertuples()
    ]
    rows += [
        (
            "Churn ratio, highest ÷ lowest group",
            f"{c['churn_rate_2'] / c['churn_rate_0']:.1f} (from its rates)",
            f"{churn_ratio(g['churn_rate'].to_numpy(dtype=float)):.1f}",
        ),
        ("Customers per group", "not published", " / ".join(f"{s:,}" for s in g["size"])),
        (
            "Comparison: silhouette in 2-D PCA, numeric",
            f"{c['silhouette_pca2_numeric']:.3f}",
            f"{numeric.silhouette_pca2:.3f}",
        ),
        (
            "Comparison: silhouette in 2-D PCA, numeric + one-hot categoricals",
            f"{c['silhouette_pca2_one_hot']:.3f}",
            f"{one_hot.silhouette_pca2:.3f}",
        ),
    ]
    return pd.DataFrame(rows, columns=["measure", "prototype (published)", "this run"]).set_index(
        "measure"
    )


def design_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per design (feature set, transform) of a `compare_segmentations` table: its
    number of features, its inertia elbow, silhouette / Calinski–Harabasz / bootstrap ARI at that k, its
    best silhouette (and k), the ks meeting every floor (`eligibility`) and the floors missed at
    the elbow k: what rules the design out at its natural number of segments."""
    t = eligibility(table)
    oks = [c for c in t.columns if c.startswith("ok_")]
    rows = []
    for (feature_set, transform), part in t.groupby(["feature_set", "transform"], sort=False):
        elbow = elbow_k(part)
        at = part.set_index("k").loc[elbow]
        best = part.loc[part["silhouette"].idxmax()]
        eligible = part.loc[part["eligible"], "k"].astype(int).tolist()
        rows.append(
            {
                "feature_set": feature_set,
                "transform": transform,
                "n_features": len(FEATURE_SETS[feature_set]),
                "elbow_k": elbow,
                "silhouette_at_elbow": round(float(at["silhouette"]), 3),
                "calinski_harabasz_at_elbow": round(float(at["calinski_harabasz"])),
                "stability_ari_at_elbow": round(float(at["stability_ari"]), 3),
                "best_silhouette": f"{best['silhouette']:.3f} (k={int(best['k'])})",
                "k_meeting_every_floor": ", ".join(map(str, eligible)) or "none",
                "floors_missed_at_elbow": ", ".join(c.removeprefix("ok_") for c in oks if not at[c])
                or "none",
            }
        )
    return pd.DataFrame(rows).set_index(["feature_set", "transform"])


def targets_caption(
    targets: pd.DataFrame, metrics: dict[str, Any], baseline_pca2: float, customers: int
) -> str:
    """The markdown under notebook 05's stage-2 targets (`nba.evaluation.criterion_evidence`
    rows indexed by metric): each held-out measurement with its interval and verdict, the
    number of segments as a rule of the selection, and the training-customer figures beside."""
    from nba.value import HELD_OUT

    rows = targets[targets["basis"] == HELD_OUT]
    verdicts = "; ".join(
        f"{metric} {row.measured:.3g} (95 % interval {row.ci_low:.3g} to {row.ci_high:.3g}) "
        f"{row.comparison} {row.target:g}: **{row.status}**, {row.evidence}"
        for metric, row in rows.iterrows()
    )
    return (
        f"**On the {customers:,} held-out customers, {int((rows.status == 'met').sum())} of "
        f"{len(rows)} measured targets are met.** {verdicts}. The number of segments "
        f"({metrics['k']}) holds **by design**: the selection keeps only k ≥ {MIN_K}. Also "
        f"measured: on the training customers, silhouette {metrics['silhouette']:.3f} "
        f"({metrics['silhouette_pca2']:.3f} in 2-D PCA, the prototype's way; baseline "
        f"{baseline_pca2:.3f}) and bootstrap ARI {metrics['stability_ari']:.3f} over "
        f"{metrics['n_bootstrap']} resamples (worst {metrics['stability_ari_min']:.3f}); "
        f"{metrics['silhouette_within_credit_groups']:.3f} within revolvers and within "
        "transactors, so the score is not carried by the binary flag alone."
    )
