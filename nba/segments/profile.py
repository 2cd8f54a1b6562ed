"""What a segment is like and what it is called: per-segment profiles against the whole base,
rule-based names ("Everyday revolvers, few products") and descriptions, and the caption under
a profile chart. Names and descriptions follow the data when it or the seed changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nba.data import schema
from nba.segments.metrics import churn_rates
from nba.segments.space import REVOLVER, require_columns, source_columns

if TYPE_CHECKING:
    from nba.segments.model import Segmenter

#: Columns a segment is profiled on: (column, label with unit, number format).
PROFILE_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("Total_Trans_Amt", "Spend, 12 months ($)", "${:,.0f}"),
    ("Total_Trans_Ct", "Transactions, 12 months (count)", "{:,.0f}"),
    (REVOLVER, "Carries a revolving balance (share)", "{:.0%}"),
    ("Total_Revolving_Bal", "Revolving balance ($)", "${:,.0f}"),
    ("Avg_Utilization_Ratio", "Utilisation (share of limit)", "{:.0%}"),
    ("Credit_Limit", "Credit limit ($)", "${:,.0f}"),
    ("Total_Relationship_Count", "Products held (count)", "{:.0f}"),
    ("Months_Inactive_12_mon", "Inactive months, 12 months (count)", "{:.0f}"),
    ("Contacts_Count_12_mon", "Contacts with the bank, 12 months (count)", "{:.0f}"),
    ("Total_Ct_Chng_Q4_Q1", "Transactions Q4 ÷ Q1 (ratio)", "{:.2f}"),
    ("Total_Amt_Chng_Q4_Q1", "Spend Q4 ÷ Q1 (ratio)", "{:.2f}"),
    ("Months_on_book", "Tenure (months)", "{:.0f}"),
    ("Customer_Age", "Age (years)", "{:.0f}"),
)
PROFILE_COLUMNS = tuple(c for c, _, _ in PROFILE_FEATURES)

#: Spend tiers by the segment's median 12-month spend ÷ the base median (first match wins).
SPEND_TIERS: tuple[tuple[float, str], ...] = (
    (1.75, "High-spend"),
    (0.75, "Everyday"),
    (0.35, "Light"),
    (0.0, "Dormant"),
)
#: Secondary traits that may qualify a name: column → (label if above, label if below the base).
#: Utilisation and balance are left out: the revolver/transactor noun already says them.
QUALIFIERS: dict[str, tuple[str, str]] = {
    "Credit_Limit": ("high limit", "low limit"),
    "Total_Relationship_Count": ("many products", "few products"),
    "Months_Inactive_12_mon": ("often inactive", "rarely inactive"),
    "Contacts_Count_12_mon": ("frequent contacts", "rare contacts"),
    "Total_Ct_Chng_Q4_Q1": ("growing activity", "declining activity"),
    "Total_Amt_Chng_Q4_Q1": ("growing spend", "declining spend"),
}
#: Columns that say whether a customer borrows: implied by "revolvers"/"transactors".
CREDIT_COLUMNS = frozenset({REVOLVER, "Total_Revolving_Bal", "Avg_Utilization_Ratio"})
#: A trait qualifies a name when the segment mean is this many base standard deviations away.
QUALIFIER_MIN_SD = 0.5


@dataclass(frozen=True)
class Profile:
    """Per-segment statistics of the profile columns, against the whole base (fit data).

    Arrays are segments × `PROFILE_COLUMNS` (mean, median) or one value per column (base_*).
    churn is NaN when the data had no `churn` column.
    """

    columns: tuple[str, ...]
    size: np.ndarray
    mean: np.ndarray
    median: np.ndarray
    base_mean: np.ndarray
    base_std: np.ndarray
    base_median: np.ndarray
    churn: np.ndarray
    base_churn: float

    @property
    def k(self) -> int:
        return len(self.size)

    @property
    def share(self) -> np.ndarray:
        return self.size / self.size.sum()

    @property
    def z(self) -> np.ndarray:
        """(segment mean − base mean) ÷ base standard deviation, segments × columns."""
        std = np.where(self.base_std > 0, self.base_std, 1.0)
        return (self.mean - self.base_mean) / std

    def col(self, name: str) -> int:
        return self.columns.index(name)

    def ratio(self, s: int, name: str) -> float:
        """Segment median ÷ base median of one column (NaN when the base median is 0)."""
        j = self.col(name)
        base = self.base_median[j]
        return float(self.median[s, j] / base) if base else float("nan")


def profile_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The profile columns of a customer frame, with `REVOLVER` derived (floats)."""
    require_columns(df, source_columns(PROFILE_COLUMNS), "the segment profile")
    out = {}
    for c in PROFILE_COLUMNS:
        if c == REVOLVER:
            out[c] = (df["Total_Revolving_Bal"].to_numpy() > 0).astype(np.float64)
        else:
            out[c] = df[c].to_numpy(dtype=np.float64)
    return pd.DataFrame(out, index=df.index)


