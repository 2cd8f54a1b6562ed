"""A response simulator with a documented ground truth (`params/world.yaml`).

The world answers a campaign plan with outcomes (responded, retained) drawn from its true
rates, and knows each action's true effect for every customer, so it can score any plan
against the oracle (the allowed action with the highest TRUE net value for each customer).
The engine never reads the world; tests and notebook 09 use it to check that learning finds
what the world hides. The formulas are written out in `params/world.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from nba import config
from nba.actions import NO_ACTION, TRAITS
from nba.campaigns.policy import EngineView
from nba.data import schema

WORLD_FILE = config.PARAMS_DIR / "world.yaml"


@dataclass(frozen=True)
class World:
    """True churn calibration and, per action, response rate, additive save rates and harm."""

    churn_scale: float
    churn_shift: float
    response: dict[str, float]
    save: dict[str, dict[str, float]]  # action → {"default": r, trait: bonus, ...}
    harm: dict[str, dict[str, float]]  # action → {trait: change in P(retained)}

    def baseline_churn(self, p: np.ndarray) -> np.ndarray:
        """True P(churn | no action) from the model's churn score."""
        return np.clip(self.churn_scale * np.asarray(p) + self.churn_shift, 0.001, 0.999)

    def effects(self, view: EngineView) -> np.ndarray:
        """True effect of each catalogue action on P(retained), n × A (0 for no_action and for
        actions the world does not know)."""
        p0 = self.baseline_churn(view.p)
        out = np.zeros((len(p0), len(view.ids)))
        for j, action in enumerate(view.ids):
            if action == NO_ACTION or action not in self.save:
                continue
            rate = np.full(len(p0), self.save[action].get("default", 0.0))
            harm = np.zeros(len(p0))
            for trait in TRAITS:
                has = np.asarray(view.traits[trait], dtype=np.float64)
                rate += has * self.save[action].get(trait, 0.0)
                harm += has * self.harm.get(action, {}).get(trait, 0.0)
            out[:, j] = p0 * rate + harm
        return out

    def true_net(self, view: EngineView) -> np.ndarray:
        """True expected net value ($) of each action for each customer, n × A: effect × value
        at risk − cost; -inf where the rules do not allow it, 0 for no_action."""
        net = self.effects(view) * view.var[:, None] - view.cost[None, :]
        net[~view.allowed] = -np.inf
        net[:, view.j0] = 0.0
        return net

    def respond(self, plan: pd.DataFrame, view: EngineView, seed: int) -> pd.DataFrame:
        """Outcomes for a plan (same customers as `view`, same order): CLIENTNUM, campaign_id,
        responded, retained. Control rows and no_action receive nothing."""
        rng = np.random.default_rng(seed)
        n = len(plan)
        j = pd.Index(view.ids).get_indexer(plan["action"].astype("str"))
        delivered = plan["group"].eq("treatment").to_numpy() & (j != view.j0)
        tau = np.where(delivered, self.effects(view)[np.arange(n), j], 0.0)
        p_retained = np.clip(1 - self.baseline_churn(view.p) + tau, 0.0, 1.0)
        response = np.asarray([self.response.get(a, 0.0) for a in view.ids])[j]
        return pd.DataFrame(
            {
                schema.ID: plan[schema.ID].to_numpy(),
                "campaign_id": plan["campaign_id"].to_numpy(),
                "responded": (delivered & (rng.random(n) < response)).astype(np.int8),
                "retained": (rng.random(n) < p_retained).astype(np.int8),
            }
        )

    def value_of(
        self, actions: pd.Series | np.ndarray, view: EngineView, delivered: Any = True
    ) -> float:
        """True expected net value ($, summed) of giving each customer the action named
        (no_action or not delivered: 0)."""
        j = pd.Index(view.ids).get_indexer(np.asarray(actions, dtype=object))
        net = self.true_net(view)[np.arange(len(j)), j]
        give = np.asarray(delivered, dtype=bool) & (j != view.j0)
        return float(np.where(give, net, 0.0).sum())

    def oracle(self, view: EngineView) -> tuple[np.ndarray, float]:
        """(the oracle's action per customer, its true net value $): the best true action."""
        net = self.true_net(view)
        best = np.argmax(net, axis=1)
        return np.asarray(view.ids, dtype=object)[best], float(
            net[np.arange(len(best)), best].sum()
        )


