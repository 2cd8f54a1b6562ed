"""The notebooks' recorded results, from one CI-parameter run of all of them.

Under `make test` the notebooks were just executed by nbval (prepared by
tests/notebooks/prepare_for_nbval.py with params/ci.yaml) and NBA_NOTEBOOK_REPORTS names their
reports folder; run on its own, this folder runs `nba pipeline` with params/ci.yaml instead
(the `reports` fixture of tests/notebooks/conftest.py).
Bands, not exact floats: the same assertions hold on the real file and on the synthetic default.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

from nba import config, pipeline
from nba.evaluation import BASELINE_LEARNERS, ECE_MAX
from nba.value import COMPARISONS, success_criteria

from factories import recorded_metrics

pytestmark = pytest.mark.slow


def test_data_metrics_describe_the_source(reports):
    data = recorded_metrics(reports, "data")
    real = bool(os.environ.get(config.DATA_ENV))
    assert data["synthetic"] is (not real)
    assert data["churn_rate"] == pytest.approx(0.16, abs=0.01)
    assert data["clean_rows"] + data["rejected_rows"] == data["rows"]
    assert data["train_rows"] + data["test_rows"] == data["clean_rows"]
    assert data["test_rows"] == pytest.approx(0.2 * data["clean_rows"], abs=1)
    assert data["n_features"] == 19
    assert data["leakage_separation_min"] > 0.99  # the excluded columns do encode the target


def test_churn_metrics_are_recorded_and_strong(reports):
    churn = recorded_metrics(reports, "churn")
    assert 0 < churn["threshold"] < 1
    assert churn["roc_auc"] > 0.98
    assert churn["pr_auc"] > 0.90
    assert churn["f1"] > 0.85 and churn["precision"] > 0.85 and churn["recall"] > 0.80
    for metric in ("roc_auc", "pr_auc", "f1"):
        assert churn["cv"][metric]["mean"] == pytest.approx(churn[metric], abs=0.05)


def test_segment_metrics_meet_their_targets(reports):
    seg = recorded_metrics(reports, "segments")
    assert seg["k"] >= 4
    assert seg["silhouette"] >= 0.50
    assert seg["stability_ari"] >= 0.95
    assert seg["churn_ratio"] >= 8


def test_evaluation_agrees_with_the_churn_notebook_and_marks_every_criterion(reports):
    churn, evaluation = recorded_metrics(reports, "churn"), recorded_metrics(reports, "evaluation")
    for metric in ("roc_auc", "pr_auc", "f1", "precision", "recall"):
        # the same model on the same held-out customers: the same numbers
        assert evaluation["held_out"][metric] == pytest.approx(churn[metric], abs=1e-9)
    for row in evaluation["intervals"]:
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
    criteria = pd.DataFrame(evaluation["criteria"])
    assert len(criteria) == len(success_criteria())
    churn_rows = criteria[criteria.stage == "churn"].set_index("metric")
    targets = success_criteria().set_index("metric")
    measured = evaluation["stage1"]["measured"]  # stage 1 is judged by the restated comparison
    for metric, row in churn_rows.iterrows():
        assert row.measured == measured[metric]
        met = COMPARISONS[targets.loc[metric, "comparison"]](measured[metric], row.target)
        assert row.status == ("met" if met else "not met")


def test_the_restated_stage_one_comparison_is_recorded(reports):
    churn, evaluation = recorded_metrics(reports, "churn"), recorded_metrics(reports, "evaluation")
    data, stage1 = recorded_metrics(reports, "data"), evaluation["stage1"]
    assert stage1["n_test"] == data["test_rows"] and stage1["n_train"] == data["train_rows"]
    assert set(stage1["models"]) == {"chosen", *BASELINE_LEARNERS}
    chosen = stage1["models"]["chosen"]
    # the chosen model is notebook 04's: its PR-AUC, F1, threshold and ECE are those recorded
    assert (chosen["pr_auc"], chosen["f1"], chosen["threshold"]) == (
        churn["pr_auc"],
        churn["f1"],
        churn["threshold"],
    )
    assert stage1["ece"] == churn["ece"]
    assert {(r["baseline"], r["metric"]) for r in stage1["leads"]} == {
        (b, m) for b in BASELINE_LEARNERS for m in ("pr_auc", "f1")
    }
    for row in stage1["leads"]:
        base = stage1["models"][row["baseline"]]
        assert row["lead"] == pytest.approx(chosen[row["metric"]] - base[row["metric"]])
        assert row["ci_low"] <= row["lead"] <= row["ci_high"]  # paired bootstrap interval
        assert row["ahead"] == (row["lead"] > 0)
    ahead = all(r["ahead"] for r in stage1["leads"])
    assert stage1["met"] == (ahead and stage1["ece"] <= ECE_MAX)


def test_deployment_wrote_bundle_card_and_scores(reports):
    from nba.bundle import load_bundle

    data = recorded_metrics(reports, "data")
    ci = pipeline.load_parameters(config.PARAMS_DIR / "ci.yaml")
    settings = config.Settings(models_dir=ci["models_dir"])
    card = (reports / "model_card.md").read_text()
    assert "Model card" in card and ("SYNTHETIC DATA" in card) == data["synthetic"]
    scores = pd.read_csv(reports / "scores" / "scores.csv")
    assert len(scores) == data["clean_rows"]
    assert scores["CLIENTNUM"].is_unique
    assert set(scores["risk_band"]) <= {"low", "medium", "high"}
    bundle = load_bundle(settings.path("models_dir") / "nba.bundle")
    assert bundle.metadata["data"]["sha256"] == data["data_sha256"]
    assert (scores["churn_flag"] == (scores["churn_probability"] >= bundle.threshold)).all()


def test_actions_beat_every_baseline_and_evaluation_measures_them(reports):
    actions, evaluation = (
        recorded_metrics(reports, "actions"),
        recorded_metrics(reports, "evaluation"),
    )
    uplift = actions["uplift"]
    names = set(success_criteria().query("stage == 'actions'").metric)
    assert set(uplift) == names
    assert uplift["net_value_uplift_vs_no_action"] > 0
    criteria = pd.DataFrame(evaluation["criteria"]).query("stage == 'actions'")
    assert len(criteria) == len(names) and (criteria.status != "not measured").all()
    held = actions["held_out"]["uplift"]  # the criteria are judged on the held-out customers
    for row in criteria.itertuples():
        assert row.measured == pytest.approx(held[row.metric])
        # the engine and its baselines share the save rates: a simulation, never "met"
        assert row.basis == "assumption-based simulation"
        assert row.status == (
            "holds in simulation" if held[row.metric] > 0 else "fails in simulation"
        )


def test_evaluation_ends_with_a_verdict_per_stage(reports):
    from nba.evaluation import VERDICTS, stage_acceptance

    evaluation = recorded_metrics(reports, "evaluation")
    recorded = pd.DataFrame(evaluation["acceptance"])
    assert list(recorded.stage) == ["churn", "segments", "actions"]
    assert recorded.verdict.isin(VERDICTS).all()
    # the verdicts follow from the recorded criteria, their intervals and evidence
    again = stage_acceptance(pd.DataFrame(evaluation["criteria"]))
    assert list(again.verdict) == list(recorded.verdict)
    assert "met" not in set(pd.DataFrame(evaluation["criteria"]).query("stage == 'actions'").status)


def test_notebook_06_sizes_each_action_of_the_plan_for_a_campaign(reports):
    from nba.campaigns import power
    from nba.campaigns.plan import PlanOptions

    actions = recorded_metrics(reports, "actions")
    table = pd.DataFrame(actions["campaign_power"]).set_index("action")
    given = {a: n for a, n in actions["action_mix"].items() if a != "no_action"}
    assert set(table.index) == set(given)  # every action the plan gives, no_action left out
    params = power.load_power_params()
    for action, row in table.iterrows():
        assert row.treated + row.control == given[action]
        assert row.control == round(PlanOptions().control * given[action])
        sizes = power.required_sizes(
            row.base_churn,
            row.target_lift,
            power=params.power,
            alpha=params.alpha,
            # an action too small for any control customer is sized at the plan's default share
            control_share=row.control / given[action] if row.control else PlanOptions().control,
        )
        assert (row.needed_treated, row.needed_control) == sizes
        assert row.measurable == (row.power_at_target >= params.power)


def test_actions_economics_are_recorded_on_the_held_out_customers(reports):
    actions = recorded_metrics(reports, "actions")
    econ, held = actions["economics"], actions["held_out"]
    assert actions["criteria_customers"] == econ["customers"] == "held_out"
    for row in actions["criteria"]:  # the action criteria are judged on the held-out uplifts
        assert row["measured"] == pytest.approx(held["uplift"][row["metric"]])
    sensitivity = pd.DataFrame(econ["sensitivity"])
    base = sensitivity[sensitivity["case"] == "base"].iloc[0]
    assert base["expected_net_value"] == pytest.approx(held["expected_net_value"])
    assert base["customers"] == held["customers"]
    assert len(sensitivity) == 11 and set(sensitivity["case"]) == {"base", "low", "high"}
    moved = sensitivity.set_index(["parameter", "case"])
    assert moved.loc[("servicing_cost", "high"), "expected_net_value"] < base["expected_net_value"]
    assert moved.loc[("save_rates", "high"), "expected_net_value"] > base["expected_net_value"]
    left = pd.DataFrame(econ["high_risk_without_action"])
    assert left["customers"].sum() == base["high_risk_without_action"]
    plans = pd.DataFrame(econ["value_basis_plans"]).set_index("value_basis")
    assert (
        plans.loc["pre_decline", "value_expected_to_leave"]
        >= plans.loc["current", "value_expected_to_leave"]
    )
    prize = econ["prize"]
    assert prize["net_value_per_customer"] == pytest.approx(
        prize["expected_net_value"] / prize["customers"]
    )
    assert 0 < prize["share_of_value_at_stake"] < 1
