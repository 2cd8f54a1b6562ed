"""`nba campaign plan | record | impact | learn` end to end, and what they do with bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nba.bundle import load_bundle, save_bundle
from nba.campaigns.history import History
from nba.campaigns.impact import IMPACT_COLUMNS
from nba.campaigns.plan import PLAN_COLUMNS
from nba.campaigns.policy import engine_view
from nba.campaigns.simulator import load_world
from nba.churn import TrainOptions
from nba.cli import main
from nba.config import Settings
from nba.data import synth
from nba.data.discover import describe, write_synthetic
from nba.data.io import load, read_table, write_table
from nba.data.validate import validate


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A bundle, 3,000 customers (a few bad rows), a plan recorded in a history, and the
    simulator's outcomes for it."""
    from nba.train import train

    folder = tmp_path_factory.mktemp("campaign-cli")
    data = write_synthetic(folder / "train.csv", 3000, 11)
    bundle, _ = train(load(data), describe(data, "argument"), Settings(), TrainOptions.fast())
    bundle_path = save_bundle(bundle, folder / "nba.bundle")
    raw = synth.generate(3000, 17)
    raw.loc[5, "Customer_Age"] = -3  # two rows validation rejects
    raw.loc[9, "Card_Category"] = "Diamond"
    customers = write_table(raw, folder / "customers.parquet")
    history = folder / "history.sqlite"
    plan = folder / "plan.csv"
    args = ["campaign", "plan", str(customers), "--bundle", str(bundle_path), "--out", str(plan)]
    assert main([*args, "--history", str(history), "--campaign-id", "spring", "--seed", "5"]) == 0
    planned = pd.read_csv(plan)
    view = engine_view(bundle, validate(raw).clean)
    outcomes = load_world().respond(planned, view, 3)
    out = write_table(outcomes, folder / "outcomes.csv")
    return {
        "folder": folder,
        "bundle": bundle_path,
        "customers": customers,
        "history": history,
        "plan": plan,
        "outcomes": out,
    }


def test_plan_writes_the_contract_and_the_history(files) -> None:
    plan = pd.read_csv(files["plan"])
    assert list(plan.columns[: len(PLAN_COLUMNS)]) == list(PLAN_COLUMNS)
    assert len(plan) == 2998  # 3,000 in, 2 rejected
    rejects = pd.read_csv(files["folder"] / "plan.rejects.csv")
    assert len(rejects) == 2 and rejects["reason"].str.len().gt(0).all()
    with History(files["history"]) as h:
        assert h.campaign_ids() == ["spring"]
        assert h.counts()["decisions"] == 2998
        assert h.counts()["customers"] == 2998
        # plan decision ids are implicit in the history and come back as the plan wrote them
        assert h.decisions()["decision_id"].tolist() == plan["decision_id"].tolist()


def test_plan_is_deterministic_for_a_seed_and_a_campaign_is_planned_once(
    files, tmp_path, capsys
) -> None:
    again = tmp_path / "again.parquet"
    base = ["campaign", "plan", str(files["customers"]), "--bundle", str(files["bundle"])]
    assert main([*base, "--out", str(again), "--history", str(tmp_path / "h.sqlite")]) == 0
    assert main([*base, "--out", str(again), "--history", str(tmp_path / "h.sqlite")]) == 2
    assert "already in the history" in capsys.readouterr().err
    other = tmp_path / "other.parquet"
    assert main([*base, "--out", str(other), "--history", str(tmp_path / "h2.sqlite")]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(again), pd.read_parquet(other))


