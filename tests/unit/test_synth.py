"""The synthetic generator on its own: schema, identities, determinism, format (no real data)."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from nba.data import schema, synth


@pytest.fixture(scope="module")
def drawn() -> pd.DataFrame:
    return synth.generate(5_000, seed=7)


def test_exact_kaggle_columns_and_types(drawn):
    assert tuple(drawn.columns) == schema.KAGGLE_COLUMNS
    for col in (schema.ID, *schema.INTEGERS):
        assert pd.api.types.is_integer_dtype(drawn[col]), col
    for col in schema.FLOATS:
        assert pd.api.types.is_float_dtype(drawn[col]), col
    assert drawn.notna().all().all()


def test_categories_and_bounds(drawn):
    for col, cats in schema.CATEGORIES.items():
        assert set(drawn[col]) <= set(cats), col
    assert set(drawn[schema.TARGET_RAW]) == set(schema.TARGET_LABELS)
    for col, (low, high) in schema.BOUNDS.items():
        assert drawn[col].between(low, high).all(), col


def test_identities_hold_exactly(drawn):
    limit, bal = drawn.Credit_Limit, drawn.Total_Revolving_Bal
    np.testing.assert_allclose(drawn.Avg_Open_To_Buy, limit - bal, atol=1e-9)
    np.testing.assert_allclose(drawn.Avg_Utilization_Ratio, np.round(bal / limit, 3), atol=1e-12)
    assert (bal <= limit).all()
    nb1, nb2 = (drawn[c] for c in schema.LEAKAGE)
    np.testing.assert_allclose(nb1 + nb2, 1, atol=1e-4)


def test_integers_are_whole_and_ids_unique(drawn):
    assert drawn[schema.ID].is_unique
    assert drawn[schema.ID].between(10**8, 10**9 - 1).all()
    assert (drawn.Credit_Limit.isin([1438.3]) | (drawn.Credit_Limit % 1 == 0)).all()


def test_same_seed_same_rows_other_seed_other_rows():
    a, b, c = synth.generate(300, 1), synth.generate(300, 1), synth.generate(300, 2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


@pytest.mark.parametrize("rows", [1, 2, 7, 101])
def test_any_size_has_the_exact_count(rows):
    df = synth.generate(rows, seed=3)
    assert len(df) == rows
    assert df[schema.ID].is_unique


def test_class_balance_is_exact_for_the_calibrated_rate():
    rows = 10_000
    rate = synth.load_calibration()["churn_rate"]
    df = synth.generate(rows, seed=5)
    assert df[schema.TARGET_RAW].eq(schema.ATTRITED).sum() == round(rows * rate)


def test_rejects_a_non_positive_size():
    with pytest.raises(ValueError, match="rows"):
        synth.generate(0, seed=1)


def test_allocation_sums_to_rows():
    shares = [0.5, 0.3, 0.2]
    for rows in (1, 3, 10, 999):
        counts = synth._allocate(rows, shares)
        assert sum(counts) == rows
        assert all(abs(c - rows * s) < 1 for c, s in zip(counts, shares, strict=True))


def test_csv_is_written_in_kaggle_format(tmp_path, drawn):
    path = tmp_path / "syn.csv"
    synth.write_kaggle_csv(drawn.head(50), path)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(schema.KAGGLE_COLUMNS)  # header unquoted, like Kaggle
    row = next(csv.reader([lines[1]]))
    raw = lines[1].split(",")
    for col, text, value in zip(schema.KAGGLE_COLUMNS, raw, row, strict=True):
        is_text = col in schema.CATEGORIES or col == schema.TARGET_RAW
        assert text.startswith('"') == is_text, col  # strings quoted, numbers not
        if col in schema.INTEGERS:
            assert value.isdigit(), (col, value)
        if col == "Credit_Limit" and float(value) != 1438.3:
            assert value.isdigit(), value  # 12691, never 12691.0
    back = pd.read_csv(path)
    pd.testing.assert_frame_equal(back, drawn.head(50), check_dtype=False)


def test_signif_rounds_like_r():
    got = synth._signif(np.array([9.34481234e-05, 0.999906543, 0.0]), 5)
    np.testing.assert_allclose(got, [9.3448e-05, 0.99991, 0.0])