def load_world(path: str | Path | None = None) -> World:
    """The world in `path` (default params/world.yaml); see that file for the meaning."""
    raw = yaml.safe_load(Path(path or WORLD_FILE).read_text(encoding="utf-8"))
    actions = raw["actions"]
    for action, spec in actions.items():
        unknown = set(spec.get("save", {})) - {"default", *TRAITS} | set(
            spec.get("harm", {})
        ) - set(TRAITS)
        if unknown:
            raise ValueError(
                f"world action {action}: unknown trait(s) {', '.join(sorted(unknown))}"
            )
    return World(
        churn_scale=float(raw["churn"]["scale"]),
        churn_shift=float(raw["churn"]["shift"]),
        response={a: float(s.get("response", 0.0)) for a, s in actions.items()},
        save={a: {k: float(v) for k, v in s.get("save", {}).items()} for a, s in actions.items()},
        harm={
            a: {k: float(v) for k, v in (s.get("harm") or {}).items()} for a, s in actions.items()
        },
    )


def wave_customers(rows: int, seed: int) -> pd.DataFrame:
    """`rows` clean synthetic customers (what `nba data synth --rows N --seed S` writes)."""
    from nba.data import synth
    from nba.data.validate import validate

    return validate(synth.generate(rows, seed)).clean


def run_waves(
    bundle: Any,
    world: World,
    history: Any,
    waves: int,
    rows: int,
    seed: int,
    options: Any = None,
) -> tuple[pd.DataFrame, Any]:
    """The closed loop in the simulator: `waves` campaigns of `rows` new synthetic customers,
    each planned by the current bundle with `options` (default: the plan defaults), answered
    by `world`, recorded in `history` and learnt from; then one more wave of customers
    planned for pure exploitation (no control, no exploration) by the first and by the last
    bundle. Returns (one row per wave, the last bundle). Per wave: the plan's true net value
    ($, control and exploration included), the oracle's, and the ratio of an exploitation-only
    plan of that wave's bundle on the final customers to the oracle's value on them."""
    from nba.campaigns.learn import learn_from_history
    from nba.campaigns.plan import PlanOptions, make_plan
    from nba.campaigns.policy import engine_view

    options = options or PlanOptions(seed=seed)
    exploit = PlanOptions(control=0.0, explore=0.0, seed=seed)
    final = wave_customers(rows, seed + 10_000)
    final_view = engine_view(bundle, final)
    _, final_oracle = world.oracle(final_view)
    records = []
    current = bundle
    for wave in range(1, waves + 2):
        greedy = make_plan(current, final, exploit, campaign_id="final")
        record = {
            "wave": wave,
            "bundle_id": current.metadata.get("bundle_id", "first"),
            "exploit_value": world.value_of(greedy["action"], final_view),
            "oracle_value": final_oracle,
        }
        record["ratio"] = record["exploit_value"] / final_oracle
        if wave <= waves:
            customers = wave_customers(rows, seed + wave)
            plan = make_plan(
                current, customers, replace_seed(options, seed + wave), campaign_id=f"wave-{wave}"
            )
            view = engine_view(current, customers)
            outcomes = world.respond(plan, view, seed + 100 + wave)
            history.record_decisions(plan.assign(channel="batch"), customers)
            recorded, _ = history.record_outcomes(outcomes)
            treated = plan["group"].eq("treatment").to_numpy()
            record.update(
                plan_value=world.value_of(plan["action"], view, treated),
                plan_oracle=world.oracle(view)[1],
                outcomes=recorded,
            )
            current = learn_from_history(bundle, history).bundle
        records.append(record)
    return pd.DataFrame(records), current


