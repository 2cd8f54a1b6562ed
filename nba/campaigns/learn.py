"""Learning what each action really does, from every recorded outcome.

The model (Bayesian linear regression of retention, fitted in closed form):

    retained_i = g(x_i)·α + Σ_a 1[a delivered to i] z(x_i)·β_a + noise

- z(x) = `nba.actions.effect_features`: intercept, P(churn), each trait, P(churn) × each trait;
  τ_a(x) = z(x)·β_a is action a's effect on P(retained) for a customer like x — positive for an
  action that saves customers, negative for one that makes them leave;
- g(x) = z(x) plus P(churn)²: the retention of a customer left alone (control and no_action
  rows anchor it; the random control group makes the comparison causal);
- prior β_a ~ N(β⁰_a, diag(sd²)), β⁰_a = the catalogue's assumed effect (P(churn) × assumed save
  rate) projected on z: with few outcomes the posterior stays at the catalogue's assumptions,
  with many the outcomes decide (`nba.campaigns.policy.PRIOR_SD_*`); α gets a flat prior.

The posterior mean and covariance come from the normal equations, built block by block
(each row touches the baseline block and one action's block), so a million outcomes cost a few
matrix products. Written by hand: the uplift libraries checked (scikit-uplift: unmaintained since
2022, no uncertainty or prior; econml and causalml: numba, shap, statsmodels or xgboost, and no
way to shrink to the catalogue) do not fit beside the project's pins as well as forty lines of
linear algebra, which the tests check against the simulator's true effects.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from nba.actions import (
    EFFECT_FEATURES,
    NO_ACTION,
    customer_traits,
    effect_features,
    evaluate,
    save_rates,
    value_at_risk,
)
from nba.campaigns import ope
from nba.campaigns.history import CUSTOMER_COLUMNS, History
from nba.campaigns.policy import bundle_id, prior_sd
from nba.data import schema

log = logging.getLogger(__name__)

#: Prior standard deviation of the baseline coefficients: flat for any retention level.
BASELINE_PRIOR_SD = 10.0
#: The engine acts on (learned effect − CAUTION × its posterior sd): an action whose effect the
#: outcomes have not pinned down must look good even on the cautious side before it is chosen
#: over doing nothing. Picking the best of many noisy estimates otherwise favours the ones
#: whose noise is upward (the optimiser's curse); exploration keeps learning about the rest.
CAUTION = 1.0


class EffectModel:
    """Per-action conditional effects on retention with a Gaussian posterior (see module doc).

    `fit(Z, d, y, prior_mean, Zc, credit)`: Z n × F effect features, d n action column index
    (-1 = nothing delivered), y 0/1 retained, prior_mean A × F; `credit` (A booleans) marks the
    actions whose effect is a function of `Zc`, the blind churn score's features (what the
    engine values credit actions on), the others of Z. Fitted: `coef_` (A × F posterior means),
    `cov_` (A × F × F posterior covariances), `baseline_` (G coefficients), `sigma2_`,
    `n_` (rows per action)."""

    def __init__(self, prior_sd: np.ndarray, baseline_sd: float = BASELINE_PRIOR_SD) -> None:
        self.prior_sd = prior_sd
        self.baseline_sd = baseline_sd

    @staticmethod
    def baseline_features(Z: np.ndarray) -> np.ndarray:
        """g(x): the effect features and P(churn)² (column 1 of Z is P(churn))."""
        return np.column_stack([Z, Z[:, 1] ** 2])

    def fit(
        self,
        Z: np.ndarray,
        d: np.ndarray,
        y: np.ndarray,
        prior_mean: np.ndarray,
        Zc: np.ndarray | None = None,
        credit: np.ndarray | None = None,
    ) -> EffectModel:
        A, F = prior_mean.shape
        self.credit_ = np.zeros(A, dtype=bool) if credit is None else np.asarray(credit, bool)
        design = [self.design(a, Z, Zc) for a in range(A)]
        G = self.baseline_features(Z)
        Fg = G.shape[1]
        size = Fg + A * F
        y = y.astype(np.float64)
        XtX = np.zeros((size, size))
        Xty = np.zeros(size)
        XtX[:Fg, :Fg] = G.T @ G
        Xty[:Fg] = G.T @ y
        self.n_ = np.bincount(d[d >= 0], minlength=A)
        groups = [np.flatnonzero(d == a) for a in range(A)]
        for a, rows in enumerate(groups):
            if not rows.size:
                continue
            s = slice(Fg + a * F, Fg + (a + 1) * F)
            Za = design[a][rows]
            XtX[s, s] = Za.T @ Za
            XtX[:Fg, s] = G[rows].T @ Za
            XtX[s, :Fg] = XtX[:Fg, s].T
            Xty[s] = Za.T @ y[rows]
        prec = np.concatenate(
            [np.full(Fg, self.baseline_sd**-2), np.tile(np.asarray(self.prior_sd) ** -2, A)]
        )
        mean0 = np.concatenate([np.zeros(Fg), prior_mean.ravel()])
        sigma2 = float(y.var()) or 0.25
        for _ in range(2):  # noise variance from the residuals, then the final solve
            P = XtX / sigma2 + np.diag(prec)
            theta = np.linalg.solve(P, Xty / sigma2 + prec * mean0)
            fitted = G @ theta[:Fg]
            for a, rows in enumerate(groups):
                if rows.size:
                    fitted[rows] += design[a][rows] @ theta[Fg + a * F : Fg + (a + 1) * F]
            sigma2 = max(float(np.mean((y - fitted) ** 2)), 1e-4)
        cov = np.linalg.inv(P)
        self.sigma2_ = sigma2
        self.baseline_ = theta[:Fg]
        self.coef_ = theta[Fg:].reshape(A, F)
        self.cov_ = np.stack(
            [cov[Fg + a * F : Fg + (a + 1) * F, Fg + a * F : Fg + (a + 1) * F] for a in range(A)]
        )
        return self

    def design(self, a: int, Z: np.ndarray, Zc: np.ndarray | None) -> np.ndarray:
        """Action a's effect features: the blind score's for a credit action (given Zc)."""
        return Zc if Zc is not None and self.credit_[a] else Z

    def effect(self, Z: np.ndarray, Zc: np.ndarray | None = None) -> np.ndarray:
        """Posterior mean effect of every action, n × A (credit actions on Zc when given)."""
        out = Z @ self.coef_.T
        if Zc is not None and self.credit_.any():
            out[:, self.credit_] = Zc @ self.coef_[self.credit_].T
        return out

    def effect_sd(self, Z: np.ndarray, Zc: np.ndarray | None = None) -> np.ndarray:
        """Posterior standard deviation of each action's effect, n × A."""
        var = np.empty((len(Z), len(self.cov_)))
        for a, cov in enumerate(self.cov_):
            X = self.design(a, Z, Zc)
            var[:, a] = np.einsum("ij,ij->i", X @ cov, X)
        return np.sqrt(np.maximum(var, 0.0))

    def retention(self, Z: np.ndarray) -> np.ndarray:
        """Predicted P(retained) when nothing is delivered, n."""
        return self.baseline_features(Z) @ self.baseline_


