"""Batch scoring: the pandas and Dask engines agree, rejects keep every row, `recommend`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba.bundle import Bundle
from nba.churn import TrainOptions
from nba.config import Settings
from nba.data import schema, synth
from nba.data.discover import describe, write_synthetic
from nba.data.io import load, read_table
from nba.data.validate import validate
from nba.errors import DataError
from nba.scoring import recommend, score_file, score_frame
from nba.scoring_dask import score_file_dask
from nba.train import train

from factories import write_messy_csv


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Bundle:
    """A fast bundle on 3,000 synthetic customers (seed 11)."""
    folder = tmp_path_factory.mktemp("scoring")
    data = write_synthetic(folder / "train.csv", 3000, 11)
    trained, _ = train(load(data), describe(data, "argument"), Settings(), TrainOptions.fast())
    return trained


@pytest.fixture(scope="module")
def messy_csv(tmp_path_factory) -> Path:
    """1,500 customers as Kaggle writes them, with bad rows spread over the file."""
    return write_messy_csv(tmp_path_factory.mktemp("messy") / "messy.csv")


@pytest.fixture(scope="module")
def pandas_result(bundle, messy_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("pandas") / "scores.parquet"
    result = score_file(bundle, messy_csv, out)
    return result, read_table(out, required=()), read_table(result.rejects, required=())


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(schema.ID, ignore_index=True)


def _same_scores(dask_scores: pd.DataFrame, pandas_scores: pd.DataFrame) -> None:
    a, b = _sorted(dask_scores), _sorted(pandas_scores)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-9)


def test_pandas_engine_accounts_for_every_row(pandas_result):
    result, scores, rejects = pandas_result
    assert result.rows_in == 1500 == result.scored + result.rejected
    assert result.rejected == 7
    assert len(scores) == result.scored and len(rejects) == result.rejected


@pytest.mark.parametrize("scheduler", ["sync", "distributed"])
def test_dask_engine_matches_pandas_engine_on_parquet_output(
    bundle, messy_csv, pandas_result, tmp_path, scheduler
):
    expected, scores, rejects = pandas_result
    out = tmp_path / "scores.parquet"
    result = score_file_dask(bundle, messy_csv, out, blocksize=40_000, scheduler=scheduler)
    assert out.is_dir() and len(list(out.glob("part-*.parquet"))) > 2  # several partitions
    assert (result.rows_in, result.scored, result.rejected) == (
        expected.rows_in,
        expected.scored,
        expected.rejected,
    )
    _same_scores(read_table(out, required=()), scores)
    got = read_table(result.rejects, required=())
    pd.testing.assert_frame_equal(got, rejects)


def test_dask_engine_csv_output_and_global_duplicate_rows(
    bundle, messy_csv, pandas_result, tmp_path
):
    _, scores, rejects = pandas_result
    out = tmp_path / "scores.csv"
    rej = tmp_path / "bad.csv"
    result = score_file_dask(bundle, messy_csv, out, rej, blocksize=40_000, scheduler="threads")
    assert result.rejects == rej and out.is_file()
    _same_scores(read_table(out, required=()), read_table(_csv_copy(scores, tmp_path), required=()))
    got = read_table(rej, required=())
    pd.testing.assert_frame_equal(got, rejects)
    reasons = dict(zip(got["row"].astype(int), got["reason"], strict=True))
    assert reasons[1201].endswith("duplicates row 11")
    assert reasons[1301].startswith("CLIENTNUM") and "duplicates row 21; Gender" in reasons[1301]


def _csv_copy(df: pd.DataFrame, folder: Path) -> Path:
    path = folder / "pandas_scores.csv"
    df.to_csv(path, index=False)
    return path


def test_dask_engine_reads_parquet_input(bundle, tmp_path):
    df = synth.generate(800, 6)
    folder = tmp_path / "in.parquet"
    folder.mkdir()
    df.iloc[:500].to_parquet(folder / "a.parquet", index=False)
    df.iloc[500:].to_parquet(folder / "b.parquet", index=False)
    result = score_file_dask(bundle, folder, tmp_path / "out.csv", scheduler="sync")
    assert (result.rows_in, result.scored, result.rejected) == (800, 800, 0)
    expected = score_frame(bundle, validate(df).clean)
    _same_scores(read_table(tmp_path / "out.csv", required=()), _roundtrip(expected, tmp_path))


def _roundtrip(df: pd.DataFrame, folder: Path) -> pd.DataFrame:
    path = folder / "expected.csv"
    df.to_csv(path, index=False)
    return read_table(path, required=())


def test_dask_engine_whole_file_problems_are_one_line(bundle, tmp_path):
    missing = tmp_path / "missing.csv"
    synth.generate(10, 1).drop(columns=["Gender"]).to_csv(missing, index=False)
    semis = tmp_path / "semis.csv"
    synth.generate(10, 1).to_csv(semis, index=False, sep=";")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header = tmp_path / "header.csv"
    header.write_text(",".join(schema.KAGGLE_COLUMNS) + "\n")
    for path, words in (
        (missing, "missing a required column: Gender"),
        (semis, "semicolons"),
        (empty, "is empty"),
        (header, "no data rows"),
        (tmp_path / "nowhere.csv", "does not exist"),
    ):
        with pytest.raises(DataError, match=words) as err:
            score_file_dask(bundle, path, tmp_path / "o.parquet", scheduler="sync")
        assert "\n" not in str(err.value)
    assert not list(tmp_path.glob(".*parts"))


# --- one customer --------------------------------------------------------------------------


def _records(n: int, seed: int) -> list[dict]:
    df = synth.generate(n, seed)
    return df[list(schema.REQUIRED)].to_dict("records")


def test_recommend_equals_the_batch_row(bundle):
    records = _records(6, 9)
    clean = validate(pd.DataFrame(records)).clean
    batch = score_frame(bundle, clean, drivers=3)
    for i, record in enumerate(records):
        got = recommend(bundle, record)
        want = batch.iloc[i].to_dict()
        assert list(got) == list(want)
        assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}
        for k, v in want.items():
            if isinstance(v, float) and np.isnan(v):
                assert np.isnan(got[k]), k
            else:
                assert got[k] == pytest.approx(v) if isinstance(v, float) else got[k] == v, k


def test_recommend_takes_text_and_loose_spelling_like_validate(bundle):
    record = _records(1, 2)[0]
    loose = {k: (str(v) if i % 3 == 0 else v) for i, (k, v) in enumerate(record.items())}
    loose["Gender"] = f"  {record['Gender'].lower()} "
    loose.pop(schema.ID)
    want = score_frame(bundle, validate(pd.DataFrame([record])).clean, drivers=3).iloc[0]
    got = recommend(bundle, loose)
    assert got["churn_probability"] == want["churn_probability"]
    assert got["action_1_reason"] == want["action_1_reason"]
    assert got["driver_1"] == want["driver_1"]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("Customer_Age", "forty", "Customer_Age 'forty' is not a number"),
        ("Customer_Age", 300, "Customer_Age 300 is above the maximum 110"),
        ("Card_Category", "Diamond", "Card_Category 'Diamond' is not one of"),
        ("Total_Trans_Amt", -5, "Total_Trans_Amt -5 is below the minimum 0"),
        ("Dependent_count", None, "Dependent_count is missing"),
        ("Avg_Open_To_Buy", 1.0, "Avg_Open_To_Buy 1 is not Credit_Limit"),
    ],
)
def test_recommend_rejects_a_bad_field_in_one_sentence(bundle, field, value, words):
    record = _records(1, 3)[0]
    record.pop(schema.ID)
    record[field] = value
    with pytest.raises(DataError, match=words) as err:
        recommend(bundle, record)
    message = str(err.value)
    assert field in message and "\n" not in message


def test_dask_engine_reads_a_csv_with_bom_and_padded_header(bundle, tmp_path):
    df = synth.generate(300, 8)
    text = synth.kaggle_csv_text(df).split("\n", 1)
    header = ",".join(f" {c} " for c in text[0].split(","))
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + header + "\n" + text[1]).encode())
    result = score_file_dask(
        bundle, path, tmp_path / "o.parquet", blocksize=20_000, scheduler="sync"
    )
    assert (result.rows_in, result.scored, result.rejected) == (300, 300, 0)
    expected = score_file(bundle, path, tmp_path / "p.parquet")
    assert expected.scored == 300
    _same_scores(
        read_table(tmp_path / "o.parquet", required=()),
        read_table(tmp_path / "p.parquet", required=()),
    )


# --- plausibility: outside the training range is scored and marked ---------------------------


def test_out_of_range_names_the_columns_outside_the_training_range(monkeypatch):
    from nba import scoring
    from nba.scoring import out_of_range, training_range

    clean = validate(synth.generate(200, 4)).clean
    ranges = training_range(clean)
    assert list(out_of_range(clean, ranges)) == [""] * len(clean)  # its own range: inside
    edited = clean.head(5).copy()
    edited.loc[1, "Customer_Age"] = ranges["Customer_Age"][1] + 1
    edited.loc[2, "Customer_Age"] = ranges["Customer_Age"][0] - 1
    edited.loc[2, "Total_Trans_Amt"] = ranges["Total_Trans_Amt"][1] + 1
    edited.loc[3, "Credit_Limit"] = np.nan  # missing is not outside
    want = ["", "Customer_Age", "Customer_Age, Total_Trans_Amt", "", ""]
    got = out_of_range(edited, ranges)  # columns compared one by one
    assert list(got) == want and str(got.dtype) == "str"
    names = list(schema.NUMERIC)[::-1]  # any column order: text follows the schema's
    matrix = edited[names].to_numpy(dtype=np.float64)
    assert list(out_of_range(edited, ranges, matrix, names)) == want  # the small-batch path
    monkeypatch.setattr(scoring, "_COLUMNS_FROM", 0)  # a "large" batch: columns, min/max first
    assert list(out_of_range(edited, ranges, matrix, names)) == want
    assert list(out_of_range(edited, None)) == [""] * 5
    assert list(out_of_range(edited, {"Customer_Age": [0, 200]})) == [""] * 5
    assert list(out_of_range(edited.iloc[:0], ranges)) == []


def test_the_bundle_records_the_training_range_and_every_face_marks_it(bundle, tmp_path):
    from nba.scoring import OUT_OF_RANGE, TRAINING_RANGE

    ranges = bundle.reference[TRAINING_RANGE]
    assert set(ranges) == set(schema.NUMERIC)
    assert all(lo <= hi for lo, hi in ranges.values())
    record = _records(1, 3)[0]
    assert recommend(bundle, record)[OUT_OF_RANGE] == ""
    # plausible (inside the hard bounds) but beyond anything the model learnt from
    older = {**record, "Customer_Age": ranges["Customer_Age"][1] + 5}
    busy = {**older, "Total_Trans_Ct": ranges["Total_Trans_Ct"][1] + 100}
    assert recommend(bundle, older)[OUT_OF_RANGE] == "Customer_Age"
    assert recommend(bundle, busy)[OUT_OF_RANGE] == "Customer_Age, Total_Trans_Ct"
    # the batch: bundle.score and `nba score` (score_file) carry the same column
    frame = pd.DataFrame([record, {**busy, schema.ID: 99}])
    scored = bundle.score(validate(frame).clean)
    assert scored[OUT_OF_RANGE].tolist() == ["", "Customer_Age, Total_Trans_Ct"]
    path = tmp_path / "two.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "two.scores.csv"
    score_file(bundle, path, out)
    written = read_table(out, required=())
    assert written[OUT_OF_RANGE].fillna("").tolist() == ["", "Customer_Age, Total_Trans_Ct"]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("Total_Trans_Ct", 100_000, "Total_Trans_Ct 100000 is above the maximum 10000"),
        ("Total_Trans_Amt", 100_000_000, "Total_Trans_Amt 100000000 is above the maximum"),
        ("Total_Relationship_Count", 40, "Total_Relationship_Count 40 is above the maximum 20"),
    ],
)
def test_implausible_values_are_rejected_with_the_bound(bundle, field, value, words):
    record = _records(1, 3)[0]
    record[field] = value
    with pytest.raises(DataError, match=words):
        recommend(bundle, record)


def test_the_blind_model_reads_the_main_models_matrix_unchanged(bundle):
    from nba.scoring import CREDIT_SCORE, credit_matrix

    clean = validate(synth.generate(500, 21)).clean
    main, credit = bundle.churn, bundle.credit_churn
    assert credit is not None  # the default settings keep protected attributes in the main model
    shared = credit_matrix(main, credit, main.model_matrix(clean), clean)
    own = credit.model_matrix(clean)
    assert shared.shape == own.shape and shared.shape[1] < main.model_matrix(clean).shape[1]
    assert np.array_equal(shared, own, equal_nan=True)
    want = credit.predict_proba(own)[:, 1]
    assert np.array_equal(score_frame(bundle, clean)[CREDIT_SCORE].to_numpy(), want)


@pytest.mark.parametrize("policy", ["", "digital_nudge"])
def test_a_batch_equals_its_customers_scored_one_by_one(bundle, policy):
    """Reasons are built per action for a batch and put back in row order; scored alone, a
    customer's row needs no ordering: both must give the same row, text for text."""
    from dataclasses import replace

    b = replace(bundle, settings={**bundle.settings, "high_risk_minimum_action": policy})
    clean = validate(synth.generate(300, 22)).clean
    batch = score_frame(b, clean)
    alone = pd.concat([score_frame(b, clean.iloc[[i]]) for i in range(len(clean))])
    assert batch["action_2"].nunique() > 2  # several actions and empty slots: real ordering
    noted = batch["action_1_reason"].str.contains("minimum-service policy")
    assert noted.any() == bool(policy) and not noted.all()
    pd.testing.assert_frame_equal(batch, alone, check_exact=True)


def test_a_batch_scored_in_blocks_equals_one_block(bundle, monkeypatch):
    """Big batches are scored block by block (memory reuse): same rows, same types."""
    import nba.scoring

    clean = validate(synth.generate(500, 24)).clean
    whole = score_frame(bundle, clean, drivers=2)
    monkeypatch.setattr(nba.scoring, "SCORE_BLOCK", 64)
    blocks = score_frame(bundle, clean, drivers=2)
    assert blocks["action_1_reason"].array._pa_array.num_chunks == 8  # 500 rows / 64
    pd.testing.assert_frame_equal(blocks, whole, check_exact=True)
    assert list(blocks.dtypes) == list(whole.dtypes)
