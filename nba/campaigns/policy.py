"""The engine as a policy: what a bundle thinks of every action for every customer, as arrays.

Plan, simulator, learner and off-policy evaluation all need the same view of a batch: the
churn score, segment and risk band; each action's allowed flag, cost and expected net value ($);
the traits and the effect-model features. `engine_view` computes it once, without building the
reason texts `bundle.score` writes (a plan of a million customers does not need them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nba.actions import NO_ACTION, Catalogue, effect_features, evaluate
from nba.data import schema

#: Prior standard deviation of each effect coefficient (change in P(retained)) around the
#: catalogue's assumption: wide enough that a few thousand outcomes overrule the catalogue,
#: narrow enough that a handful do not. Terms in P(churn) scale with a probability < 1, so
#: they get a wider prior.
PRIOR_SD_CONSTANT = 0.01
PRIOR_SD_RISK = 0.10


@dataclass(frozen=True)
class EngineView:
    """One batch seen by one bundle's engine (n customers × A catalogue actions)."""

    index: pd.Index
    client: np.ndarray  # CLIENTNUM, n
    ids: tuple[str, ...]  # action ids, catalogue order
    p: np.ndarray  # churn probability, n
    segment: np.ndarray  # segment code, n
    segment_name: np.ndarray  # segment name, n
    segment_names: tuple[str, ...]  # name of each segment code
    risk_band: np.ndarray  # low / medium / high, n
    band: np.ndarray  # risk band code 0 / 1 / 2, n
    var: np.ndarray  # value at risk, $, n
    net: np.ndarray  # expected net value, $, n × A (-inf where not allowed, 0 for no_action)
    allowed: np.ndarray  # n × A
    cost: np.ndarray  # $ per action, A
    traits: dict[str, np.ndarray]
    z: np.ndarray  # effect features, n × F
    # the churn score credit actions read: the blind model's (the main one's without a blind
    # model), so that nothing about a credit action reads a protected attribute, n
    p_credit: np.ndarray
    credit: np.ndarray  # which actions are credit actions, A

    @property
    def j0(self) -> int:
        """Column of no_action."""
        return self.ids.index(NO_ACTION)

    def best(self) -> np.ndarray:
        """Each customer's best action (column index), ties in catalogue order."""
        return np.argmax(self.net, axis=1)

    def effects(self) -> np.ndarray:
        """The engine's own estimate of each action's effect on P(retained), n × A:
        (net + cost) / value at risk (0 where nothing is at risk or not allowed)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            eff = (self.net + self.cost[None, :]) / self.var[:, None]
        return np.where(np.isfinite(eff), eff, 0.0)


def concat_views(views: Sequence[EngineView]) -> EngineView:
    """The views of consecutive parts of a batch as the view of the whole batch (what the
    engine gives row by row does not depend on the other rows: the trait medians come from the
    bundle's reference)."""
    first = views[0]
    same = ("ids", "segment_names", "cost", "credit")
    if any(getattr(v, k) != getattr(first, k) for v in views[1:] for k in same[:2]):
        raise ValueError("views of different bundles cannot be put together")
    parts: dict[str, Any] = {}
    for f in fields(EngineView):
        name = f.name
        if name in same:
            parts[name] = getattr(first, name)
        elif name == "index":
            parts[name] = first.index.append([v.index for v in views[1:]])
        elif name == "traits":
            parts[name] = {k: np.concatenate([v.traits[k] for v in views]) for k in first.traits}
        else:
            parts[name] = np.concatenate([getattr(v, name) for v in views])
    return EngineView(**parts)


def engine_view(bundle: Any, customers: pd.DataFrame) -> EngineView:
    """The bundle's engine over clean customers (as `nba.data.validate` returns them)."""
    from nba.scoring import RISK_BANDS, _band_codes

    M = bundle.churn.model_matrix(customers)
    p = bundle.churn.predict_proba(M)[:, 1]
    segment = np.asarray(bundle.segmenter.predict(customers))
    names = np.asarray(bundle.segmenter.names_, dtype=object)
    band = _band_codes(p, bundle.threshold)
    catalogue: Catalogue = bundle.action_catalogue
    ref = bundle.reference.get("population_medians")
    scores = {"churn_probability": p}
    if getattr(bundle, "credit_churn", None) is not None:  # credit actions: the blind score
        credit = bundle.credit_churn
        scores["credit_churn_probability"] = credit.predict_proba(credit.model_matrix(customers))[
            :, 1
        ]
    ev = evaluate(scores, customers, catalogue, bundle.run_settings, None, ref)
    traits = {k: np.asarray(v) for k, v in ev.trait_arrays.items()}
    return EngineView(
        index=customers.index,
        client=np.asarray(customers[schema.ID].to_numpy(), dtype=np.int64),
        ids=tuple(catalogue.ids),
        p=p,
        segment=segment,
        segment_name=names[segment],
        segment_names=tuple(str(x) for x in names),
        risk_band=np.asarray(RISK_BANDS, dtype=object)[band],
        band=band,
        var=ev.var,
        net=ev.net,
        allowed=ev.exclusions.allowed,
        cost=np.asarray([a.cost for a in catalogue.actions], dtype=np.float64),
        traits=traits,
        z=effect_features(p, traits),
        p_credit=scores.get("credit_churn_probability", p),
        credit=np.asarray(catalogue.credit, dtype=bool),
    )


def bundle_id(bundle: Any, path: str | Path | None = None) -> str:
    """A short stable id for a bundle: `metadata["bundle_id"]` when it has one (learnt bundles
    do), else the first 12 hex digits of the file's sha256, else of its metadata."""
    given = bundle.metadata.get("bundle_id")
    if given:
        return str(given)
    if path is not None and Path(path).is_file():
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    text = json.dumps(bundle.metadata, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def prior_sd() -> np.ndarray:
    """Prior standard deviation of each effect coefficient (see the constants above)."""
    from nba.actions import EFFECT_FEATURES

    return np.asarray(
        [
            PRIOR_SD_RISK if f == "p" or f.startswith("p*") else PRIOR_SD_CONSTANT
            for f in EFFECT_FEATURES
        ]
    )


def posterior(bundle: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per learned action: (mean coefficients, covariance) of its effect model, as `learn`
    stored them in the bundle's catalogue data; empty for a bundle that learnt nothing."""
    raw = (bundle.catalogue or {}).get("learned_effects") or {}
    out = {}
    for action_id, effect in (raw.get("actions") or {}).items():
        out[action_id] = (
            np.asarray(effect["coef"], dtype=np.float64),
            np.asarray(effect["cov"], dtype=np.float64),
        )
    return out