#: The decision columns learning reads from the history.
LEARN_COLUMNS = (
    schema.ID,
    "campaign_id",
    "group",
    "action",
    "propensity",
    "churn_probability",
    "value_at_risk",
    "delivered_propensity",
)


@dataclass
class Logged:
    """The recorded interactions, as the arrays learning needs."""

    frame: pd.DataFrame
    Z: np.ndarray
    p: np.ndarray
    Zc: np.ndarray  # effect features on the blind score (credit actions), n × F
    pc: np.ndarray  # the blind churn score (the logged one without a blind model), n
    credit: np.ndarray  # which catalogue actions are credit actions, A
    var: np.ndarray
    delivered: np.ndarray  # catalogue column of what was delivered (no_action for control)
    mu: np.ndarray  # probability of what was delivered under the logging policy
    y: np.ndarray
    assumed: np.ndarray  # the catalogue's assumed effect, n × A


def logged_data(bundle: Any, frame: pd.DataFrame) -> Logged:
    """Arrays from `History.interactions(with_customers=True)` rows, seen through `bundle`'s
    catalogue (traits from its reference medians). Rows without a customer record are left
    out (the caller counts them)."""
    catalogue = bundle.action_catalogue
    ref = bundle.reference.get("population_medians")
    customers = frame.loc[:, [schema.ID, *CUSTOMER_COLUMNS]]
    traits = customer_traits(customers, catalogue, ref)
    tr = {k: traits[k].to_numpy() for k in traits.columns}
    p = frame["churn_probability"].to_numpy(dtype=np.float64)
    credit = np.asarray(catalogue.credit, dtype=bool)
    blind = getattr(bundle, "credit_churn", None)
    # credit actions are valued on the blind score: their effects are learnt as functions of
    # it, computed by the bundle's blind model from the logged customer records
    pc = (
        blind.predict_proba(blind.model_matrix(customers))[:, 1]
        if blind is not None and credit.any()
        else p
    )
    var = frame["value_at_risk"].to_numpy(dtype=np.float64)
    missing = np.isnan(var)
    if missing.any():
        var = np.where(missing, value_at_risk(customers, bundle.run_settings), var)
    ids = pd.Index(catalogue.ids)
    given = frame["group"].eq("treatment").to_numpy()
    j = ids.get_indexer(frame["action"].astype("str"))
    j0 = catalogue.ids.index(NO_ACTION)
    delivered = np.where(given & (j >= 0), j, j0)
    mu = frame["delivered_propensity"].to_numpy(dtype=np.float64)
    mu = np.where(np.isnan(mu), frame["propensity"].to_numpy(dtype=np.float64), mu)
    assumed = np.where(credit[None, :], pc[:, None], p[:, None]) * save_rates(
        replace(catalogue, learned=None), tr
    )
    assumed[:, j0] = 0.0
    Z = effect_features(p, tr)
    return Logged(
        frame=frame,
        Z=Z,
        p=p,
        Zc=Z if pc is p else effect_features(pc, tr),
        pc=pc,
        credit=credit,
        var=var,
        delivered=delivered,
        mu=mu,
        y=frame["retained"].to_numpy(dtype=np.float64),
        assumed=assumed,
    )


