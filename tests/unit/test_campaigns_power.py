"""Sample sizes for campaigns that prove themselves: the two-proportion formula against R's
documented `power.prop.test` values, unequal groups, and the per-action table of a plan."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from nba import config
from nba.campaigns import power as pw
from nba.errors import NbaError


def test_textbook_values_of_r_power_prop_test() -> None:
    # R, ?power.prop.test: power.prop.test(p1 = .50, p2 = .75, power = .90)  =>  n = 76.7
    assert pw.required_per_arm(0.75, 0.25, power=0.9) == 77
    assert pw.required_per_arm(0.50, 0.25, power=0.9) == 77  # symmetric in churn/retention
    # power.prop.test(n = 50, p1 = .50, p2 = .75)  =>  power = 0.7401659
    assert pw.detection_power(50, 50, 0.75, 0.25) == pytest.approx(0.7401659, abs=5e-7)
    # power.prop.test(n = 50, p1 = .5, power = .90)  =>  p2 = 0.8026 (a lift of 30.26 points)
    assert pw.minimum_detectable_lift(50, 50, 0.5, power=0.9) == pytest.approx(0.3026, abs=5e-5)


def test_defaults_are_80_percent_power_at_5_percent_and_equal_the_params_file() -> None:
    # Fleiss' formula by hand at z = 1.959964, 0.841621: 30 % churn cut to 27 %
    p1, p2, za, zb = 0.30, 0.27, 1.959964, 0.841621
    pbar = (p1 + p2) / 2
    n = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    n = (n / 0.03) ** 2
    assert pw.required_per_arm(0.30, 0.03) == math.ceil(n) == 3554
    assert pw.required_per_arm(0.30, 0.10, relative=True) == 3554
    values = yaml.safe_load((config.PARAMS_DIR / "power.yaml").read_text())
    assert pw.load_power_params() == pw.PowerParams(**values) == pw.PowerParams()


def test_unequal_groups_return_the_treated_size_and_just_reach_the_power() -> None:
    assert pw.required_per_arm(0.3, 0.03, control_share=0.5) == pw.required_per_arm(0.3, 0.03)
    treated = pw.required_per_arm(0.3, 0.03, control_share=0.1)
    t, c = pw.required_sizes(0.3, 0.03, control_share=0.1)
    assert treated == t and c == pytest.approx(t * 0.1 / 0.9, abs=1)
    assert t + c > 2 * 3554  # a 10 % control costs customers: ~2.8 times as many in all
    assert pw.detection_power(t, c, 0.3, 0.03) >= 0.8 > pw.detection_power(t - 2, c - 2, 0.3, 0.03)
    # the minimum detectable lift of exactly those sizes is the lift asked for
    assert pw.minimum_detectable_lift(t, c, 0.3) == pytest.approx(0.03, abs=2e-5)


@pytest.mark.parametrize(
    ("base", "lift", "words"),
    [(0.0, 0.01, "base_rate"), (1.2, 0.1, "base_rate"), (0.3, 0.0, "lift"), (0.3, 0.4, "lift")],
)
def test_impossible_rates_are_refused(base: float, lift: float, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        pw.required_per_arm(base, lift)


def test_no_control_group_detects_nothing() -> None:
    assert pw.detection_power(1000, 0, 0.3, 0.1) == 0.0
    assert math.isnan(pw.minimum_detectable_lift(1000, 0, 0.3))
    assert math.isnan(pw.minimum_detectable_lift(3, 1, 0.3))  # not even churn cut to zero


def _plan(sizes: dict[str, tuple[int, int]], churn: float = 0.4) -> pd.DataFrame:
    """A plan with `sizes[action] = (treated, control)` policy rows per action, plus explored
    and no_action rows that the table must leave out."""
    rows = []
    for action, (nt, nc) in sizes.items():
        rows += [(action, "treatment", 0)] * nt + [(action, "control", 0)] * nc
    rows += [("retention_offer", "treatment", 1)] * 50  # explored: no control twins
    rows += [("no_action", "treatment", 0)] * 40 + [("no_action", "control", 0)] * 5
    frame = pd.DataFrame(rows, columns=["action", "group", "explored"])
    return frame.assign(churn_probability=churn)


def test_plan_power_counts_as_the_impact_report_and_flags_what_it_cannot_measure() -> None:
    plan = _plan({"retention_offer": (20_000, 2_500), "digital_nudge": (900, 100)})
    table = pw.plan_power(plan).set_index("action")
    assert list(table.columns) == list(pw.POWER_COLUMNS[1:])
    assert sorted(table.index) == ["digital_nudge", "retention_offer"]  # no_action left out
    big, small = table.loc["retention_offer"], table.loc["digital_nudge"]
    assert (big["treated"], big["control"]) == (20_000, 2_500)  # explored rows left out
    assert big["base_churn"] == pytest.approx(0.4) and big["target_lift"] == pytest.approx(0.04)
    assert big["measurable"] and big["mde"] <= 0.04 <= small["mde"]
    assert not small["measurable"] and small["power_at_target"] < 0.8
    # the sizes the target needs, at the action's own 10 % control share, are what it lacks
    t, c = pw.required_sizes(0.4, 0.04, control_share=0.1)
    assert (small["needed_treated"], small["needed_control"]) == (t, c)
    assert small["treated"] < t and small["control"] < c <= big["control"]
    lines = pw.power_warnings(table.reset_index(), 0.8, 0.05)
    assert len(lines) == 1 and lines[0].startswith("digital_nudge: 100 control and 900 treated")
    assert f"{c:,} control and {t:,} treated" in lines[0]


def test_a_plan_that_can_measure_every_action_warns_nothing() -> None:
    plan = _plan({"retention_offer": (20_000, 2_500), "cross_sell": (30_000, 3_500)})
    table = pw.plan_power(plan)
    assert table["measurable"].all()
    assert pw.power_warnings(table, 0.8, 0.05) == []
    # a larger target lift is easier: a small action becomes measurable
    small = _plan({"digital_nudge": (900, 100)})
    assert not pw.plan_power(small)["measurable"].iloc[0]
    assert pw.plan_power(small, lift=0.5)["measurable"].iloc[0]
    assert pw.plan_power(small, lift=0.2, relative=False)["measurable"].iloc[0]


def test_a_plan_without_control_is_one_warning() -> None:
    table = pw.plan_power(_plan({"retention_offer": (5_000, 0), "cross_sell": (800, 0)}))
    assert table["mde"].isna().all() and not table["measurable"].any()
    lines = pw.power_warnings(table, 0.8, 0.05)
    assert len(lines) == 1 and lines[0].startswith("no control group")


def test_power_params_file_errors_name_the_problem(tmp_path) -> None:
    bad = tmp_path / "power.yaml"
    bad.write_text("power: 0.8\nalpha: 0.05\nlift: 0.1\n")
    with pytest.raises(NbaError, match="unknown key.*lift"):
        pw.load_power_params(bad)
    bad.write_text("power: 1.5\n")
    with pytest.raises(NbaError, match="power must be a share"):
        pw.load_power_params(bad)
    with pytest.raises(NbaError, match="No power parameters file"):
        pw.load_power_params(tmp_path / "missing.yaml")
    assert np.isclose(pw.load_power_params().power, 0.8)