def replace_seed(options: Any, seed: int) -> Any:
    """The plan options with another seed (each wave draws its own groups)."""
    from dataclasses import replace

    return replace(options, seed=seed)


def world_table(world: World, catalogue: Any) -> pd.DataFrame:
    """Per action: the catalogue's assumed default save rate and the world's true one, the
    world's trait bonuses and harms (the hidden truth, side by side with the assumption)."""
    rows = []
    for action in catalogue.actions:
        if action.id not in world.save:
            continue
        save = world.save[action.id]
        rows.append(
            {
                "action": action.id,
                "assumed_save_default": action.save_rate["default"],
                "assumed_by_trait": ", ".join(
                    f"{t} {action.save_rate[t]:.2f}" for t in action.suits
                ),
                "true_save_default": save.get("default", 0.0),
                "true_bonus_by_trait": ", ".join(
                    f"{t} {v:+.2f}" for t, v in save.items() if t != "default"
                ),
                "true_harm": ", ".join(
                    f"{t} {v:+.2f}" for t, v in world.harm.get(action.id, {}).items()
                ),
                "response_rate": world.response.get(action.id, 0.0),
            }
        )
    return pd.DataFrame(rows)


def true_average_effects(world: World, bundle: Any, interactions: pd.DataFrame) -> pd.Series:
    """The world's true average effect of each action on P(retained) over the customers of
    `interactions` (with customer records) the rules allow it for: what `learn` estimates."""
    from nba.campaigns.history import CUSTOMER_COLUMNS
    from nba.campaigns.policy import engine_view

    view = engine_view(bundle, interactions.loc[:, [schema.ID, *CUSTOMER_COLUMNS]])
    true = world.effects(view)
    return pd.Series(
        {
            a: float(true[view.allowed[:, j], j].mean())
            for j, a in enumerate(view.ids)
            if a != NO_ACTION and view.allowed[:, j].any()
        },
        name="true_effect",
    )


def simulate_file(
    plan_path: Any, customers_path: Any, bundle_path: Any, out: Any, world_path: Any, seed: int
) -> tuple[pd.DataFrame, float, float]:
    """`nba campaign simulate`: the world's outcomes for a plan file (CSV or Parquet), from the
    plan's customers (the file that was planned) and the bundle that planned it (its churn
    score is the world's basis); written to `out` as an outcomes file. Returns (outcomes, the
    plan's true net value $ (treatment rows), the oracle's on the same customers)."""
    from pathlib import Path

    from nba.bundle import load_bundle
    from nba.campaigns.policy import engine_view
    from nba.data.io import read_table, write_table
    from nba.data.validate import validate
    from nba.errors import DataError

    plan = read_table(Path(plan_path), required=(schema.ID, "campaign_id", "group", "action"))
    clean = validate(read_table(Path(customers_path))).clean.set_index(schema.ID, drop=False)
    ids = pd.to_numeric(plan[schema.ID], errors="coerce")
    missing = ~ids.isin(clean.index)
    if missing.any():
        raise DataError(
            f"{int(missing.sum()):,} plan rows have no valid customer in {customers_path} "
            f"(first CLIENTNUM {plan[schema.ID].iloc[int(missing.to_numpy().argmax())]})"
        )
    customers = clean.loc[ids.astype(np.int64).to_numpy()].reset_index(drop=True)
    view = engine_view(load_bundle(Path(bundle_path)), customers)
    world = load_world(world_path)
    plan = plan.reset_index(drop=True)
    outcomes = world.respond(plan, view, seed)
    write_table(outcomes, Path(out))
    value = world.value_of(plan["action"], view, plan["group"].eq("treatment").to_numpy())
    return outcomes, value, world.oracle(view)[1]
