"""nba.data.validate: typed clean rows, rejected rows with reasons, whole-frame errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nba.data import schema
from nba.data.validate import REASON, ROW, ValidationResult, validate
from nba.errors import DataError

from factories import make_customers, to_raw


@pytest.fixture
def raw(customers: pd.DataFrame) -> pd.DataFrame:
    """`customers` as read_table returns a CSV: all text."""
    return to_raw(customers)


def check_accounting(result: ValidationResult, raw: pd.DataFrame) -> None:
    """Rows in = clean + rejected, and rejects carry every input column plus row and reason."""
    assert result.n_in == len(raw) == len(result.clean) + len(result.rejects)
    assert list(result.rejects.columns) == [ROW, *raw.columns, REASON]
    assert list(result.clean.columns[: len(schema.REQUIRED)]) == list(schema.REQUIRED)
    assert isinstance(result.clean.index, pd.RangeIndex)


def reason_of(result: ValidationResult, row: int) -> str:
    """The reason of the rejected input row with 1-based number `row`."""
    hit = result.rejects.loc[result.rejects[ROW] == row, REASON]
    assert len(hit) == 1, f"row {row} not rejected: {result.rejects[[ROW, REASON]]}"
    return hit.iloc[0]


def test_valid_text_frame_is_all_clean_and_typed(raw, customers):
    result = validate(raw)
    check_accounting(result, raw)
    assert result.ok and result.problems == []
    clean = result.clean
    assert list(clean.columns) == [*schema.REQUIRED, schema.TARGET]
    for c in (schema.ID, *schema.INTEGERS):
        assert clean[c].dtype == np.int64, c
    for c in schema.FLOATS:
        assert clean[c].dtype == np.float64, c
    for c in schema.CATEGORICAL:
        assert clean[c].dtype == "str", c
    assert clean[schema.ID].tolist() == customers[schema.ID].tolist()
    np.testing.assert_allclose(clean["Credit_Limit"], customers["Credit_Limit"])


def test_typed_input_gives_the_same_clean_frame_as_text(raw, customers):
    pd.testing.assert_frame_equal(validate(customers).clean, validate(raw).clean)


def test_leakage_dropped_and_churn_mapped(customers):
    clean = validate(customers).clean
    assert not [c for c in clean.columns if c.startswith(schema.LEAKAGE_PREFIX)]
    assert schema.TARGET_RAW not in clean.columns
    assert clean[schema.TARGET].dtype == np.int8
    expected = (customers[schema.TARGET_RAW] == schema.ATTRITED).astype(np.int8).to_numpy()
    np.testing.assert_array_equal(clean[schema.TARGET].to_numpy(), expected)
    assert 0 < clean[schema.TARGET].sum() < len(clean)


def test_without_attrition_flag_there_is_no_churn_column(customers):
    result = validate(customers.drop(columns=[schema.TARGET_RAW, *schema.LEAKAGE]))
    assert list(result.clean.columns) == list(schema.REQUIRED)


def test_extra_columns_and_index_do_not_reach_the_clean_frame(customers):
    df = customers.assign(branch="north").set_index(schema.ID, drop=False)
    result = validate(df)
    assert "branch" not in result.clean.columns
    assert isinstance(result.clean.index, pd.RangeIndex)
    assert result.clean[schema.ID].tolist() == customers[schema.ID].tolist()


def test_text_in_numeric_column(raw):
    raw.loc[2, "Credit_Limit"] = "abc"
    result = validate(raw)
    check_accounting(result, raw)
    assert reason_of(result, 3) == "Credit_Limit 'abc' is not a number"
    assert result.rejects.loc[0, "Credit_Limit"] == "abc"  # the raw value survives
    assert result.problems == ["1 row: Credit_Limit is not a number"]


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_missing_values(raw, blank):
    raw.loc[0, "Customer_Age"] = blank
    raw.loc[5, "Gender"] = blank
    result = validate(raw)
    check_accounting(result, raw)
    assert reason_of(result, 1) == "Customer_Age is missing"
    assert reason_of(result, 6) == "Gender is missing"


def test_missing_values_in_typed_nullable_columns(customers):
    df = customers.astype({"Customer_Age": "Int64"})
    df.loc[3, "Customer_Age"] = pd.NA
    df.loc[4, "Credit_Limit"] = np.nan
    result = validate(df)
    check_accounting(result, df)
    assert reason_of(result, 4) == "Customer_Age is missing"
    assert reason_of(result, 5) == "Credit_Limit is missing"


def test_non_integer_in_integer_column(raw):
    raw.loc[1, "Customer_Age"] = "45.5"
    raw.loc[2, "Customer_Age"] = "45.0"  # a whole number written as a float is fine
    result = validate(raw)
    check_accounting(result, raw)
    assert reason_of(result, 2) == "Customer_Age 45.5 is not a whole number"
    assert len(result.rejects) == 1
    assert result.clean.loc[1, "Customer_Age"] == 45


def test_out_of_bounds(raw):
    raw.loc[0, "Customer_Age"] = "300"
    raw.loc[1, "Total_Trans_Amt"] = "-5"
    raw.loc[2, "Credit_Limit"] = "1e12"
    result = validate(raw)
    check_accounting(result, raw)
    assert reason_of(result, 1) == "Customer_Age 300 is above the maximum 110"
    assert reason_of(result, 2) == "Total_Trans_Amt -5 is below the minimum 0"
    assert reason_of(result, 3).startswith("Credit_Limit 1e12 is above the maximum 1000000")


def test_unknown_category(raw):
    raw.loc[4, "Gender"] = "X"
    raw.loc[5, "Card_Category"] = "Diamond"
    raw.loc[6, "Gender"] = "Y"
    result = validate(raw)
    check_accounting(result, raw)
    assert reason_of(result, 5) == "Gender 'X' is not one of F, M"
    assert "Card_Category 'Diamond' is not one of Blue, Silver, Gold, Platinum" in reason_of(
        result, 6
    )
    assert "2 rows: Gender not one of F, M" in result.problems


def test_categories_are_normalised_case_and_whitespace(raw):
    raw.loc[0, "Gender"] = " m "
    raw.loc[1, "Education_Level"] = "high  school"
    raw.loc[2, "Marital_Status"] = "UNKNOWN"
    raw.loc[3, "Income_Category"] = "less than $40k"
    raw.loc[4, schema.TARGET_RAW] = " attrited customer"
    result = validate(raw)
    assert result.ok, result.rejects[REASON].tolist()
    clean = result.clean
    assert clean.loc[0, "Gender"] == "M"
    assert clean.loc[1, "Education_Level"] == "High School"
    assert clean.loc[2, "Marital_Status"] == "Unknown"
    assert clean.loc[3, "Income_Category"] == "Less than $40K"
    assert clean.loc[4, schema.TARGET] == 1
    for c, allowed in schema.CATEGORIES.items():
        assert set(clean[c]) <= set(allowed)


def test_categorical_dtype_input(customers):
    df = customers.astype({c: "category" for c in schema.CATEGORICAL})
    pd.testing.assert_frame_equal(validate(df).clean, validate(customers).clean)


def test_invalid_attrition_flag(raw):
    raw.loc[7, schema.TARGET_RAW] = "gone"
    result = validate(raw)
    check_accounting(result, raw)
    assert reason_of(result, 8) == (
        "Attrition_Flag 'gone' is not one of Existing Customer, Attrited Customer"
    )


def test_duplicated_ids_keep_first(raw):
    raw.loc[9, schema.ID] = raw.loc[3, schema.ID]
    raw.loc[12, schema.ID] = raw.loc[3, schema.ID]
    result = validate(raw)
    check_accounting(result, raw)
    cid = raw.loc[3, schema.ID]
    assert reason_of(result, 10) == f"CLIENTNUM {cid} duplicates row 4"
    assert reason_of(result, 13) == f"CLIENTNUM {cid} duplicates row 4"
    assert result.clean[schema.ID].tolist().count(int(cid)) == 1
    assert result.problems == ["2 rows: CLIENTNUM duplicates an earlier row"]


def test_broken_identities(raw):
    raw.loc[0, "Avg_Open_To_Buy"] = "5"
    raw.loc[1, "Avg_Utilization_Ratio"] = "0.999"
    raw.loc[2, "Avg_Open_To_Buy"] = str(
        float(raw.loc[2, "Credit_Limit"]) - float(raw.loc[2, "Total_Revolving_Bal"]) + 0.5
    )  # within tolerance
    result = validate(raw)
    check_accounting(result, raw)
    assert reason_of(result, 1).startswith(
        "Avg_Open_To_Buy 5 is not Credit_Limit - Total_Revolving_Bal = "
    )
    assert reason_of(result, 2).startswith(
        "Avg_Utilization_Ratio 0.999 is not Total_Revolving_Bal / Credit_Limit = "
    )
    assert len(result.rejects) == 2


def test_identity_not_reported_when_its_inputs_are_already_bad(raw):
    raw.loc[0, "Credit_Limit"] = "abc"
    raw.loc[1, "Credit_Limit"] = "-10"
    result = validate(raw)
    assert reason_of(result, 1) == "Credit_Limit 'abc' is not a number"
    assert reason_of(result, 2) == "Credit_Limit -10 is below the minimum 1"


def test_several_problems_in_one_row_are_joined(raw):
    raw.loc[0, "Customer_Age"] = "300"
    raw.loc[0, "Gender"] = "X"
    raw.loc[0, "Credit_Limit"] = "abc"
    result = validate(raw)
    assert reason_of(result, 1) == (
        "Customer_Age 300 is above the maximum 110; Gender 'X' is not one of F, M; "
        "Credit_Limit 'abc' is not a number"
    )
    assert len(result.problems) == 3


def test_reasons_are_one_line_even_for_hostile_values(raw):
    raw.loc[0, "Gender"] = "M\nF"
    raw.loc[1, "Credit_Limit"] = "x" * 500
    result = validate(raw)
    assert all("\n" not in r for r in result.rejects[REASON])
    assert len(reason_of(result, 2)) < 100


def test_rows_in_equal_clean_plus_rejects_when_everything_is_bad(raw):
    raw["Card_Category"] = "Diamond"
    result = validate(raw)
    check_accounting(result, raw)
    assert len(result.clean) == 0
    assert result.rejects[ROW].tolist() == list(range(1, len(raw) + 1))
    assert list(result.clean.columns) == [*schema.REQUIRED, schema.TARGET]


def test_a_larger_frame_with_mixed_problems_accounts_for_every_row():
    raw = to_raw(make_customers(500, seed=3))
    rng = np.random.default_rng(0)
    rows = rng.choice(len(raw), 60, replace=False)
    for i, r in enumerate(rows):
        col, value = [
            ("Customer_Age", "abc"),
            ("Gender", "?"),
            ("Credit_Limit", ""),
            ("Avg_Utilization_Ratio", "1.5"),
        ][i % 4]
        raw.loc[r, col] = value
    result = validate(raw)
    check_accounting(result, raw)
    assert sorted(result.rejects[ROW]) == sorted(rows + 1)
    assert sum(int(p.split()[0]) for p in result.problems) == 60


def test_missing_required_columns_raise(raw):
    with pytest.raises(DataError, match="missing required columns: Gender, Credit_Limit"):
        validate(raw.drop(columns=["Gender", "Credit_Limit"]))


def test_zero_rows_raise(raw):
    with pytest.raises(DataError, match="no rows"):
        validate(raw.iloc[:0])


def _messy(raw: pd.DataFrame) -> pd.DataFrame:
    edits = [
        ("Customer_Age", "abc"),
        ("Customer_Age", "45.5"),
        ("Customer_Age", " 45 "),
        ("Customer_Age", "inf"),
        ("Gender", " m "),
        ("Gender", "?"),
        ("Credit_Limit", ""),
        ("Credit_Limit", "0"),
        ("Avg_Utilization_Ratio", "1.5"),
        ("Avg_Open_To_Buy", "5"),
        ("Education_Level", "high  school"),
        (schema.TARGET_RAW, "gone"),
        (schema.ID, "abc"),
    ]
    for i, (col, value) in enumerate(edits * 3):
        raw.loc[(7 * i) % len(raw), col] = value
    raw.loc[30, schema.ID] = raw.loc[2, schema.ID]
    raw.loc[33, schema.ID] = raw.loc[2, schema.ID]
    return raw


def test_fast_path_gives_what_pandera_alone_gives(monkeypatch):
    raw = _messy(to_raw(make_customers(300, seed=5)))
    fast = validate(raw)
    assert 0 < len(fast.rejects) < len(raw)
    # the general path: every row through pandera, none vouched for by the vectorised check
    monkeypatch.setattr(
        "nba.data.validate._suspect",
        lambda typed, has_target: np.ones(len(typed[schema.ID]), dtype=bool),
    )
    slow = validate(raw)
    pd.testing.assert_frame_equal(fast.clean, slow.clean)
    pd.testing.assert_frame_equal(fast.rejects, slow.rejects)
    assert fast.problems == slow.problems


def test_fast_path_never_vouches_for_a_row_pandera_rejects():
    from nba.data.validate import _coerce, _issues, _suspect

    raw = _messy(to_raw(make_customers(300, seed=6))).reset_index(drop=True)
    typed = _coerce(raw, True)
    everything = _issues(raw, typed, True, np.arange(len(raw)))
    flagged = _suspect(typed, True)
    rejected = np.unique(everything["index"].to_numpy())
    assert len(rejected) > 10
    assert flagged[rejected].all()


@pytest.mark.parametrize(
    "values",
    [
        pd.array(["Blue", "Gold", "Blue", "Silver"], dtype="str"),
        pd.array(["Blue", None, "Gold", "Blue"], dtype="str"),
        np.array(["b", 3, None, "b"], dtype=object),
        pd.Categorical(["x", "y", "x"]),
        pd.concat([pd.Series(["a", "b"], dtype="str"), pd.Series(["b", "c"], dtype="str")]).array,
    ],
)
def test_schema_factorize_is_pandas_factorize(values):
    codes, uniques = schema.factorize(values)
    want_codes, want_uniques = pd.factorize(values, use_na_sentinel=False)
    np.testing.assert_array_equal(codes, want_codes)
    assert codes.dtype == np.int64
    assert uniques.dtype == object
    assert [u if isinstance(u, str) else repr(u) for u in uniques] == [
        u if isinstance(u, str) else repr(u) for u in np.asarray(want_uniques, dtype=object)
    ]


def test_column_arrays_are_the_columns_values():
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, None]}, index=[7, 9])
    arrays = schema.column_arrays(df, ["c", "a", "b"])
    assert list(arrays) == ["c", "a", "b"]
    np.testing.assert_array_equal(arrays["a"], [1, 2])
    assert list(arrays["b"]) == ["x", "y"]
    assert np.isnan(arrays["c"][1])


def test_clean_batch_gives_an_empty_rejects_frame_of_the_input_layout(raw):
    result = validate(raw)
    assert result.ok and result.problems == []
    # what the row-by-row construction gives for no rejected row
    want = raw.iloc[:0].reset_index(drop=True)
    want.insert(0, ROW, np.array([], dtype=np.int64))
    want[REASON] = pd.Series([], dtype="str")
    pd.testing.assert_frame_equal(result.rejects, want)
    # an input column named like an output column is replaced, as for real rejects
    again = validate(raw.assign(reason="old"))
    assert list(again.rejects.columns) == [ROW, *raw.columns, REASON]
    result.rejects.insert(1, "extra", [])  # a caller's edit does not leak into the next one
    assert "extra" not in validate(raw).rejects.columns


def test_canonical_categories_keep_their_text_and_others_are_rebuilt(raw):
    raw.loc[0, "Gender"] = " m "
    result = validate(raw)
    assert result.clean.loc[0, "Gender"] == "M"
    assert result.clean["Gender"].dtype == "str"
    assert result.clean["Card_Category"].tolist() == raw["Card_Category"].tolist()


# --- structured issues ----------------------------------------------------------------------


def test_issues_are_records_whose_messages_make_the_reasons(raw):
    from nba.data.validate import (
        ABOVE_MAXIMUM,
        DUPLICATE,
        ISSUE_COLUMNS,
        MISSING,
        NOT_A_NUMBER,
        NOT_ALLOWED,
        NOT_WHOLE,
        OPEN_TO_BUY_IDENTITY,
        join_reasons,
    )

    raw.loc[0, "Customer_Age"] = "300"
    raw.loc[0, "Gender"] = "X"
    raw.loc[0, "Credit_Limit"] = "abc"
    raw.loc[1, "Dependent_count"] = ""
    raw.loc[2, "Total_Trans_Ct"] = "10.5"
    raw.loc[3, "Avg_Open_To_Buy"] = "5"
    raw.loc[9, schema.ID] = raw.loc[4, schema.ID]
    result = validate(raw)
    issues = result.issues
    assert tuple(issues.columns) == ISSUE_COLUMNS
    got = list(zip(issues["row"], issues["column"], issues["rule"], strict=True))
    assert got == [
        (1, "Customer_Age", ABOVE_MAXIMUM),
        (1, "Gender", NOT_ALLOWED),
        (1, "Credit_Limit", NOT_A_NUMBER),
        (2, "Dependent_count", MISSING),
        (3, "Total_Trans_Ct", NOT_WHOLE),
        (4, "Avg_Open_To_Buy", OPEN_TO_BUY_IDENTITY),
        (10, schema.ID, DUPLICATE),
    ]
    assert issues.loc[issues["rule"] == DUPLICATE, "first_row"].tolist() == [5]
    assert (issues.loc[issues["rule"] != DUPLICATE, "first_row"] == 0).all()
    # the reasons people read are exactly the issues' messages, joined in order
    for row, reason in zip(result.rejects[ROW], result.rejects[REASON], strict=True):
        assert reason == join_reasons(issues.loc[issues["row"] == row, "message"])
    assert [i.rule for i in result.issues_in(1)] == [ABOVE_MAXIMUM, NOT_ALLOWED, NOT_A_NUMBER]
    assert result.issues_in(6) == []


def test_a_clean_batch_has_no_issues_and_callers_cannot_spoil_the_next(raw):
    from nba.data.validate import ISSUE_COLUMNS

    result = validate(raw)
    assert result.issues.empty and tuple(result.issues.columns) == ISSUE_COLUMNS
    issues = result.issues
    issues["extra"] = []  # a caller's edit of its copy
    assert "extra" not in validate(raw).issues.columns
    assert "extra" not in result.issues.columns


def test_record_error_carries_the_issues_and_the_joined_sentence(raw):
    from nba.data.validate import RecordError

    raw.loc[0, "Customer_Age"] = "300"
    raw.loc[0, "Gender"] = "X"
    result = validate(raw.head(1))
    err = RecordError(result.issues_in(1))
    assert isinstance(err, DataError)
    assert str(err) == result.rejects[REASON].iloc[0]
    assert [i.column for i in err.issues] == ["Customer_Age", "Gender"]


def test_column_arrays_without_the_private_pandas_reader(monkeypatch):
    """`schema.column_arrays` reads the block manager through `DataFrame._get_column_array`
    (private pandas); without it (another pandas) it falls back to `df[name]`, same values."""
    df = pd.DataFrame(
        {"a": [1, 2], "b": pd.array(["x", None], dtype="str"), "c": [0.5, np.nan]}, index=[7, 9]
    )
    fast = schema.column_arrays(df, ["c", "a", "b"])
    monkeypatch.delattr(pd.DataFrame, "_get_column_array")
    slow = schema.column_arrays(df, ["c", "a", "b"])
    assert list(slow) == list(fast) == ["c", "a", "b"]
    for name in fast:
        assert type(slow[name]) is type(fast[name])
        pd.testing.assert_series_equal(pd.Series(slow[name]), pd.Series(fast[name]))


def test_values_no_customer_can_have_are_rejected_and_unusual_ones_pass(raw):
    raw.loc[0, "Total_Trans_Ct"] = "100000"  # 274 transactions a day, every day
    raw.loc[1, "Total_Trans_Amt"] = "100000000"  # $100 M of spend in a year on one card
    raw.loc[2, "Total_Relationship_Count"] = "21"
    raw.loc[3, "Total_Trans_Ct"] = "600"  # far above the development data's 139, but possible
    raw.loc[4, "Total_Trans_Amt"] = "250000"  # a quarter of a million a year: possible
    result = validate(raw)
    check_accounting(result, raw)
    assert reason_of(result, 1) == "Total_Trans_Ct 100000 is above the maximum 10000"
    assert reason_of(result, 2) == "Total_Trans_Amt 100000000 is above the maximum 12000000"
    assert reason_of(result, 3) == "Total_Relationship_Count 21 is above the maximum 20"
    assert sorted(result.rejects[ROW]) == [1, 2, 3]
    for col, (lo, hi) in schema.BOUNDS.items():
        assert lo < hi, col