def compute_profile(df: pd.DataFrame, labels: np.ndarray, k: int) -> Profile:
    """Profile of segments 0…k-1 given each row's label."""
    values = profile_frame(df)
    grouped = values.groupby(labels)
    mean = grouped.mean().reindex(range(k)).to_numpy()
    median = grouped.median().reindex(range(k)).to_numpy()
    if schema.TARGET in df.columns:
        churn = df[schema.TARGET].to_numpy()
        rates, base = churn_rates(churn, labels, k), float(churn.mean())
    else:
        rates, base = np.full(k, np.nan), float("nan")
    return Profile(
        columns=PROFILE_COLUMNS,
        size=np.bincount(labels, minlength=k).astype(np.int64),
        mean=mean,
        median=median,
        base_mean=values.mean().to_numpy(),
        base_std=values.std(ddof=0).to_numpy(),
        base_median=values.median().to_numpy(),
        churn=rates,
        base_churn=base,
    )


def spend_tier(ratio: float) -> str:
    """Spend tier word for a segment whose median spend is `ratio` × the base median."""
    for threshold, word in SPEND_TIERS:
        if ratio >= threshold:
            return word
    return SPEND_TIERS[-1][1]


def credit_noun(revolver_share: float) -> str:
    """'revolvers' when most of the segment carries a balance, else 'transactors'."""
    return "revolvers" if revolver_share >= 0.5 else "transactors"


def qualifier(p: Profile, s: int, exclude: Sequence[str] = ()) -> str | None:
    """The segment's most distinctive secondary trait (≥ QUALIFIER_MIN_SD from the base)."""
    best, best_z = None, QUALIFIER_MIN_SD
    for c, (up, down) in QUALIFIERS.items():
        z = p.z[s, p.col(c)]
        label = up if z > 0 else down
        if abs(z) >= best_z and label not in exclude:
            best, best_z = label, abs(z)
    return best


def name_segments(p: Profile) -> list[str]:
    """One unique name per segment, by rules on its profile: spend tier + credit behaviour
    (+ its most distinctive secondary trait); ties broken by spend, then by id."""
    base = [
        f"{spend_tier(p.ratio(s, 'Total_Trans_Amt'))} {credit_noun(p.mean[s, p.col(REVOLVER)])}"
        for s in range(p.k)
    ]
    names = []
    for s in range(p.k):
        q = qualifier(p, s)
        names.append(f"{base[s]}, {q}" if q else base[s])
    # Duplicates: order the clashing segments by median spend and say so.
    spend = p.median[:, p.col("Total_Trans_Amt")]
    for name in {n for n in names if names.count(n) > 1}:
        ids = sorted((s for s in range(p.k) if names[s] == name), key=lambda s: (spend[s], s))
        if len(ids) == 2:
            tags = ["lower spend", "higher spend"]
        else:
            tags = [f"spend rank {i + 1} of {len(ids)}" for i in range(len(ids))]
        for s, tag in zip(ids, tags, strict=True):
            names[s] = f"{names[s]} ({tag})"
    for s, n in enumerate(names):  # last resort: identical medians
        if names.count(n) > 1:
            names[s] = f"{n} #{s}"
    return names


def _times(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.1f}×"


