"""Features: the one place that knows which columns are model inputs, and the held-out split."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from nba.config import Settings
from nba.data import schema

#: Model inputs: the customer record less the id, the target and the leakage columns.
NUMERIC_FEATURES: tuple[str, ...] = schema.NUMERIC
CATEGORICAL_FEATURES: tuple[str, ...] = schema.CATEGORICAL
FEATURES: tuple[str, ...] = tuple(c for c in schema.REQUIRED if c != schema.ID)


def split(df: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The project's one held-out split: stratified on churn, `settings.test_size` of the
    customers, seeded by `settings.seed`. Everything tuned is tuned on the first part only."""
    train, test = train_test_split(
        df,
        test_size=settings.test_size,
        stratify=df[schema.TARGET],
        random_state=settings.seed,
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)
