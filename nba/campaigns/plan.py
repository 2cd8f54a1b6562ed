"""Campaign plans: a random control group, exploration, and the logged propensity of each row.

How a plan is drawn for a batch (all draws from one `numpy` generator seeded with `seed`, so a
plan is the same for the same input, bundle and seed):

1. The policy: each customer's best action by the bundle's engine (`a*`, possibly no_action);
   under `budget` ($), greedy by expected net value per $ until the budget is spent, the rest
   get no_action.
2. Control: within each stratum (segment × risk band) exactly round(control × size) customers,
   chosen at random, form the control group: they keep `a*` in the plan but receive nothing.
   Their propensity is that stratum's exact control share.
3. Exploration: each treatment customer with an alternative (another allowed action than `a*`;
   under a budget, only customers the budget funds) is explored with probability `explore`.
   An explored customer gets an alternative drawn from Thompson probabilities: the share of
   `THOMPSON_DRAWS` draws from the engine's current uncertainty about each action's effect
   (the posterior `learn` stored, or the prior around the catalogue) in which that
   alternative is the best, mixed with a uniform share `UNIFORM_FLOOR` so that every
   alternative keeps a chance. `method="uniform"` uses the uniform share alone (the floor to
   beat). The action is drawn from exactly these probabilities, so the logged propensity is
   exact, not an estimate.

Propensities: control `c_s`; treatment, not explored `(1 − c_s)(1 − e_x)`; explored
`(1 − c_s) e q(b | x)`, with `e_x = explore` for customers that have an alternative, else 0.
`delivered_propensity` is the probability of what the customer actually received (nothing for
control and no_action rows: control or no_action chosen), what off-policy evaluation divides by.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from nba.actions import NO_ACTION, allocate_budget, effect_features
from nba.campaigns.policy import (
    EngineView,
    bundle_id,
    concat_views,
    engine_view,
    posterior,
    prior_sd,
)
from nba.data import schema
from nba.data.io import one_line

log = logging.getLogger(__name__)

PLAN_COLUMNS = (
    schema.ID,
    "campaign_id",
    "group",
    "action",
    "propensity",
    "churn_probability",
    "segment",
    "expected_value",
    "bundle_id",
)
#: Columns a plan adds to the contract's: what the history, impact and learning also use.
EXTRA_COLUMNS = (
    "decision_id",
    "segment_name",
    "risk_band",
    "explored",
    "value_at_risk",
    "cost",
    "delivered_propensity",
)
THOMPSON_DRAWS = 64
UNIFORM_FLOOR = 0.2
METHODS = ("thompson", "uniform")


@dataclass(frozen=True)
class PlanOptions:
    """How a plan is drawn: control and explore shares in [0, 1), budget in $ (None: none)."""

    control: float = 0.10
    explore: float = 0.10
    budget: float | None = None
    seed: int = 42
    method: str = "thompson"

    def check(self) -> None:
        for name in ("control", "explore"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise ValueError(
                    f"--{name} must be a share from 0 up to (not including) 1, got {v}"
                )
        if self.budget is not None and self.budget < 0:
            raise ValueError(f"--budget must be an amount >= 0, got {self.budget}")
        if self.method not in METHODS:
            raise ValueError(f"exploration method must be {' or '.join(METHODS)}")


def default_campaign_id(bid: str, clients: np.ndarray, options: PlanOptions) -> str:
    """A campaign id that depends only on the bundle, the customers and the seed (so the same
    plan gets the same id): "cmp-" + 10 hex digits."""
    h = hashlib.sha256(f"{bid}|{options}".encode())
    h.update(np.ascontiguousarray(clients, dtype=np.int64).tobytes())
    return "cmp-" + h.hexdigest()[:10]


def _policy(view: EngineView, budget: float | None) -> np.ndarray:
    """a* per customer (column index): the engine's best, or under a budget the greedy
    allocation (customers it does not fund get no_action)."""
    best = view.best()
    if budget is None:
        return best
    rows = np.arange(len(best))
    acted = best != view.j0
    candidates = pd.DataFrame(
        {
            "customer": rows[acted],
            "action": np.asarray(view.ids, dtype=object)[best[acted]],
            "value": view.net[rows[acted], best[acted]],
            "cost": view.cost[best[acted]],
        }
    )
    funded = allocate_budget(candidates, float(budget))
    out = np.full(len(best), view.j0)
    who = funded["customer"].to_numpy(dtype=np.int64)
    out[who] = best[who]
    return out


def _decision_ids(campaign_id: str, clients: np.ndarray) -> pd.arrays.ArrowStringArray:
    """`<campaign_id>:<CLIENTNUM>` per customer, built by arrow (no Python string per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from nba.actions import text_array

    digits = pc.cast(pa.array(clients), pa.large_string())
    prefix = pa.scalar(f"{campaign_id}:", pa.large_string())
    return text_array(pc.binary_join_element_wise(prefix, digits, pa.scalar("", pa.large_string())))


def _labels(names: list[str], codes: np.ndarray) -> pd.arrays.ArrowStringArray:
    """`names[codes]` as a "str" column, built by arrow from the few names."""
    import pyarrow as pa

    from nba.actions import text_array

    return text_array(pa.array(names, pa.large_string()).take(pa.array(codes)))


def _control(
    view: EngineView, share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(is control, control share of the customer's stratum): exactly round(share × size)
    random customers of each segment × risk band stratum."""
    n = len(view.p)
    stratum = view.segment.astype(np.int64) * 3 + view.band
    keys = rng.random(n)
    order = np.lexsort((keys, stratum))
    sizes = np.bincount(stratum)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[stratum[order]]
    take = np.rint(share * sizes).astype(np.int64)
    return rank < take[stratum], (take / np.maximum(sizes, 1))[stratum]


def thompson_probabilities(
    bundle: Any, view: EngineView, rows: np.ndarray, options: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """For customers `rows`: P(each action is the best among `options` (rows × A booleans))
    under `THOMPSON_DRAWS` draws of the effect coefficients from the bundle's posterior (the
    prior around the catalogue for actions it has not learnt), mixed with `UNIFORM_FLOOR`."""
    A = len(view.ids)
    post = posterior(bundle)
    sd = prior_sd()
    z = view.z[rows]
    z_credit = effect_features(view.p_credit[rows], {k: v[rows] for k, v in view.traits.items()})
    base = view.effects()[rows]  # the engine's current effect estimate (learnt or assumed)
    var = view.var[rows]
    wins = np.zeros((len(rows), A))
    # one draw of every action's coefficient noise per Thompson draw: noise = L ε
    chol = {}
    for j, action in enumerate(view.ids):
        if action == NO_ACTION:
            continue
        cov = post[action][1] if action in post else np.diag(sd**2)
        chol[j] = np.linalg.cholesky(cov + 1e-12 * np.eye(len(sd)))
    cols = np.asarray(list(chol))
    K, F = THOMPSON_DRAWS, len(sd)
    eps = rng.standard_normal((K, len(cols), F))
    L = np.stack([chol[j] for j in cols.tolist()])  # A' × F × F
    W = np.einsum("aij,kaj->kai", L, eps).transpose(2, 0, 1).reshape(F, K * len(cols))
    # a credit action's draw reads the blind score's features, as its value does: the other
    # actions' columns first, then the credit actions', each block from its own features
    credit = view.credit[cols]
    order = np.argsort(credit, kind="stable")
    cols, W3, m = cols[order], W.reshape(F, K, len(cols))[:, :, order], int((~credit).sum())
    W_main, W_credit = W3[:, :, :m].reshape(F, -1), W3[:, :, m:].reshape(F, -1)
    allowed = options[:, cols]
    for lo in range(0, len(rows), 20_000):  # all draws at once, 20,000 customers at a time
        hi = min(lo + 20_000, len(rows))
        noise = np.empty((hi - lo, K, len(cols)))
        noise[:, :, :m] = (z[lo:hi] @ W_main).reshape(hi - lo, K, m)
        noise[:, :, m:] = (z_credit[lo:hi] @ W_credit).reshape(hi - lo, K, len(cols) - m)
        noise += base[lo:hi, None, cols]
        noise *= var[lo:hi, None, None]
        noise -= view.cost[cols]
        noise += np.where(allowed[lo:hi], 0.0, -np.inf)[:, None, :]
        sampled = noise
        best = cols[np.argmax(sampled, axis=2)]  # (customers, draws) → action column
        counts = np.bincount(
            (np.arange(hi - lo)[:, None] * A + best).ravel(), minlength=(hi - lo) * A
        )
        wins[lo:hi] += counts.reshape(hi - lo, A)
    q = wins / THOMPSON_DRAWS
    n_opt = np.maximum(options.sum(axis=1, keepdims=True), 1)
    return np.where(options, (1 - UNIFORM_FLOOR) * q + UNIFORM_FLOOR / n_opt, 0.0)


def make_plan(
    bundle: Any,
    customers: pd.DataFrame,
    options: PlanOptions | None = None,
    campaign_id: str | None = None,
    bid: str | None = None,
    view: EngineView | None = None,
) -> pd.DataFrame:
    """One plan row per customer (clean customers, as `validate` returns them): the contract's
    `PLAN_COLUMNS` then `EXTRA_COLUMNS`. Deterministic for the same input, bundle and seed.
    `view`: the bundle's engine over these customers when it was computed elsewhere (on a
    Dask cluster, `cluster_view`); the plan is the same either way."""
    options = options or PlanOptions()
    options.check()
    # thin matrices (n × 22): one BLAS thread is faster than two fighting over a busy machine
    with threadpool_limits(limits=1, user_api="blas"):
        return _make_plan(bundle, customers, options, campaign_id, bid, view)


def _view_part(bundle: Any, part: pd.DataFrame) -> tuple[EngineView, str]:
    """A Dask task: the engine over one part of the customers, and the worker that ran it."""
    from nba.scoring_dask import _worker_name

    with threadpool_limits(limits=1, user_api="blas"):
        return engine_view(bundle, part), _worker_name()


def cluster_view(
    bundle: Any, customers: pd.DataFrame, client: Any, rows_per_part: int = 100_000
) -> tuple[EngineView, dict[str, int]]:
    """The engine over `customers` computed on a Dask cluster (`nba.scoring_dask.connect`):
    the bundle is scattered once to every worker (no shared disk needed), the customers go in
    consecutive parts (at least two per worker, at most `rows_per_part` rows each), and the
    parts' views come back in order. Returns (the view, worker address → parts it ran): the
    same view, value for value, as `engine_view` here, so the plan drawn from it is the same.
    A worker that dies or a cluster that goes away is a `ClusterError` in one sentence."""
    import copy

    from distributed import KilledWorker
    from distributed.comm import CommClosedError

    from nba.actions import population_medians
    from nba.scoring_dask import ClusterError, _cluster_name

    if bundle.reference.get("population_medians") is None:
        # the engine's trait medians come from the whole batch, not from each part
        bundle = copy.copy(bundle)
        bundle.reference = {**bundle.reference, "population_medians": population_medians(customers)}
    n = len(customers)
    workers = max(len(client.scheduler_info().get("workers", {})), 1)
    k = max(2 * workers, -(-n // rows_per_part))
    size = max(-(-n // k), 1)
    where = _cluster_name(client)
    try:
        shared = client.scatter(bundle, broadcast=True, hash=False)
        parts = client.scatter([customers.iloc[lo : lo + size] for lo in range(0, n, size)])
        done = client.gather(client.map(_view_part, [shared] * len(parts), parts, pure=False))
    except KilledWorker as err:
        raise ClusterError(
            f"a Dask worker of {where} died while scoring the plan ({one_line(err)}); give the "
            "workers more memory"
        ) from None
    except (CommClosedError, TimeoutError, OSError) as err:
        raise ClusterError(f"lost {where} while scoring the plan: {one_line(err)}") from None
    ran: dict[str, int] = {}
    for _, worker in done:
        ran[worker] = ran.get(worker, 0) + 1
    return concat_views([v for v, _ in done]), ran


def _make_plan(
    bundle: Any,
    customers: pd.DataFrame,
    options: PlanOptions,
    campaign_id: str | None,
    bid: str | None,
    view: EngineView | None = None,
) -> pd.DataFrame:
    view = engine_view(bundle, customers) if view is None else view
    if len(view.client) != len(customers):
        raise ValueError(f"the engine view has {len(view.client):,} rows for {len(customers):,}")
    n, A = view.net.shape
    rows = np.arange(n)
    bid = bid or bundle_id(bundle)
    campaign_id = campaign_id or default_campaign_id(bid, view.client, options)
    rng = np.random.default_rng(options.seed)

    star = _policy(view, options.budget)
    control, c_s = _control(view, options.control, rng)

    alternatives = view.allowed.copy()
    alternatives[:, view.j0] = False
    alternatives[rows, star] = False
    if options.budget is not None:
        alternatives[star == view.j0] = False  # the budget funds no one else
    explorable = alternatives.any(axis=1) & ~control
    e_x = np.where(alternatives.any(axis=1), options.explore, 0.0)
    explored = explorable & (rng.random(n) < options.explore)

    action = star.copy()
    prop = np.where(control, c_s, (1 - c_s) * (1 - e_x))
    todo = np.flatnonzero(explored)
    if todo.size:
        if options.method == "thompson":
            q = thompson_probabilities(bundle, view, todo, alternatives[todo], rng)
        else:
            q = alternatives[todo] / alternatives[todo].sum(axis=1, keepdims=True)
        cum = np.cumsum(q, axis=1)
        u = rng.random(todo.size)[:, None] * cum[:, -1:]
        pick = np.minimum((cum <= u).sum(axis=1), A - 1)
        action[todo] = pick
        prop[todo] = (1 - c_s[todo]) * options.explore * q[np.arange(todo.size), pick]

    delivered_none = control | (action == view.j0)
    # what the customer received: nothing (control, or no_action chosen and not explored) …
    none_prob = c_s + (1 - c_s) * (1 - e_x) * (star == view.j0)
    delivered = np.where(delivered_none, none_prob, prop)
    value = view.net[rows, action]
    plan = pd.DataFrame(
        {
            schema.ID: view.client,
            "campaign_id": _labels([campaign_id], np.zeros(n, dtype=np.int64)),
            "group": _labels(["treatment", "control"], control.astype(np.int64)),
            "action": _labels(list(view.ids), action),
            "propensity": prop,
            "churn_probability": view.p,
            "segment": view.segment,
            "expected_value": np.where(np.isfinite(value), value, 0.0),
            "bundle_id": _labels([bid], np.zeros(n, dtype=np.int64)),
            "decision_id": _decision_ids(campaign_id, view.client),
            "segment_name": _labels(list(view.segment_names), view.segment),
            "risk_band": _labels(["low", "medium", "high"], view.band),
            "explored": explored.astype(np.int8),
            "value_at_risk": view.var,
            "cost": view.cost[action],
            "delivered_propensity": delivered,
        },
        copy=False,
    )
    log.info(
        "plan %s: %d customers, %d control, %d explored", campaign_id, n, control.sum(), todo.size
    )
    return plan


def plan_summary(plan: pd.DataFrame) -> dict[str, Any]:
    """Counts a person checks: customers, control, explored, contacted, cost and expected net
    value ($) of the treatment group."""
    treated = plan["group"].eq("treatment") & plan["action"].ne(NO_ACTION)
    return {
        "customers": len(plan),
        "control": int(plan["group"].eq("control").sum()),
        "explored": int(plan["explored"].sum()),
        "contacted": int(treated.sum()),
        "cost": float(plan.loc[treated, "cost"].sum()),
        "expected_net_value": float(plan.loc[treated, "expected_value"].sum()),
    }


@dataclass(frozen=True)
class PlanResult:
    rows_in: int
    planned: int
    rejected: int
    campaign_id: str
    output: Any
    rejects: Any
    summary: dict[str, Any]  # plan_summary, with "power": the plan_power table as records
    summary_file: Any = None  # PLAN.summary.json beside the plan
    warnings: tuple[str, ...] = ()  # one sentence per action the plan cannot measure
    workers: dict[str, int] | None = None  # on a Dask cluster: worker address → parts scored


def summary_path(path: Any) -> Any:
    """PLAN.summary.json beside the plan file."""
    from pathlib import Path

    from nba.campaigns.outcomes import beside

    return beside(Path(path), "summary.json")


def plan_file(
    bundle_path: Any,
    input_path: Any,
    output: Any,
    history: Any,
    options: PlanOptions,
    campaign_id: str | None = None,
    client: Any = None,
) -> PlanResult:
    """`nba campaign plan`: read and validate customers (bad rows to OUTPUT.rejects.csv with a
    reason), plan them (the engine's scoring on the Dask cluster of `client` when one is
    given: `cluster_view`), write the plan to the history (one transaction, with the customers'
    records) and then to `output` (CSV or Parquet), and its summary, with each action's power
    to show its effect against the control group (`nba.campaigns.power`), to
    OUTPUT.summary.json. Rows in = planned + rejected."""
    from pathlib import Path

    from nba.bundle import load_bundle
    from nba.campaigns.outcomes import rejects_path
    from nba.campaigns.power import (
        load_power_params,
        plan_power,
        power_records,
        power_warnings,
    )
    from nba.data.io import read_table, write_table
    from nba.data.validate import validate
    from nba.errors import DataError
    from nba.report import write_json

    options.check()
    power_params = load_power_params()  # a bad params/power.yaml fails before any work
    bundle = load_bundle(Path(bundle_path))
    checked = validate(read_table(Path(input_path)))
    if checked.clean.empty:
        raise DataError(
            f"no usable row in {input_path}: all {checked.n_in:,} rows failed validation "
            f"(first: {checked.rejects['reason'].iloc[0]})"
        )
    view, workers = None, None
    if client is not None:  # the engine's scoring on the cluster; the draws here, as always
        view, workers = cluster_view(bundle, checked.clean, client)
    bid = bundle_id(bundle, bundle_path)
    plan = make_plan(bundle, checked.clean, options, campaign_id, bid, view)
    # the plan file first, under a temporary name: a path it cannot write fails before the
    # history is touched; it takes its name only once the history holds the campaign
    out = Path(output)
    tmp = write_table(plan, out.with_name(f".tmp-{os.getpid()}-{out.name}"))
    try:
        history.record_decisions(plan.assign(channel="batch"), checked.clean)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    rejects = None
    if len(checked.rejects):
        rejects = write_table(checked.rejects, rejects_path(Path(output)))
    assert len(plan) + len(checked.rejects) == checked.n_in
    # can the campaign prove itself? per action, the lift its control group can detect
    power = plan_power(plan, params=power_params)
    summary = plan_summary(plan)
    summary["power"] = {
        "power": power_params.power,
        "alpha": power_params.alpha,
        "target_relative_lift": power_params.target_relative_lift,
        "actions": power_records(power),
    }
    campaign = str(plan["campaign_id"].iloc[0])
    summary_file = write_json(summary_path(out), {"campaign_id": campaign, **summary})
    return PlanResult(
        checked.n_in,
        len(plan),
        len(checked.rejects),
        campaign,
        out,
        rejects,
        summary,
        summary_file,
        tuple(power_warnings(power, power_params.power, power_params.alpha)),
        workers,
    )