def test_pure_exploitation_and_bad_shares(files, tmp_path, capsys) -> None:
    out = tmp_path / "greedy.csv"
    base = ["campaign", "plan", str(files["customers"]), "--bundle", str(files["bundle"])]
    history = ["--history", str(tmp_path / "h.sqlite")]
    assert main([*base, "--out", str(out), *history, "--control", "0", "--explore", "0"]) == 0
    plan = pd.read_csv(out)
    assert plan["group"].eq("treatment").all() and plan["propensity"].eq(1.0).all()
    assert main([*base, "--out", str(out), *history, "--control", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "--control must be a share" in err and "Traceback" not in err


def test_plan_warns_per_action_its_control_group_cannot_measure(files, tmp_path, capsys):
    """3,000 customers are far too few to measure a 10 % cut in churn: one warning line per
    action on stderr, exit 0, the same verdicts in PLAN.summary.json; with --control 0 one
    line for the whole plan."""
    from nba.campaigns.power import POWER_COLUMNS

    out = tmp_path / "plan.parquet"
    base = ["campaign", "plan", str(files["customers"]), "--bundle", str(files["bundle"])]
    assert main([*base, "--out", str(out), "--history", str(tmp_path / "h.sqlite")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("nba campaign plan: 3,000 rows in: 2,998 planned")
    warned = [line for line in err[1:] if line.startswith("nba campaign plan: warning: ")]
    assert warned == err[1:] and warned
    summary = json.loads((tmp_path / "plan.summary.json").read_text())
    power = summary["power"]
    assert (power["power"], power["alpha"], power["target_relative_lift"]) == (0.8, 0.05, 0.1)
    rows = power["actions"]
    assert rows and all(set(POWER_COLUMNS) == set(r) for r in rows)
    short = [r["action"] for r in rows if not r["measurable"]]
    assert [w.split(": ")[2] for w in warned] == short  # one line per action it cannot measure
    plan = pd.read_parquet(out)
    chosen = plan[plan["explored"].eq(0) & plan["action"].ne("no_action")]
    assert {r["action"]: r["treated"] + r["control"] for r in rows} == chosen[
        "action"
    ].value_counts().to_dict()

    greedy = tmp_path / "greedy.parquet"
    args = ["--out", str(greedy), "--history", str(tmp_path / "h2.sqlite")]
    assert main([*base, *args, "--control", "0", "--explore", "0"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[1].startswith("nba campaign plan: warning: no control group")


def test_record_keeps_every_row_and_twice_adds_nothing(files, capsys) -> None:
    outcomes = pd.read_csv(files["outcomes"])
    bad = pd.DataFrame(
        {
            "CLIENTNUM": [outcomes["CLIENTNUM"].iloc[0], 1, outcomes["CLIENTNUM"].iloc[1], 5],
            "campaign_id": ["spring", "spring", "spring", "autumn"],
            "responded": [0, 0, 7, 0],
            "retained": [1, 1, 1, 1],
        }
    )
    messy = pd.concat([outcomes, bad], ignore_index=True)
    path = files["folder"] / "messy.csv"
    messy.to_csv(path, index=False)
    history = ["--history", str(files["history"])]
    assert main(["campaign", "record", str(path), *history]) == 0
    err = capsys.readouterr().err
    assert f"{len(messy):,} rows in: {len(outcomes):,} recorded, 4 rejected" in err
    rejects = pd.read_csv(files["folder"] / "messy.rejects.csv")
    assert len(rejects) == 4
    reasons = " | ".join(rejects["reason"])
    for words in ("duplicate", "never planned", "responded must be 0 or 1", "unknown campaign"):
        assert words in reasons
    # nothing lost: every input row is either in the history or in the rejects
    with History(files["history"]) as h:
        assert h.counts()["outcomes"] == len(outcomes)
    assert main(["campaign", "record", str(files["outcomes"]), *history]) == 0
    err = capsys.readouterr().err
    assert f"0 recorded, {len(outcomes):,} rejected" in err and "already recorded" in err
    with History(files["history"]) as h:
        assert h.counts()["outcomes"] == len(outcomes)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("CLIENTNUM,campaign_id,responded\n1,spring,1\n", "retained"),
        ("CLIENTNUM,campaign_id,responded,retained\n", "no data rows"),
        ("CLIENTNUM,campaign_id,responded,retained\n1,nope,1,1\n", "no outcome"),
    ],
)
def test_unusable_outcomes_files_exit_2_with_one_line(files, tmp_path, capsys, content, words):
    path = tmp_path / "o.csv"
    path.write_text(content)
    assert main(["campaign", "record", str(path), "--history", str(files["history"])]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_impact_and_learn(files, tmp_path, capsys) -> None:
    # record first (the order of tests is not guaranteed)
    history = ["--history", str(files["history"])]
    main(["campaign", "record", str(files["outcomes"]), *history])
    report = tmp_path / "impact.html"
    assert main(["campaign", "impact", *history, "--out", str(report)]) == 0
    summary = json.loads(report.with_suffix(".json").read_text())
    assert summary["actions"]
    for row in summary["actions"]:
        assert set(IMPACT_COLUMNS) <= set(row)
    assert "<img" in report.read_text()
    assert (
        main(["campaign", "impact", *history, "--campaign-id", "nope", "--out", str(report)]) == 2
    )

    new = tmp_path / "learnt.bundle"
    assert (
        main(["campaign", "learn", "--bundle", str(files["bundle"]), *history, "--out", str(new)])
        == 0
    )
    out = capsys.readouterr().out
    assert "Off-policy value" in out
    learnt = load_bundle(new)
    meta = learnt.metadata["campaigns"]
    assert meta["campaigns"] == {"spring": meta["outcomes"]}
    assert meta["parent_bundle"] and meta["bundle_id"] != meta["parent_bundle"]
    assert {"new", "parent", "difference"} <= set(meta["off_policy"])
    # the learnt bundle scores like any other, with its own values
    clean = validate(read_table(files["customers"])).clean.head(200)
    assert not learnt.score(clean)["action_1_value"].equals(
        load_bundle(files["bundle"]).score(clean)["action_1_value"]
    )


def test_learn_without_outcomes_is_one_line(files, tmp_path, capsys) -> None:
    args = ["campaign", "learn", "--bundle", str(files["bundle"]), "--out", str(tmp_path / "x")]
    assert main([*args, "--history", str(tmp_path / "empty.sqlite")]) == 2
    assert "no recorded outcome" in capsys.readouterr().err


def test_history_defaults_to_the_environment(files, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NBA_HISTORY", str(tmp_path / "env.sqlite"))
    out = tmp_path / "p.parquet"
    args = ["campaign", "plan", str(files["customers"]), "--bundle", str(files["bundle"])]
    assert main([*args, "--out", str(out)]) == 0
    assert (tmp_path / "env.sqlite").is_file()


def test_simulate_answers_a_plan_file_and_scores_it_against_the_oracle(files, tmp_path, capsys):
    out = tmp_path / "answers.parquet"
    args = ["campaign", "simulate", str(files["plan"]), "--customers", str(files["customers"])]
    assert main([*args, "--bundle", str(files["bundle"]), "--out", str(out), "--seed", "3"]) == 0
    said = capsys.readouterr().out
    assert "of the oracle's" in said
    answers = pd.read_parquet(out)
    # the same answers the fixture drew in memory with the same seed
    expected = pd.read_csv(files["outcomes"])
    assert answers["retained"].tolist() == expected["retained"].tolist()
    plan = pd.read_csv(files["plan"])
    given = plan["group"].eq("treatment") & plan["action"].ne("no_action")
    assert answers.loc[~given.to_numpy(), "responded"].eq(0).all()  # nothing delivered
