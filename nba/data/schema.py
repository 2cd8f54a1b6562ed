"""The BankChurners schema: column names, types, categories and plausibility bounds.

One place that knows what a customer record looks like, shared by the loader, the
validator and the synthetic generator. Column names and category spellings are
Kaggle's own ("Credit Card Customers", sakshigoyal7/credit-card-customers).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ID = "CLIENTNUM"
TARGET_RAW = "Attrition_Flag"
TARGET = "churn"
ATTRITED = "Attrited Customer"
EXISTING = "Existing Customer"
TARGET_LABELS = (EXISTING, ATTRITED)

#: Two columns of another model's output; they encode the target and are always dropped.
LEAKAGE_PREFIX = "Naive_Bayes_Classifier_"
LEAKAGE = (
    "Naive_Bayes_Classifier_Attrition_Flag_Card_Category_Contacts_Count_12_mon_"
    "Dependent_count_Education_Level_Months_Inactive_12_mon_1",
    "Naive_Bayes_Classifier_Attrition_Flag_Card_Category_Contacts_Count_12_mon_"
    "Dependent_count_Education_Level_Months_Inactive_12_mon_2",
)

#: Categorical columns and their allowed values, in a meaningful order (ordinal where one exists).
CATEGORIES: dict[str, tuple[str, ...]] = {
    "Gender": ("F", "M"),
    "Education_Level": (
        "Unknown",
        "Uneducated",
        "High School",
        "College",
        "Graduate",
        "Post-Graduate",
        "Doctorate",
    ),
    "Marital_Status": ("Unknown", "Single", "Married", "Divorced"),
    "Income_Category": (
        "Unknown",
        "Less than $40K",
        "$40K - $60K",
        "$60K - $80K",
        "$80K - $120K",
        "$120K +",
    ),
    "Card_Category": ("Blue", "Silver", "Gold", "Platinum"),
}

#: Integer columns and float columns (decimals = how Kaggle writes them).
INTEGERS = (
    "Customer_Age",
    "Dependent_count",
    "Months_on_book",
    "Total_Relationship_Count",
    "Months_Inactive_12_mon",
    "Contacts_Count_12_mon",
    "Total_Revolving_Bal",
    "Total_Trans_Amt",
    "Total_Trans_Ct",
)
FLOATS = (
    "Credit_Limit",
    "Avg_Open_To_Buy",
    "Total_Amt_Chng_Q4_Q1",
    "Total_Ct_Chng_Q4_Q1",
    "Avg_Utilization_Ratio",
)
NUMERIC = (
    "Customer_Age",
    "Dependent_count",
    "Months_on_book",
    "Total_Relationship_Count",
    "Months_Inactive_12_mon",
    "Contacts_Count_12_mon",
    "Credit_Limit",
    "Total_Revolving_Bal",
    "Avg_Open_To_Buy",
    "Total_Amt_Chng_Q4_Q1",
    "Total_Trans_Amt",
    "Total_Trans_Ct",
    "Total_Ct_Chng_Q4_Q1",
    "Avg_Utilization_Ratio",
)
CATEGORICAL = tuple(CATEGORIES)

#: Columns every input must have (the customer record without target or leakage).
REQUIRED = (
    ID,
    "Customer_Age",
    "Gender",
    "Dependent_count",
    "Education_Level",
    "Marital_Status",
    "Income_Category",
    "Card_Category",
    "Months_on_book",
    "Total_Relationship_Count",
    "Months_Inactive_12_mon",
    "Contacts_Count_12_mon",
    "Credit_Limit",
    "Total_Revolving_Bal",
    "Avg_Open_To_Buy",
    "Total_Amt_Chng_Q4_Q1",
    "Total_Trans_Amt",
    "Total_Trans_Ct",
    "Total_Ct_Chng_Q4_Q1",
    "Avg_Utilization_Ratio",
)

#: Columns of the Kaggle file beyond the customer record: the label and the leakage columns.
KAGGLE_EXTRA = (TARGET_RAW, *LEAKAGE)

#: The 23 columns of the Kaggle file, in Kaggle's order.
KAGGLE_COLUMNS = (ID, TARGET_RAW, *REQUIRED[1:], *LEAKAGE)

#: Hard plausibility bounds (inclusive): values no real card customer can have. A row outside
#: them is rejected with the rule it breaks. They are deliberately far wider than the
#: development data (8,101 customers, e.g. 10–139 transactions and $510–$18,484 of spend a
#: year): an unusual but possible customer is scored, and flagged in the score's
#: `out_of_range` column when the model never saw such values (`nba.scoring.training_range`).
BOUNDS: dict[str, tuple[float, float]] = {
    # a positive whole number that a float64 holds exactly (below 2**53 ≈ 9.0e15)
    ID: (1, 10**15),
    # card holders are adults; 110 is beyond all but a handful of documented lifespans
    "Customer_Age": (18, 110),
    # people who depend on the holder: the largest households have ~15; 20 is beyond any
    "Dependent_count": (0, 20),
    # 60 years as a customer: an account opened at 18 by someone now 78
    "Months_on_book": (0, 720),
    # products held with the bank: a retail bank's whole catalogue (accounts, cards, loans,
    # savings, insurance) is about 20 products; the development data has 1–6
    "Total_Relationship_Count": (1, 20),
    # inactive months among the last 12: 0–12 by definition
    "Months_Inactive_12_mon": (0, 12),
    # contacts in 12 months: one every day of the year; more is a logging fault, not a customer
    "Contacts_Count_12_mon": (0, 365),
    # consumer card limits top out at a few hundred thousand dollars; $1 M leaves room for
    # private-banking cards (development data: $1,438–$34,516)
    "Credit_Limit": (1, 1_000_000),
    # a balance cannot exceed the limit (the identities check the pair row by row)
    "Total_Revolving_Bal": (0, 1_000_000),
    # the limit minus the balance: at most the limit
    "Avg_Open_To_Buy": (0, 1_000_000),
    # Q4 ÷ Q1 spend: 100-fold needs an almost empty Q1 (possible); beyond, an input fault
    "Total_Amt_Chng_Q4_Q1": (0, 100),
    # a year's spend: the largest limit above spent and repaid at every monthly statement is
    # $12 M (~$33,000 a day); the old bound of $100 M a year was no customer's
    "Total_Trans_Amt": (0, 12_000_000),
    # a year's transactions: 10,000 is 27 a day, every day; heavy real users make a few a day
    # (the old bound, 100,000, was 274 a day)
    "Total_Trans_Ct": (0, 10_000),
    # Q4 ÷ Q1 transactions: as for spend
    "Total_Ct_Chng_Q4_Q1": (0, 100),
    # balance ÷ limit: 0–1 by definition (the balance cannot exceed the limit)
    "Avg_Utilization_Ratio": (0, 1),
}

#: Identity tolerances. Kaggle writes Avg_Open_To_Buy exactly and the utilisation ratio
#: rounded to 3 decimals (max error 0.0005); real exports round more coarsely.
OPEN_TO_BUY_TOLERANCE = 1.0  # currency units
UTILIZATION_TOLERANCE = 0.01  # ratio points


def attrited_mask(df: pd.DataFrame) -> np.ndarray:
    """True for attrited customers, from `churn` (clean frames) or `Attrition_Flag` (raw)."""
    if TARGET in df.columns:
        return df[TARGET].to_numpy() == 1
    return df[TARGET_RAW].eq(ATTRITED).to_numpy()


def column_arrays(df: pd.DataFrame, names: Iterable[str]) -> dict[str, Any]:
    """`{name: df[name].array-like}` for the named columns, read without building a Series each.

    `df[name]` costs ~20 µs per column (a Series and its index), which dominates scoring one
    customer; the block manager's column array is what the Series would wrap (numpy for numpy
    dtypes, the extension array otherwise). pandas is pinned to 3.1, whose `_get_column_array`
    this uses; any other pandas falls back to `df[name]`. The arrays may be the frame's own
    memory: read them, never write into them."""
    get = getattr(df, "_get_column_array", None)
    if get is None or not df.columns.is_unique:
        return {c: np.asarray(df[c]) if _numpy_backed(df[c]) else df[c].array for c in names}
    loc = df.columns.get_loc
    return {c: get(loc(c)) for c in names}


def _numpy_backed(s: pd.Series) -> bool:
    return isinstance(s.dtype, np.dtype)


def factorize(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """`pd.factorize(values, use_na_sentinel=False)` with the uniques as an object array:
    integer codes and the distinct values in order of first appearance. Arrow text without
    missing values is encoded by arrow directly (a third of pandas' cost for one customer)."""
    if isinstance(values, pd.arrays.ArrowStringArray):
        arr = pa.array(values)
        if isinstance(arr, pa.Array) and arr.null_count == 0:  # one chunk, nothing missing
            encoded = pc.dictionary_encode(arr)
            codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            return codes, encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes, np.asarray(uniques, dtype=object)