def describe_segment(p: Profile, s: int, name: str) -> str:
    """One paragraph on how segment `s` differs from the whole base, numbers from `p`."""

    def fmt(c: str, v: float) -> str:
        return next(f for col, _, f in PROFILE_FEATURES if col == c).format(v)

    def med(c: str) -> str:
        return fmt(c, p.median[s, p.col(c)])

    def base(c: str) -> str:
        return fmt(c, p.base_median[p.col(c)])

    rev = p.col(REVOLVER)
    z = p.z[s]
    # What sets the segment apart beyond its credit behaviour, which its name already says.
    short = {c: lab.split(" (")[0].split(",")[0].lower() for c, lab, _ in PROFILE_FEATURES}
    candidates = [j for j, c in enumerate(p.columns) if c not in CREDIT_COLUMNS]
    top = sorted(candidates, key=lambda j: -abs(z[j]))[:2]
    # the distance ranks them (base standard deviations); people read the medians
    standout = " and ".join(
        f"{short[p.columns[j]]} (median {med(p.columns[j])} vs {base(p.columns[j])})" for j in top
    )
    text = (
        f"{name}: {p.size[s]:,} customers ({p.share[s]:.0%} of the base). "
        f"They spend a median {med('Total_Trans_Amt')} a year, "
        f"{_times(p.ratio(s, 'Total_Trans_Amt'))} the base median, on "
        f"{med('Total_Trans_Ct')} transactions ({_times(p.ratio(s, 'Total_Trans_Ct'))}); "
        f"{p.mean[s, rev]:.0%} carry a revolving balance (base {p.base_mean[rev]:.0%}), "
        f"median utilisation {med('Avg_Utilization_Ratio')} (base {base('Avg_Utilization_Ratio')}). "
        f"Median credit limit {med('Credit_Limit')} ({_times(p.ratio(s, 'Credit_Limit'))} the base), "
        f"{med('Total_Relationship_Count')} products held (base {base('Total_Relationship_Count')}), "
        f"{med('Months_Inactive_12_mon')} inactive months and "
        f"{med('Contacts_Count_12_mon')} contacts in 12 months "
        f"(base {base('Months_Inactive_12_mon')} and {base('Contacts_Count_12_mon')}); "
        f"Q4/Q1 transaction ratio {med('Total_Ct_Chng_Q4_Q1')} "
        f"(base {base('Total_Ct_Chng_Q4_Q1')}). "
        f"Apart from credit use, they differ most from the base in {standout}."
    )
    if math.isfinite(p.churn[s]) and p.base_churn > 0:
        text += (
            f" Churn {p.churn[s]:.1%} against {p.base_churn:.1%} for the whole base "
            f"({_times(p.churn[s] / p.base_churn)})."
        )
    return text


def profile_caption(segmenter: Segmenter, segment: int, n: int = 2) -> str:
    """The sentence under a profile chart (markdown): what the bars show, the segment's credit
    behaviour, the `n` other traits that set it apart most (median vs base median) and its churn
    against the base."""
    p = segmenter.profile()
    z = p.z[segment]
    rev = p.col(REVOLVER)
    others = [j for j, c in enumerate(p.columns) if c not in CREDIT_COLUMNS]
    parts = []
    for j in sorted(others, key=lambda j: -abs(z[j]))[:n]:
        _, label, fmt = PROFILE_FEATURES[j]
        short = label.split(" (")[0].split(",")[0]
        parts.append(
            f"{short[0].lower()}{short[1:]} (median "
            f"{fmt.format(p.median[segment, j])} vs {fmt.format(p.base_median[j])})"
        )
    text = (
        "Bars: the segment's median as a % above (blue) or below (orange) the median of all "
        "customers (the share carrying a balance: averages); labels: both values. "
        f"**{segmenter.names_[segment]}**: {p.mean[segment, rev]:.0%} carry a revolving balance "
        f"(base {p.base_mean[rev]:.0%}); beyond credit use they differ most in "
        + " and ".join(parts)
        + "."
    )
    if math.isfinite(p.churn[segment]) and p.base_churn > 0:
        text += (
            f" Churn {p.churn[segment]:.1%} against {p.base_churn:.1%} for the base "
            f"({_times(p.churn[segment] / p.base_churn)})."
        )
    return text.replace("$", "\\$")