def prior_means(
    Z: np.ndarray,
    assumed: np.ndarray,
    Zc: np.ndarray | None = None,
    credit: np.ndarray | None = None,
) -> np.ndarray:
    """A × F: each action's assumed effect projected on its effect features (least squares;
    a credit action's on `Zc`, the blind score's, when given)."""

    def project(X: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.linalg.solve(X.T @ X + 1e-6 * np.eye(X.shape[1]), X.T @ target).T

    out = project(Z, assumed)
    if Zc is not None and credit is not None and credit.any():
        out[credit] = project(Zc, assumed[:, credit])
    return out


def effects_table(
    model: EffectModel, data: Logged, ids: list[str], allowed: np.ndarray
) -> pd.DataFrame:
    """Per action: outcomes used, assumed vs learned average effect on P(retained) (95 %
    interval) over the logged customers the rules allow it for, and the share of those whom
    it demonstrably hurts (learned effect's upper 95 % bound below 0)."""
    rows = []
    eff = model.effect(data.Z, data.Zc)
    sd = model.effect_sd(data.Z, data.Zc)
    for a, action in enumerate(ids):
        if action == NO_ACTION:
            continue
        who = allowed[:, a]
        if not who.any():
            continue
        m = model.design(a, data.Z, data.Zc)[who].mean(axis=0)
        mean = float(m @ model.coef_[a])
        se = float(np.sqrt(max(m @ model.cov_[a] @ m, 0.0)))
        rows.append(
            {
                "action": action,
                "outcomes": int(model.n_[a]),
                "customers": int(who.sum()),
                "assumed_effect": float(data.assumed[who, a].mean()),
                "learned_effect": mean,
                "learned_low": mean - ope.Z95 * se,
                "learned_high": mean + ope.Z95 * se,
                "hurts_share": float(((eff[who, a] + ope.Z95 * sd[who, a]) < 0).mean()),
                "helps_share": float(((eff[who, a] - ope.Z95 * sd[who, a]) > 0).mean()),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class LearnResult:
    bundle: Any
    model: EffectModel
    effects: pd.DataFrame
    off_policy: dict[str, Any]
    lineage: dict[str, Any]


def learn(
    parent: Any, frame: pd.DataFrame, parent_id: str | None = None, caution: float = CAUTION
) -> LearnResult:
    """A new bundle whose engine uses the effects learnt from `frame` (recorded interactions
    with customers, `History.interactions(with_customers=True)`), with lineage and the
    off-policy estimate of its value against `parent` in `metadata["campaigns"]`."""
    # thin matrices (n × 22): one BLAS thread is faster than two fighting over a busy machine
    with threadpool_limits(limits=1, user_api="blas"):
        return _learn(parent, frame, parent_id, caution)


def _learn(parent: Any, frame: pd.DataFrame, parent_id: str | None, caution: float) -> LearnResult:
    pid = parent_id or bundle_id(parent)
    usable = frame[CUSTOMER_COLUMNS[0]].notna().to_numpy()
    # a person's override is not the logging policy's choice: its propensity is unknown, and
    # the person may have known what the record does not (`History.interactions_with_overrides`)
    overridden = (
        frame["overridden"].fillna(0).astype(bool).to_numpy()
        if "overridden" in frame.columns
        else np.zeros(len(frame), dtype=bool)
    )
    usable = usable & ~overridden
    if not usable.any():
        raise ValueError("no recorded outcome with its customer's record: nothing to learn from")
    frame = frame.loc[usable].reset_index(drop=True)
    catalogue = parent.action_catalogue
    ids = list(catalogue.ids)
    data = logged_data(parent, frame)
    prior = prior_means(data.Z, data.assumed, data.Zc, data.credit)
    j0 = ids.index(NO_ACTION)
    d = np.where(data.delivered == j0, -1, data.delivered)
    model = EffectModel(prior_sd()).fit(data.Z, d, data.y, prior, data.Zc, data.credit)

    learned_ids = [a for i, a in enumerate(ids) if a != NO_ACTION and model.n_[i] > 0]
    raw = copy.deepcopy(parent.catalogue)
    raw["learned_effects"] = {
        "features": list(EFFECT_FEATURES),
        "caution": float(caution),
        "actions": {
            a: {  # arrays, not lists: skops stores them as arrays, not one node per number
                "coef": model.coef_[ids.index(a)].copy(),
                "cov": model.cov_[ids.index(a)].copy(),
                "outcomes": int(model.n_[ids.index(a)]),
            }
            for a in learned_ids
        },
    }
    campaigns = frame.groupby("campaign_id", sort=False).size()
    lineage = {
        "parent_bundle": pid,
        "campaigns": {str(k): int(v) for k, v in campaigns.items()},
        "outcomes": int(len(frame)),
        "outcomes_without_customer": int((~usable & ~overridden).sum()),
        "overridden_left_out": int(overridden.sum()),
        "learned_actions": learned_ids,
        "learned": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    digest = hashlib.sha256(f"{pid}|{sorted(lineage['campaigns'].items())}".encode())
    new_id = "learnt-" + digest.hexdigest()[:10]
    lineage["bundle_id"] = new_id

    # both engines over the logged customers: each one's action for each customer
    settings = parent.run_settings
    ref = parent.reference.get("population_medians")
    customers = frame.loc[:, [schema.ID, *CUSTOMER_COLUMNS]]
    scores = {"churn_probability": data.p}
    if data.pc is not data.p:  # credit actions valued on the blind score, as the engine does
        scores["credit_churn_probability"] = data.pc
    from nba.actions import parse_catalogue

    new_catalogue = parse_catalogue(raw)
    ev_old = evaluate(scores, customers, catalogue, settings, None, ref)  # the parent's engine
    ev_new = evaluate(scores, customers, new_catalogue, settings, None, ref)
    old_policy = np.argmax(ev_old.net, axis=1)
    new_policy = np.argmax(ev_new.net, axis=1)
    cost = np.asarray([a.cost for a in catalogue.actions])
    reward = data.y * data.var - cost[data.delivered]
    effect = model.effect(data.Z, data.Zc)
    effect[:, j0] = 0.0
    r_hat = (model.retention(data.Z)[:, None] + effect) * data.var[:, None] - cost[None, :]
    off = ope.compare(reward, data.mu, data.delivered, new_policy, old_policy, r_hat)
    off["units"] = "$ per customer: retained × value at risk − cost, over the logged customers"
    off["customers"] = int(len(frame))
    off["changed_decisions"] = int((new_policy != old_policy).sum())
    table = effects_table(model, data, ids, ev_old.exclusions.allowed)

    metadata = copy.deepcopy(parent.metadata)
    metadata["bundle_id"] = new_id
    metadata["campaigns"] = {
        **lineage,
        "effects": table.to_dict(orient="records"),
        "off_policy": off,
        "sigma2": model.sigma2_,
    }
    child = replace(parent, catalogue=raw, metadata=metadata)
    log.info("learnt from %d outcomes; new bundle %s", len(frame), new_id)
    return LearnResult(child, model, table, off, lineage)


def learn_from_history(
    parent: Any,
    history: History,
    campaign_ids: list[str] | None = None,
    parent_id: str | None = None,
) -> LearnResult:
    """`learn` over every recorded outcome in `history` (or those of `campaign_ids`)."""
    frame = history.interactions_with_overrides(
        campaign_ids, with_customers=True, columns=LEARN_COLUMNS
    )
    return learn(parent, frame, parent_id)


def learn_file(bundle_path: Any, history: History, out: Any) -> LearnResult:
    """`nba campaign learn`: the parent bundle at `bundle_path`, every recorded outcome in
    `history`, the new bundle written to `out`."""
    from pathlib import Path

    from nba.bundle import load_bundle, save_bundle
    from nba.errors import DataError

    parent = load_bundle(Path(bundle_path))
    frame = history.interactions_with_overrides(with_customers=True, columns=LEARN_COLUMNS)
    if frame.empty or frame[CUSTOMER_COLUMNS[0]].isna().all():
        raise DataError(
            f"no recorded outcome with a customer record in {history.path}: plan a campaign "
            "and record its outcomes first"
        )
    result = learn(parent, frame, bundle_id(parent, bundle_path))
    save_bundle(result.bundle, Path(out))
    return result
