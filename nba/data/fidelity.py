"""How closely a synthetic frame matches a real one: the checks behind the synthetic default.

Each function takes two labelled frames (raw Kaggle format or clean, with `churn`) and returns
plain numbers,
so that tests assert on them and notebooks show them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from nba.data import schema


def _is_attrited(df: pd.DataFrame) -> pd.Series:
    return pd.Series(schema.attrited_mask(df), index=df.index)


def ks_statistics(synthetic: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    """Two-sample KS statistic per numeric column: overall, existing and attrited customers."""
    s_att, r_att = _is_attrited(synthetic), _is_attrited(real)
    rows = {}
    for col in schema.NUMERIC:
        rows[col] = {
            "overall": ks_2samp(synthetic[col], real[col]).statistic,
            "existing": ks_2samp(synthetic.loc[~s_att, col], real.loc[~r_att, col]).statistic,
            "attrited": ks_2samp(synthetic.loc[s_att, col], real.loc[r_att, col]).statistic,
        }
    return pd.DataFrame(rows).T


def correlation_gap(synthetic: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    """Absolute difference of the Pearson correlation matrices of the numeric columns."""
    cols = list(schema.NUMERIC)
    return (synthetic[cols].corr() - real[cols].corr()).abs()


def category_gaps(synthetic: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    """Per category: share of customers and churn rate, synthetic vs real, in percentage points."""
    rows = []
    for col, cats in schema.CATEGORIES.items():
        for cat in cats:
            s_in, r_in = synthetic[col].eq(cat), real[col].eq(cat)
            rows.append(
                {
                    "column": col,
                    "category": cat,
                    "share_synthetic": 100 * s_in.mean(),
                    "share_real": 100 * r_in.mean(),
                    "churn_synthetic": 100 * _is_attrited(synthetic)[s_in].mean(),
                    "churn_real": 100 * _is_attrited(real)[r_in].mean(),
                    "real_count": int(r_in.sum()),
                }
            )
    out = pd.DataFrame(rows)
    out["share_gap"] = (out.share_synthetic - out.share_real).abs()
    out["churn_gap"] = (out.churn_synthetic - out.churn_real).abs()
    return out


def train_synthetic_test_real(
    synthetic: pd.DataFrame, real: pd.DataFrame, seed: int, model=None
) -> float:
    """ROC-AUC on the real customers of a classifier fitted on the synthetic ones (TSTR).

    Uses a default HistGradientBoostingClassifier unless a scikit-learn `model` taking the
    Kaggle columns less target and leakage is given."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    def xy(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        x = df[list(schema.REQUIRED[1:])].copy()
        for col in schema.CATEGORIES:
            x[col] = pd.Categorical(x[col], categories=schema.CATEGORIES[col])
        return x, schema.attrited_mask(df).astype(int)

    if model is None:
        model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    x_s, y_s = xy(synthetic)
    x_r, y_r = xy(real)
    model.fit(x_s, y_s)
    return float(roc_auc_score(y_r, model.predict_proba(x_r)[:, 1]))


def summary(synthetic: pd.DataFrame, real: pd.DataFrame, seed: int) -> dict[str, float]:
    """The headline figures of every check above, as plain numbers (worst case of each)."""
    ks = ks_statistics(synthetic, real)
    cats = category_gaps(synthetic, real)
    return {
        "rows_synthetic": len(synthetic),
        "rows_real": len(real),
        "churn_rate_synthetic": float(schema.attrited_mask(synthetic).mean()),
        "churn_rate_real": float(schema.attrited_mask(real).mean()),
        "max_ks_overall": float(ks["overall"].max()),
        "max_ks_within_class": float(ks[["existing", "attrited"]].to_numpy().max()),
        "max_correlation_gap": float(correlation_gap(synthetic, real).to_numpy().max()),
        "max_category_share_gap_points": float(cats.share_gap.max()),
        "tstr_roc_auc": train_synthetic_test_real(synthetic, real, seed),
    }
