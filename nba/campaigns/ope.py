"""Off-policy evaluation: what a deterministic policy would have earned, from a log of decisions
made by another (randomised) policy with known propensities.

For logged rows i with reward r_i ($), logged action d_i, its probability μ_i under the logging
policy and a target policy π (action π(x_i)), with w_i = 1[d_i = π(x_i)] / μ_i:

- IPS (Horvitz-Thompson): V = mean(w_i r_i); unbiased when μ_i > 0 wherever π acts.
- SNIPS (self-normalised): V = Σ w_i r_i / Σ w_i; a little biased, far less variable.
- DR (doubly robust, Dudík et al. 2011): V = mean(r̂(x_i, π(x_i)) + w_i (r_i − r̂(x_i, d_i)));
  unbiased if either the propensities or the reward model r̂ are right.

Intervals are 95 % normal intervals: IPS and DR are means of independent terms (standard error
sd/√n); SNIPS uses the delta method, se² = Σ w_i² (r_i − V)² / (Σ w_i)². A difference of two
policies on the same log uses the per-row differences of the terms (paired), so the interval
reflects that both were measured on the same customers. Written by hand: the OPE libraries
checked (obp, causalml) pull torch or old pins; these estimators are a few lines each and are
tested against a simulated policy's true value.
"""

from __future__ import annotations

import numpy as np

Z95 = 1.959963984540054


def _mean_interval(terms: np.ndarray) -> tuple[float, float, float]:
    n = len(terms)
    v = float(terms.mean())
    se = float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    return v, v - Z95 * se, v + Z95 * se


def ips_terms(reward: np.ndarray, match: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Per-row IPS terms w_i r_i."""
    return np.where(match, reward / mu, 0.0)


def dr_terms(
    reward: np.ndarray,
    match: np.ndarray,
    mu: np.ndarray,
    r_hat_target: np.ndarray,
    r_hat_logged: np.ndarray,
) -> np.ndarray:
    """Per-row doubly robust terms r̂(x, π(x)) + w (r − r̂(x, d))."""
    return r_hat_target + np.where(match, (reward - r_hat_logged) / mu, 0.0)


def snips(reward: np.ndarray, match: np.ndarray, mu: np.ndarray) -> tuple[float, float, float]:
    """(value, low, high) of the self-normalised IPS estimate."""
    w = np.where(match, 1.0 / mu, 0.0)
    total = w.sum()
    if total <= 0:
        return float("nan"), float("nan"), float("nan")
    v = float((w * reward).sum() / total)
    se = float(np.sqrt((w**2 * (reward - v) ** 2).sum()) / total)
    return v, v - Z95 * se, v + Z95 * se


def estimate(
    reward: np.ndarray,
    mu: np.ndarray,
    logged: np.ndarray,
    target: np.ndarray,
    r_hat: np.ndarray,
) -> dict[str, float]:
    """IPS, SNIPS and DR estimates of a deterministic target policy's value per customer.

    `reward` ($), `mu` (propensity of the logged action), `logged` and `target` (action column
    indices), `r_hat` (n × A predicted reward of every action, for DR). Keys: ips, ips_low,
    ips_high, snips…, dr…, matched (rows where the target agrees with the log)."""
    rows = np.arange(len(reward))
    match = logged == target
    out: dict[str, float] = {}
    for name, values in (
        ("ips", _mean_interval(ips_terms(reward, match, mu))),
        ("snips", snips(reward, match, mu)),
        (
            "dr",
            _mean_interval(dr_terms(reward, match, mu, r_hat[rows, target], r_hat[rows, logged])),
        ),
    ):
        out[name], out[f"{name}_low"], out[f"{name}_high"] = values
    out["matched"] = int(match.sum())
    return out


def compare(
    reward: np.ndarray,
    mu: np.ndarray,
    logged: np.ndarray,
    new: np.ndarray,
    old: np.ndarray,
    r_hat: np.ndarray,
) -> dict[str, dict[str, float]]:
    """Both policies' estimates and the paired difference new − old (IPS and DR), per customer."""
    rows = np.arange(len(reward))
    m_new, m_old = logged == new, logged == old
    diff = {}
    for name, a, b in (
        ("ips", ips_terms(reward, m_new, mu), ips_terms(reward, m_old, mu)),
        (
            "dr",
            dr_terms(reward, m_new, mu, r_hat[rows, new], r_hat[rows, logged]),
            dr_terms(reward, m_old, mu, r_hat[rows, old], r_hat[rows, logged]),
        ),
    ):
        diff[name], diff[f"{name}_low"], diff[f"{name}_high"] = _mean_interval(a - b)
    return {
        "new": estimate(reward, mu, logged, new, r_hat),
        "parent": estimate(reward, mu, logged, old, r_hat),
        "difference": diff,
    }


def as_table(off: dict[str, dict[str, float]]) -> list[dict[str, float | str]]:
    """`compare`'s result as rows (policy, estimator, value, low, high) for a table."""
    rows: list[dict[str, float | str]] = []
    for policy in ("parent", "new", "difference"):
        for name in ("ips", "snips", "dr"):
            if name in off.get(policy, {}):
                part = off[policy]
                rows.append(
                    {
                        "policy": policy if policy != "difference" else "new − parent",
                        "estimator": name.upper(),
                        "value": part[name],
                        "low": part[f"{name}_low"],
                        "high": part[f"{name}_high"],
                    }
                )
    return rows
