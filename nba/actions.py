"""The next-best-action engine: catalogue, rules, arbitration, reasons, budget mode, simulation.

Everything here is a pure, vectorised function over DataFrames (loops run over the ~10 actions,
never over customers). The business assumptions (costs, save rates, rule thresholds) live in the
catalogue YAML (`nba/catalogue.yaml` by default), with their rationale beside them.

Arbitration, per customer and eligible action (all amounts in $):

    expected net value = P(churn) × P(save | action, trait) × value at risk × lever − cost
    value at risk      = max(customer_value, 0) × settings.value_horizon_years

`customer_value` is the yearly value proxy of `nba.value`; a customer worth less than nothing
has nothing at risk. "No action" is worth 0 at cost 0, so an action is recommended only when its
expected net value beats doing nothing. P(churn) is the model's `churn_probability`, except for
CREDIT actions (`credit: true` in the catalogue): their eligibility, suitability and value use
`credit_churn_probability`, from a churn model fitted without the protected attributes
(params/protected.yaml), and their rules may not name a protected attribute (the catalogue is
refused), so no credit decision depends on sex, age, marital status or dependants.

Segments are matched by PROFILE TRAITS derived from each customer's own columns (revolver or
transactor, light / everyday / high spend against the base median, declining, inactive, few
products, high utilisation, many contacts), never by the generated segment names, which change
with the data. The segment name only appears in the reason text.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from nba.config import Settings
from nba.data import schema
from nba.value import yearly_value

log = logging.getLogger(__name__)

NO_ACTION = "no_action"
TRAITS = (
    "revolver",
    "transactor",
    "light",
    "everyday",
    "high_spend",
    "declining",
    "inactive",
    "few_products",
    "high_utilisation",
    "many_contacts",
)
TRAIT_THRESHOLDS = (
    "light_spend_ratio",
    "high_spend_ratio",
    "declining_ct_change",
    "inactive_months",
    "few_products_max",
    "high_utilisation",
    "many_contacts",
)
OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not_in")
FORMATS = ("int", "pct", "money")
#: Columns a rule may test: the customer record, the churn score and the traits.
RULE_COLUMNS = frozenset(schema.REQUIRED) | {"churn_probability"} | set(TRAITS)
#: Columns whose population medians the traits and reasons need.
MEDIAN_COLUMNS = (
    "Total_Trans_Amt",
    "Total_Trans_Ct",
    "Avg_Utilization_Ratio",
    "Total_Relationship_Count",
    "Contacts_Count_12_mon",
    "Months_Inactive_12_mon",
    "Credit_Limit",
)
AGE_BINS = (0, 35, 45, 55, 65, 200)
AGE_LABELS = ("<35", "35-44", "45-54", "55-64", "65+")


#: pandas' "str" dtype, resolved once (parsing the name costs more than a one-row column).
_STR = pd.api.types.pandas_dtype("str")


def text_array(values: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    """An arrow text array as a pandas "str" array: no copy when it is already large_string
    (what the "str" dtype stores), which matters for a million long reasons."""
    return pd.arrays.ArrowStringArray(values, dtype=_STR)


class CatalogueError(ValueError):
    """A catalogue file that cannot be used; the message names the action and the field."""


# ---------------------------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """`column op value`, evaluated over all customers at once."""

    column: str
    op: str
    value: Any


@dataclass(frozen=True)
class Rule:
    """Eligibility: passes when ANY of `conditions` holds (one condition = a plain test).
    Suitability: excludes when ALL of `conditions` hold. `reason` is kept for exclusions."""

    conditions: tuple[Condition, ...]
    reason: str


@dataclass(frozen=True)
class Action:
    id: str
    name: str
    description: str
    channel: str
    cost: float  # $ per contact
    marketing: bool
    save_rate: Mapping[str, float]  # trait → P(save | action, trait); "default" for the rest
    rationale: str
    evidence: Mapping[str, str] | None  # column, label, format: what the reason quotes
    eligible_if: tuple[Rule, ...]
    unsuitable_if: tuple[Rule, ...]
    credit: bool = False  # a credit decision: blind churn score, no protected attribute in rules

    @property
    def suits(self) -> tuple[str, ...]:
        """Traits with their own (higher or lower) save rate."""
        return tuple(k for k in self.save_rate if k != "default")


#: Features of the learned effect model (`nba.campaigns.learn`): an intercept, P(churn), each
#: trait, and P(churn) × each trait. One definition shared by the learner and the engine.
EFFECT_FEATURES = ("intercept", "p", *TRAITS, *(f"p*{t}" for t in TRAITS))


def effect_features(p: np.ndarray, traits: Mapping[str, Any]) -> np.ndarray:
    """n × len(EFFECT_FEATURES) design matrix of the learned effect model (float64)."""
    p = np.asarray(p, dtype=np.float64)
    k = len(TRAITS)
    out = np.empty((len(p), 2 + 2 * k), order="F")  # filled column by column
    out[:, 0], out[:, 1] = 1.0, p
    for i, trait in enumerate(TRAITS):
        out[:, 2 + i] = traits[trait]
        np.multiply(out[:, 2 + i], p, out=out[:, 2 + k + i])
    return out


@dataclass(frozen=True)
class LearnedEffects:
    """What campaign outcomes taught (`nba campaign learn`): per action, the change in
    P(retained) it causes for a customer, `effect_features(p, traits) @ coef[action]`, which
    replaces the catalogue's assumed P(churn) × save rate. Stored in the catalogue data under
    `learned_effects` (plain lists, so a bundle carries it without a new type)."""

    coef: Mapping[str, np.ndarray]  # action id → coefficients over EFFECT_FEATURES
    cov: Mapping[str, np.ndarray] | None = None  # action id → their posterior covariance
    caution: float = 0.0  # act on mean − caution × sd of the effect (0: on the mean)

    def effect(self, action_id: str, z: np.ndarray) -> np.ndarray:
        """The effect on P(retained) the engine acts on for features `z` (n × F)."""
        mean = z @ self.coef[action_id]
        if not self.caution or self.cov is None:
            return mean
        sd = np.sqrt(np.maximum(np.einsum("ij,ij->i", z @ self.cov[action_id], z), 0.0))
        return mean - self.caution * sd

    @classmethod
    def from_raw(cls, raw: Any, ids: Sequence[str]) -> LearnedEffects:
        if not isinstance(raw, Mapping) or list(raw.get("features", [])) != list(EFFECT_FEATURES):
            raise _fail("file", "learned_effects.features", "must list EFFECT_FEATURES in order")
        actions = raw.get("actions")
        if not isinstance(actions, Mapping):
            raise _fail("file", "learned_effects.actions", "must map action ids to effects")
        coef, cov = {}, {}
        for action_id, effect in actions.items():
            if action_id not in ids or action_id == NO_ACTION:
                raise _fail("file", f"learned_effects.{action_id}", "is not a catalogue action")
            c = np.asarray(effect.get("coef", []) if isinstance(effect, Mapping) else [], float)
            if c.shape != (len(EFFECT_FEATURES),) or not np.isfinite(c).all():
                raise _fail("file", f"learned_effects.{action_id}.coef", "has the wrong shape")
            coef[str(action_id)] = c
            v = np.asarray(effect.get("cov", np.zeros((c.size, c.size))), dtype=np.float64)
            if v.shape != (c.size, c.size) or not np.isfinite(v).all():
                raise _fail("file", f"learned_effects.{action_id}.cov", "has the wrong shape")
            cov[str(action_id)] = v
        caution = raw.get("caution", 0.0)
        if isinstance(caution, bool) or not isinstance(caution, int | float) or caution < 0:
            raise _fail("file", "learned_effects.caution", "must be a number >= 0")
        return cls(coef, cov, float(caution))


@dataclass(frozen=True)
class Catalogue:
    actions: tuple[Action, ...]
    traits: Mapping[str, float]
    contact_column: str
    suppress_marketing_at: float
    contact_reason: str
    learned: LearnedEffects | None = None  # effects learnt from campaigns, replacing save rates

    @property
    def ids(self) -> list[str]:
        return [a.id for a in self.actions]

    def action(self, action_id: str) -> Action:
        return self.actions[self.ids.index(action_id)]

    @property
    def credit(self) -> np.ndarray:
        """Boolean per action: a credit action (`credit: true`)."""
        return np.asarray([a.credit for a in self.actions], dtype=bool)

    @property
    def credit_ids(self) -> list[str]:
        return [a.id for a in self.actions if a.credit]

    def table(self) -> pd.DataFrame:
        """One row per action: id, name, channel, cost, marketing, save rates and rationale."""
        return pd.DataFrame(
            [
                {
                    "id": a.id,
                    "name": a.name,
                    "channel": a.channel,
                    "cost": a.cost,
                    "marketing": a.marketing,
                    "save_rate_default": a.save_rate["default"],
                    "save_rate_by_trait": ", ".join(f"{t} {a.save_rate[t]:.0%}" for t in a.suits),
                    "rules": len(a.eligible_if) + len(a.unsuitable_if),
                    "rationale": a.rationale,
                }
                for a in self.actions
            ]
        )


def _fail(where: str, field: str, problem: str) -> CatalogueError:
    return CatalogueError(f"catalogue {where}: field '{field}' {problem}")


def _condition(raw: Any, where: str, field: str) -> Condition:
    if not isinstance(raw, Mapping):
        raise _fail(where, field, "must be a mapping with column, op and value")
    for key in ("column", "op", "value"):
        if key not in raw:
            raise _fail(where, f"{field}.{key}", "is missing")
    column, op, value = raw["column"], raw["op"], raw["value"]
    if column not in RULE_COLUMNS:
        raise _fail(where, f"{field}.column", f"names an unknown column {column!r}")
    if op not in OPS:
        raise _fail(where, f"{field}.op", f"is {op!r}; use one of {' '.join(OPS)}")
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise _fail(where, f"{field}.value", f"must be a list for op {op!r}")
        value = tuple(value)
    elif op in ("<", "<=", ">", ">=") and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        raise _fail(where, f"{field}.value", f"must be a number for op {op!r}")
    return Condition(str(column), str(op), value)


def _rules(raw: Any, where: str, field: str, kind: str) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(where, field, "must be a list of rules")
    rules = []
    for i, item in enumerate(raw):
        f = f"{field}[{i}]"
        if not isinstance(item, Mapping) or not str(item.get("reason", "")).strip():
            raise _fail(where, f"{f}.reason", "is missing (every rule keeps its reason)")
        # eligibility: a plain condition or any_of; suitability: all of `when`
        parts = item.get("any_of", [item]) if kind == "eligible" else item.get("when")
        if not isinstance(parts, list) or not parts:
            key = "any_of" if kind == "eligible" else "when"
            raise _fail(where, f"{f}.{key}", "must be a non-empty list of conditions")
        conds = tuple(_condition(c, where, f"{f}.condition[{j}]") for j, c in enumerate(parts))
        rules.append(Rule(conds, str(item["reason"]).strip()))
    return tuple(rules)


def _action(raw: Any, i: int) -> Action:
    where = f"action #{i + 1}"
    if not isinstance(raw, Mapping):
        raise _fail(where, "actions", "entries must be mappings")
    if not isinstance(raw.get("id"), str) or not raw["id"].strip():
        raise _fail(where, "id", "is missing or not text")
    where = f"action '{raw['id']}'"
    for key in ("name", "description", "channel", "rationale"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise _fail(where, key, "is missing or empty")
    cost = raw.get("cost")
    if isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0:
        raise _fail(where, "cost", f"must be a number >= 0 (currency per contact), got {cost!r}")
    if raw["id"] != NO_ACTION and cost == 0:
        raise _fail(where, "cost", "must be > 0 for a real action (budget mode divides by it)")
    if not isinstance(raw.get("marketing"), bool):
        raise _fail(where, "marketing", "must be true or false")
    if not isinstance(raw.get("credit", False), bool):
        raise _fail(where, "credit", "must be true or false (a credit decision or not)")
    rates = raw.get("save_rate")
    if not isinstance(rates, Mapping) or "default" not in rates:
        raise _fail(where, "save_rate", "must be a mapping with a 'default' rate")
    for trait, rate in rates.items():
        if trait != "default" and trait not in TRAITS:
            raise _fail(where, f"save_rate.{trait}", f"is not a trait; use {', '.join(TRAITS)}")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise _fail(where, f"save_rate.{trait}", f"must be a probability 0-1, got {rate!r}")
    evidence = raw.get("evidence")
    if evidence is not None:
        if not isinstance(evidence, Mapping) or evidence.get("column") not in MEDIAN_COLUMNS:
            raise _fail(where, "evidence.column", f"must be one of {', '.join(MEDIAN_COLUMNS)}")
        if evidence.get("format", "int") not in FORMATS:
            raise _fail(where, "evidence.format", f"must be one of {', '.join(FORMATS)}")
        evidence = {
            "column": str(evidence["column"]),
            "label": str(evidence.get("label", evidence["column"])),
            "format": str(evidence.get("format", "int")),
        }
    return Action(
        id=raw["id"].strip(),
        name=raw["name"].strip(),
        description=" ".join(raw["description"].split()),
        channel=raw["channel"].strip(),
        cost=float(cost),
        marketing=raw["marketing"],
        save_rate={k: float(v) for k, v in rates.items()},
        rationale=" ".join(raw["rationale"].split()),
        evidence=evidence,
        eligible_if=_rules(raw.get("eligible_if"), where, "eligible_if", "eligible"),
        unsuitable_if=_rules(raw.get("unsuitable_if"), where, "unsuitable_if", "unsuitable"),
        credit=bool(raw.get("credit", False)),
    )


def _check_credit(action: Action, catalogue_contact: str, protected: Sequence[str]) -> None:
    """Refuse a credit action whose rule (eligibility, suitability, the contact policy it is
    subject to) or quoted evidence names a protected attribute: one sentence naming both."""
    kinds = (
        ("eligibility", "eligible_if", action.eligible_if),
        ("suitability", "unsuitable_if", action.unsuitable_if),
    )
    for kind, field, rules in kinds:
        for i, rule in enumerate(rules):
            named = sorted({c.column for c in rule.conditions} & set(protected))
            if named:
                raise CatalogueError(
                    f"catalogue action '{action.id}' is a credit action, so its {kind} rule "
                    f'{field}[{i}] ("{rule.reason}") may not use the protected attribute '
                    f"{', '.join(named)}: credit decisions must not depend on it "
                    "(params/protected.yaml)."
                )
    if action.marketing and catalogue_contact in protected:
        raise CatalogueError(
            f"catalogue action '{action.id}' is a credit action, so its contact rule "
            f"(contact_policy.column) may not use the protected attribute {catalogue_contact}: "
            "credit decisions must not depend on it (params/protected.yaml)."
        )
    if action.evidence is not None and action.evidence["column"] in protected:
        raise CatalogueError(
            f"catalogue action '{action.id}' is a credit action, so its reason may not quote "
            f"the protected attribute {action.evidence['column']} (evidence.column)."
        )


def parse_catalogue(raw: Any, protected: Sequence[str] | None = None) -> Catalogue:
    """A validated `Catalogue` from the parsed YAML mapping; `CatalogueError` names the action
    and the field on the first problem. `protected`: the attributes no credit action's rule may
    name (None → `nba.config.protected_attributes()`, params/protected.yaml)."""
    if not isinstance(raw, Mapping):
        raise _fail("file", "(top level)", "must be a mapping with traits, contact_policy, actions")
    traits = raw.get("traits")
    if not isinstance(traits, Mapping):
        raise _fail("file", "traits", "must be a mapping of trait thresholds")
    for key in TRAIT_THRESHOLDS:
        v = traits.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _fail("file", f"traits.{key}", f"must be a number, got {v!r}")
    policy = raw.get("contact_policy")
    if not isinstance(policy, Mapping):
        raise _fail("file", "contact_policy", "must be a mapping")
    if policy.get("column") not in schema.REQUIRED:
        raise _fail("file", "contact_policy.column", "must name a customer column")
    at = policy.get("suppress_marketing_at")
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise _fail("file", "contact_policy.suppress_marketing_at", "must be a number")
    if not isinstance(policy.get("reason"), str) or not policy["reason"].strip():
        raise _fail("file", "contact_policy.reason", "is missing")
    actions_raw = raw.get("actions")
    if not isinstance(actions_raw, list) or not actions_raw:
        raise _fail("file", "actions", "must be a non-empty list")
    actions = tuple(_action(a, i) for i, a in enumerate(actions_raw))
    if protected is None:
        from nba.config import protected_attributes

        protected = tuple(protected_attributes())
    for a in actions:
        if a.credit:
            _check_credit(a, str(policy["column"]), protected)
    ids = [a.id for a in actions]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise _fail(f"action '{dupes[0]}'", "id", "is used by more than one action")
    if NO_ACTION not in ids:
        raise _fail(f"action '{NO_ACTION}'", "id", "is missing: the catalogue needs 'no_action'")
    learned = raw.get("learned_effects")
    return Catalogue(
        actions=actions,
        traits={k: float(traits[k]) for k in TRAIT_THRESHOLDS},
        contact_column=str(policy["column"]),
        suppress_marketing_at=float(at),
        contact_reason=policy["reason"].strip(),
        learned=None if learned is None else LearnedEffects.from_raw(learned, ids),
    )


def load_catalogue(
    path: str | Path | None = None, protected: Sequence[str] | None = None
) -> Catalogue:
    """Read and validate an action catalogue (YAML); None → the shipped `nba/catalogue.yaml`.
    A bad file raises `CatalogueError` with one sentence naming the action and the field."""
    if path is None:
        text = resources.files("nba").joinpath("catalogue.yaml").read_text(encoding="utf-8")
        where = "nba/catalogue.yaml"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogueError(f"catalogue {path}: cannot be read ({exc.strerror})") from None
        where = str(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f" near line {line + 1}" if line is not None else ""
        raise CatalogueError(f"catalogue {where}: not valid YAML{at}") from None
    catalogue = parse_catalogue(raw, protected)
    log.debug("catalogue %s: %d actions", where, len(catalogue.actions))
    return catalogue


# ---------------------------------------------------------------------------------------------
# Traits and rules
# ---------------------------------------------------------------------------------------------


def population_medians(customers: pd.DataFrame) -> dict[str, float]:
    """Medians of the columns traits and reasons compare against (same units as the columns).
    Pass the result as `reference` to score a few customers against the whole base."""
    return {c: float(customers[c].median()) for c in MEDIAN_COLUMNS}


def customer_traits(
    customers: pd.DataFrame, catalogue: Catalogue, reference: Mapping[str, float]
) -> pd.DataFrame:
    """Boolean profile traits per customer from its own columns (see `TRAITS`): what segments
    are made of, so actions match customers whatever the segments are called."""
    return pd.DataFrame(
        _traits(_arrays(customers), catalogue, reference), index=customers.index, copy=False
    )


def _arrays(customers: pd.DataFrame | Mapping[str, Any]) -> Mapping[str, Any]:
    """The customer columns as arrays, each read once (a mapping is taken as it is)."""
    if isinstance(customers, pd.DataFrame):
        names = customers.columns.tolist()
        return schema.column_arrays(customers, [c for c in names if isinstance(c, str)])
    return customers


def _traits(
    cols: Mapping[str, Any], catalogue: Catalogue, reference: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """`customer_traits` as a dict of boolean arrays, from the customer column arrays."""
    t = catalogue.traits

    def num(c: str) -> np.ndarray:
        return np.asarray(cols[c], dtype=np.float64)

    spend = num("Total_Trans_Amt")
    median_spend = reference["Total_Trans_Amt"]
    revolver = num("Total_Revolving_Bal") > 0
    light = spend < t["light_spend_ratio"] * median_spend
    high = spend >= t["high_spend_ratio"] * median_spend
    return {
        "revolver": revolver,
        "transactor": ~revolver,
        "light": light,
        "everyday": ~light & ~high,
        "high_spend": high,
        "declining": np.asarray(cols["Total_Ct_Chng_Q4_Q1"]) < t["declining_ct_change"],
        "inactive": np.asarray(cols["Months_Inactive_12_mon"]) >= t["inactive_months"],
        "few_products": np.asarray(cols["Total_Relationship_Count"]) <= t["few_products_max"],
        "high_utilisation": np.asarray(cols["Avg_Utilization_Ratio"]) >= t["high_utilisation"],
        "many_contacts": np.asarray(cols["Contacts_Count_12_mon"]) >= t["many_contacts"],
    }


class _Columns:
    """Column arrays for rule tests, each read once. Text columns are factorised, so a test
    runs on the few distinct values and is broadcast back through the codes."""

    def __init__(
        self,
        customers: Mapping[str, Any],
        traits: Mapping[str, Any],
        p: np.ndarray,
        p_credit: np.ndarray | None = None,
    ) -> None:
        self.customers, self.traits, self.p = customers, traits, p
        self.p_credit = p if p_credit is None else p_credit
        self.cache: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    def test(self, c: Condition, credit: bool = False) -> np.ndarray:
        if c.column == "churn_probability" and credit:  # the blind score, for credit actions
            return _test(c, self.p_credit)
        if c.column not in self.cache:
            if c.column == "churn_probability":
                self.cache[c.column] = (self.p, None)
            elif c.column in self.traits:
                self.cache[c.column] = (np.asarray(self.traits[c.column]), None)
            else:
                values = self.customers[c.column]
                if isinstance(values, np.ndarray) and values.dtype.kind in "biufc":
                    self.cache[c.column] = (np.asarray(values), None)
                else:
                    codes, uniques = schema.factorize(values)
                    self.cache[c.column] = (uniques, codes)
        values, codes = self.cache[c.column]
        if codes is None:
            return _test(c, values)
        if c.op in ("in", "not_in"):  # a few distinct values: plain membership beats np.isin
            listed = list(c.value)
            found = np.array([v in listed for v in values], dtype=bool)
            return (found if c.op == "in" else ~found)[codes]
        return _test(c, values)[codes]


def _test(c: Condition, values: np.ndarray) -> np.ndarray:
    """The condition over a column of values, as a boolean array."""
    if c.op == "in":
        return np.isin(values, list(c.value))
    if c.op == "not_in":
        return ~np.isin(values, list(c.value))
    if c.op == "==":
        return values == c.value
    if c.op == "!=":
        return values != c.value
    return {
        "<": np.less,
        "<=": np.less_equal,
        ">": np.greater,
        ">=": np.greater_equal,
    }[c.op](values.astype(np.float64), float(c.value))


@dataclass(frozen=True)
class Exclusions:
    """Per customer (rows) and action (columns): `code` 0 = allowed, else 1 + index into
    `reasons`, the first rule that excluded it (eligibility, then suitability, then contact)."""

    code: np.ndarray  # int16, n × actions
    reasons: tuple[str, ...]
    kinds: tuple[str, ...]  # "eligibility" / "suitability" / "contact policy" per reason

    @property
    def allowed(self) -> np.ndarray:
        return self.code == 0

    def reason_text(self) -> np.ndarray:
        """n × actions object array: "" where allowed, else "<kind>: <reason>"."""
        texts = np.asarray(
            [""] + [f"{k}: {r}" for k, r in zip(self.kinds, self.reasons, strict=True)],
            dtype=object,
        )
        return texts[self.code]


def apply_rules(
    customers: pd.DataFrame | Mapping[str, Any],
    churn_probability: np.ndarray,
    catalogue: Catalogue,
    traits: pd.DataFrame | Mapping[str, Any],
    credit_probability: np.ndarray | None = None,
) -> Exclusions:
    """Evaluate every action's eligibility, suitability and the contact policy for every
    customer at once, keeping the first reason that excludes each (customer, action).
    `customers` and `traits`: frames, or dicts of their column arrays. A credit action's rules
    on churn_probability read `credit_probability` (the blind score; default the same)."""
    n = len(churn_probability)
    customers = _arrays(customers)
    code = np.zeros((n, len(catalogue.actions)), dtype=np.int16)
    reasons: list[str] = []
    kinds: list[str] = []

    def mark(j: int, excluded: np.ndarray, reason: str, kind: str) -> None:
        reasons.append(reason)
        kinds.append(kind)
        if excluded.any():
            col = code[:, j]
            col[(col == 0) & excluded] = len(reasons)

    columns = _Columns(customers, traits, churn_probability, credit_probability)
    contacts = np.asarray(customers[catalogue.contact_column], dtype=np.float64)
    suppressed = contacts >= catalogue.suppress_marketing_at
    for j, a in enumerate(catalogue.actions):
        for rule in a.eligible_if:
            ok = np.zeros(n, dtype=bool)
            for c in rule.conditions:
                ok |= columns.test(c, a.credit)
            mark(j, ~ok, rule.reason, "eligibility")
        for rule in a.unsuitable_if:
            bad = np.ones(n, dtype=bool)
            for c in rule.conditions:
                bad &= columns.test(c, a.credit)
            mark(j, bad, rule.reason, "suitability")
        if a.marketing:
            mark(j, suppressed, catalogue.contact_reason, "contact policy")
    return Exclusions(code, tuple(reasons), tuple(kinds))


# ---------------------------------------------------------------------------------------------
# Arbitration
# ---------------------------------------------------------------------------------------------


def value_at_risk(customers: pd.DataFrame | Mapping[str, Any], settings: Settings) -> np.ndarray:
    """$ a churner takes away: max(customer_value, 0) × value_horizon_years (not discounted).
    `customers`: a frame or a dict of its column arrays."""
    yearly = yearly_value(_arrays(customers), settings)
    return np.maximum(yearly, 0.0) * float(settings.value_horizon_years)


def save_rates(
    catalogue: Catalogue,
    traits: pd.DataFrame | Mapping[str, Any],
    p: np.ndarray | None = None,
) -> np.ndarray:
    """n × actions P(save | action, trait): the highest rate among the customer's traits that
    the action lists, else its default. `traits`: a frame or a dict of boolean arrays.

    With learned effects in the catalogue and `p` (P(churn)) given, a learned action's rate is
    its learned retention effect / P(churn), so that P(churn) × rate is the learned effect
    (negative for an action that makes customers leave)."""
    return _with_learned(catalogue, _assumed_save_rates(catalogue, traits), traits, p)


def _with_learned(
    catalogue: Catalogue,
    out: np.ndarray,
    traits: pd.DataFrame | Mapping[str, Any],
    p: np.ndarray | None,
) -> np.ndarray:
    """The assumed rates `out` (changed in place) with the learned actions' rates for `p`."""
    if catalogue.learned is not None and p is not None:
        z = effect_features(p, traits)
        floor = np.maximum(np.asarray(p, dtype=np.float64), 1e-6)
        for action_id in catalogue.learned.coef:
            out[:, catalogue.ids.index(action_id)] = catalogue.learned.effect(action_id, z) / floor
    return out


def _assumed_save_rates(
    catalogue: Catalogue, traits: pd.DataFrame | Mapping[str, Any]
) -> np.ndarray:
    """The catalogue's assumed rates (see `save_rates`)."""
    n = len(traits[TRAITS[0]])
    out = np.empty((n, len(catalogue.actions)), dtype=np.float64)
    for j, a in enumerate(catalogue.actions):
        suited = np.zeros(n, dtype=bool)
        best = np.zeros(n, dtype=np.float64)
        for trait in a.suits:
            has = np.asarray(traits[trait])
            best = np.where(has, np.maximum(best, a.save_rate[trait]), best)
            suited |= has
        out[:, j] = np.where(suited, best, a.save_rate["default"])
    return out


def _levers(catalogue: Catalogue, levers: Mapping[str, float] | None) -> np.ndarray:
    ids = catalogue.ids
    unknown = sorted(set(levers or {}) - set(ids))
    if unknown:
        raise ValueError(f"levers name unknown action(s): {', '.join(unknown)}")
    return np.asarray([float((levers or {}).get(i, 1.0)) for i in ids], dtype=np.float64)


@dataclass(frozen=True)
class Evaluation:
    """Everything arbitration computed, as n × actions arrays ($ for values)."""

    index: pd.Index
    ids: tuple[str, ...]
    p: np.ndarray  # P(churn), n
    var: np.ndarray  # value at risk, $ over the horizon, n
    save: np.ndarray  # P(save | action, trait)
    net: np.ndarray  # expected net value, $ (-inf where excluded)
    gross: np.ndarray  # net + cost: expected $ saved
    exclusions: Exclusions
    trait_arrays: Mapping[str, np.ndarray]  # trait → boolean array, n
    p_credit: np.ndarray | None = None  # the blind P(churn) credit actions use, n (None: p)

    def p_for(self, credit: bool) -> np.ndarray:
        """P(churn) an action uses: the blind score for a credit action, else the main one."""
        return self.p if not credit or self.p_credit is None else self.p_credit

    @property
    def traits(self) -> pd.DataFrame:
        """The customers' traits (see `customer_traits`), index of the customers."""
        return pd.DataFrame(dict(self.trait_arrays), index=self.index)


def _score_column(scores: pd.DataFrame | Mapping[str, Any], name: str) -> Any:
    """One column of `scores` (a frame, or a dict of column arrays) as an array."""
    if isinstance(scores, pd.DataFrame):
        return schema.column_arrays(scores, [name])[name]
    return scores[name]


def _check_aligned(scores: pd.DataFrame | Mapping[str, Any], customers: pd.DataFrame) -> None:
    if isinstance(scores, pd.DataFrame):
        aligned = len(scores) == len(customers) and scores.index.equals(customers.index)
    else:  # column arrays in the customers' row order
        aligned = all(len(v) == len(customers) for v in scores.values())
    if not aligned:
        raise ValueError("scores and customers must have the same index (one row per customer)")
    if "churn_probability" not in scores:
        raise ValueError("scores need the column churn_probability")
    present = set(customers.columns.tolist())
    missing = [c for c in schema.REQUIRED if c not in present]
    if missing:
        raise ValueError(f"customers need the column(s) {', '.join(missing)}")


def evaluate(
    scores: pd.DataFrame | Mapping[str, Any],
    customers: pd.DataFrame,
    catalogue: Catalogue,
    settings: Settings,
    levers: Mapping[str, float] | None = None,
    reference: Mapping[str, float] | None = None,
    *,
    columns: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Rules and expected net value of every action for every customer (vectorised):
    P(churn) × P(save | action, trait) × value at risk × lever − cost; excluded → -inf;
    no_action → 0. `reference`: population medians (default: those of `customers`).
    `columns`: the customers' column arrays, when the caller has read them already."""
    _check_aligned(scores, customers)
    ref = dict(reference) if reference is not None else population_medians(customers)
    cols = _arrays(customers) if columns is None else columns
    traits = _traits(cols, catalogue, ref)
    p = np.asarray(_score_column(scores, "churn_probability"), dtype=np.float64)
    p_credit = _credit_probability(scores, catalogue, p)
    var = value_at_risk(cols, settings)
    # the assumed rates do not depend on P(churn): computed once for both scores
    assumed = _assumed_save_rates(catalogue, traits)
    credit = catalogue.credit
    blind = credit.any() and p_credit is not p
    again = blind and catalogue.learned is not None  # the learned rates change `assumed`
    save = _with_learned(catalogue, assumed.copy() if again else assumed, traits, p)
    lever = _levers(catalogue, levers)
    cost = np.asarray([a.cost for a in catalogue.actions], dtype=np.float64)
    gross = (p * var)[:, None] * save
    gross *= lever[None, :]  # in place: one n × actions array fewer, the same products
    if blind:
        # credit actions: P(churn) from the blind model, in the rate (learned effects) too
        save_c = _with_learned(catalogue, assumed, traits, p_credit)[:, credit]
        save[:, credit] = save_c
        gross[:, credit] = (p_credit * var)[:, None] * save_c * lever[None, credit]
    net = gross - cost[None, :]
    excl = apply_rules(cols, p, catalogue, traits, p_credit)
    np.putmask(net, excl.code != 0, -np.inf)  # excluded
    j0 = catalogue.ids.index(NO_ACTION)
    net[:, j0] = 0.0
    gross[:, j0] = 0.0
    return Evaluation(
        customers.index, tuple(catalogue.ids), p, var, save, net, gross, excl, traits, p_credit
    )


#: The score column credit actions read: P(churn) from the model fitted without the protected
#: attributes (`nba.scoring` adds it when the bundle has such a model).
CREDIT_SCORE = "credit_churn_probability"


def _credit_probability(
    scores: pd.DataFrame | Mapping[str, Any], catalogue: Catalogue, p: np.ndarray
) -> np.ndarray:
    """The blind P(churn) for credit actions: `CREDIT_SCORE` when the scores carry it, else
    `p` itself (scores from a model that is blind already, or a catalogue with no credit
    action)."""
    if CREDIT_SCORE in scores and catalogue.credit.any():
        return np.asarray(_score_column(scores, CREDIT_SCORE), dtype=np.float64)
    return p


def _text(values: np.ndarray, kind: str) -> list[Any]:
    """Numbers as arrow text pieces, vectorised: int → "28", pct → "72", "%", money → "$",
    "610" (a list of pieces for `_join`)."""
    scale = 100.0 if kind == "pct" else 1.0
    digits = pc.cast(pa.array(np.rint(values * scale).astype(np.int64)), pa.large_string())
    if kind == "pct":
        return [digits, "%"]  # as the app writes percentages: "72%", no space
    if kind == "money":
        return ["$", digits]
    return [digits]


def _median_text(value: float, kind: str) -> str:
    """One number formatted as `_text` does, for the median quoted in every reason."""
    if kind == "pct":
        return f"{round(value * 100)}%"
    return f"${round(value)}" if kind == "money" else f"{round(value)}"


def _join(*parts: Any) -> pa.Array:
    """Element-wise concatenation of arrow large_string arrays and plain strings (broadcast);
    large_string throughout, the storage of pandas' "str" dtype, so nothing is cast later."""
    pieces = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*pieces, pa.scalar("", pa.large_string()))


#: Each trait as a reason names it, when it set an action's save rate.
TRAIT_WORDS = {
    "revolver": "revolves a balance",
    "transactor": "pays in full",
    "light": "light spender",
    "everyday": "everyday spender",
    "high_spend": "high spender",
    "declining": "declining use",
    "inactive": "inactive months",
    "few_products": "few products",
    "high_utilisation": "high utilisation",
    "many_contacts": "many contacts",
}


def percent_text(p: np.ndarray) -> pa.Array:
    """Probabilities as the app shows them: one decimal ("72.4%"), "< 0.1%" and "> 99.9%" at
    the ends, so that a reason never says 100 % beside a card's 99.7%.

    The text is `"%.1f%%" % (clip(p) × 100)`; it is taken from a table of the 999 possible
    texts by the rounded tenth of a percent, since formatting every row was a large share of a
    batch's reasons. A value whose tenths lie within 1e-6 of a rounding tie (where the float
    product could round the other way than the formatting of the exact value) and a missing
    value are formatted one by one, so every text equals the formatted one."""
    p = np.asarray(p, dtype=np.float64).ravel()
    v = np.clip(p, 0.001, 0.999) * 100
    tenths = v * 10
    nearest = np.rint(tenths)
    exact = np.abs(np.abs(tenths - nearest) - 0.5) > 1e-6  # NaN: False, formatted below
    code = np.where(exact, nearest, 0).astype(np.int64)  # 1 … 999 where exact
    code[p < 0.001] = 1000
    code[p > 0.999] = 1001
    odd = np.flatnonzero(~exact & ~(p < 0.001) & ~(p > 0.999))
    code[odd] = 1002 + np.arange(odd.size)
    table = _percents()
    if odd.size:
        more = pa.array([f"{x:.1f}%" for x in v[odd].tolist()], pa.large_string())
        table = pa.concat_arrays([table, more])
    return table.take(pa.array(code))


@functools.cache
def _percents() -> pa.Array:
    """`percent_text`'s table, built once: index i (1 … 999) is i/10 percent with one decimal,
    then the ends."""
    texts = ["", *(f"{i // 10}.{i % 10}%" for i in range(1, 1000)), "< 0.1%", "> 99.9%"]
    return pa.array(texts, pa.large_string())


#: How an offer's reason opens, by whether the action is a credit action (index 1): credit
#: actions are decided on the churn score fitted without the protected attributes, which can
#: differ from the risk the card shows, so their reason says which score it quotes.
RISK_LABELS = ("Churn risk ", "Churn risk (credit score, no protected attributes) ")


def _from_table(texts: Sequence[str], codes: np.ndarray) -> pa.Array:
    """`texts[codes]` as a large_string array, built by arrow from the few texts."""
    return pa.array(texts, pa.large_string()).take(pa.array(codes, pa.int64()))


def _money_text(values: np.ndarray, cents: bool = False) -> pa.Array:
    """Dollars as "$1,340" (whole dollars, "-$" for losses; "$0.62" with `cents`). Python's own
    thousands separator; amounts are formatted once per distinct amount (a batch repeats few
    amounts once rounded) and spread back with one take, since formatting every row was most
    of a batch's scoring time (an arrow-kernel version measured slower still)."""
    if cents:
        return _cents_text(np.nan_to_num(np.asarray(values, dtype=np.float64)).ravel())
    v = np.rint(np.asarray(values, dtype=np.float64))
    v = np.where(np.isfinite(v), v, 0.0).astype(np.int64)  # NaN and ±inf read $0
    amounts, where = np.unique(v, return_inverse=True)
    text = [f"-${-x:,}" if x < 0 else f"${x:,}" for x in amounts.tolist()]
    return _from_table(text, where.ravel())


def _cents_text(c: np.ndarray) -> pa.Array:
    """Amounts with cents, each as `f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"`: formatted once
    per distinct (sign, whole cents). Amounts whose cents lie within 1e-6 of a rounding tie
    (where the float product could round the other way than the formatting of the exact
    value), from $10 M, or a negative zero are formatted one by one, so every text equals the
    formatted one."""
    magnitude = np.abs(c) * 100
    nearest = np.rint(magnitude)
    exact = (
        (np.abs(np.abs(magnitude - nearest) - 0.5) > 1e-6)
        & (magnitude < 1e9)
        & ~((c == 0) & np.signbit(c))
    )
    key = np.where(exact, nearest, 0).astype(np.int64) * 2 + (c < 0)
    odd = np.flatnonzero(~exact)
    key[odd] = -1 - np.arange(odd.size)  # below every amount: one table entry each
    keys, where = np.unique(key, return_inverse=True)
    text = [f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}" for x in c[odd[::-1]].tolist()]
    text += [
        f"{'-' if k & 1 else ''}${k // 200:,}.{k // 2 % 100:02d}" for k in keys[odd.size :].tolist()
    ]
    return _from_table(text, where.ravel())


def _trait_codes(
    a: Action, ev: Evaluation, rows: np.ndarray, j: int, table: dict[str, int]
) -> np.ndarray:
    """Which trait set action `a`'s save rate for each of `rows`, as codes into `table` (text →
    code, grown here): " for customers who revolve a balance", " (the catalogue's default
    rate)", or " (learned from recorded outcomes)"."""

    def code_of(text: str) -> int:
        return table.setdefault(text, len(table))

    code = np.full(rows.size, code_of(" (the catalogue's default rate)"), dtype=np.int64)
    default = code.copy()
    if ev.save.shape[1] and a.suits:
        rate = ev.save[rows, j]
        for trait in reversed(a.suits):  # the first listed trait wins a tie
            has = np.asarray(ev.trait_arrays[trait])[rows]
            hit = has & _isclose(rate, a.save_rate[trait])
            words = TRAIT_WORDS.get(trait, trait)
            code[hit] = code_of(f" (the rate for customers with {words})")
    if a.save_rate.get("default") is not None:
        learned = ~_isclose(ev.save[rows, j], a.save_rate["default"]) & (code == default)
        code[learned] = code_of(" (learned from recorded outcomes)")
    return code


def _action_reasons(
    js: np.ndarray,
    rows: np.ndarray,
    ev: Evaluation,
    catalogue: Catalogue,
    customers: Mapping[str, Any],
    reference: Mapping[str, float],
    policy: np.ndarray | None,
    var_text: pa.Array,
) -> pa.Array:
    """The reasons of `rows`, whose chosen actions `js` are offers (not "no action"): churn
    risk as the card shows it (a credit action quotes the blind score it was decided on,
    nothing protected), the evidence the action targets against the typical (median)
    customer, the save rate and which trait set it, the value at risk and the expected net
    value. Every offer's sentence has the same pieces, so each piece is built once for all
    rows (what differs by action, a text taken from a small table by a code per row): a
    fixed number of arrow calls per slot, not one set per action chosen (most of a
    1,000-customer request's scoring was those calls' overhead)."""
    m = rows.size
    acts = list(catalogue.actions)
    credit = np.array([a.credit for a in acts], dtype=bool)[js]
    p = ev.p_for(False)[rows]
    if credit.any():
        p = np.where(credit, ev.p_for(True)[rows], p)
    # a credit action names the score it was decided on: the card shows the main churn risk
    parts: list[Any] = [_from_table(RISK_LABELS, credit.astype(np.int64)), percent_text(p)]
    # the evidence: "; {label} " [+ "$"], the value's digits, ["%" +] " (typical {median})"
    evidence = [j for j in np.unique(js).tolist() if acts[j].evidence is not None]
    if evidence:
        values = np.zeros(m)
        scale = np.ones(m)
        code = np.zeros(m, dtype=np.int64)  # 0: no evidence
        before, after = [""], [""]
        for j in evidence:
            e = acts[j].evidence
            col, fmt = e["column"], e["format"]
            here = js == j
            values[here] = np.asarray(customers[col], dtype=np.float64)[rows[here]]
            if fmt == "pct":
                scale[here] = 100.0
            median = _median_text(reference[col], fmt)
            before.append(f"; {e['label']} " + ("$" if fmt == "money" else ""))
            after.append(("%" if fmt == "pct" else "") + f" (typical {median})")
            code[here] = len(before) - 1
        digits = pc.cast(pa.array(np.rint(values * scale).astype(np.int64)), pa.large_string())
        text = _join(_from_table(before, code), digits, _from_table(after, code))
        if (code == 0).any():
            text = pc.if_else(pa.array(code > 0), text, pa.scalar("", pa.large_string()))
        parts.append(text)
    table: dict[str, int] = {}
    traits = np.zeros(m, dtype=np.int64)
    for j in np.unique(js).tolist():
        here = js == j
        traits[here] = _trait_codes(acts[j], ev, rows[here], j, table)
    parts += [
        ". Assumed to keep ",
        *_text(ev.save[rows, js], "pct"),
        " of would-be leavers",
        _from_table(list(table), traits),
        " of ",
        var_text.take(pa.array(rows)),
        " at risk: expected net ",
        _money_text(ev.net[rows, js]),
        ".",
    ]
    if policy is not None and policy[rows].any():
        note = " Given by the high-risk minimum-service policy (setting high_risk_minimum_action)."
        parts.append(_from_table(["", note], policy[rows].astype(np.int64)))
    return _join(*parts)


def _isclose(x: np.ndarray, y: float) -> np.ndarray:
    """`np.isclose(x, y)` for an array and one number, without its per-call overhead (it was
    a tenth of scoring a 1,000-customer request): |x − y| ≤ 1e-8 + 1e-5·|y|, or x == y."""
    y = float(y)
    with np.errstate(invalid="ignore"):
        close = np.abs(x - y) <= 1e-8 + 1e-5 * abs(y)
    return (close & np.isfinite(y)) | (x == y)


def _no_action_text(
    ev: Evaluation,
    catalogue: Catalogue,
    rows: np.ndarray,
    taken: np.ndarray | None,
    var_text: pa.Array,
) -> tuple[list[pa.Array], list[np.ndarray]]:
    """Why nothing (more) is recommended, in business words: the customer brings no value to
    keep, every offer is ruled out, or the best remaining offer's expected saving is below its
    cost (which offer, what it would save, what it costs). Returned as sentences per cause and
    the rows (of `rows`' numbering) each is for: `_reasons` puts every piece of a slot in
    row order with one take (each take of a million long texts writes fresh memory).
    `var_text`: every customer's value at risk as `_money_text` writes it."""
    j0 = catalogue.ids.index(NO_ACTION)
    net = ev.net[rows]  # a copy (rows is an index array)
    net[:, j0] = -np.inf
    done = None if taken is None else taken[rows]
    if done is not None:
        net[done] = -np.inf
    best = np.argmax(net, axis=1)
    best_net = net[np.arange(rows.size), best]
    first = done is None or not done.any()
    lead = "No action: " if first else "Nothing further: "
    other = "" if first else "other "
    none_left = ~np.isfinite(best_net)
    no_value = ~none_left & (ev.var[rows] <= 0)
    # each cause's sentence is built for its own rows only (the causes are disjoint)
    pieces: list[pa.Array] = []
    positions: list[np.ndarray] = []
    covered = np.zeros(rows.size, dtype=bool)

    def fill(mask: np.ndarray, text: str | pa.Array) -> None:
        count = int(mask.sum())
        if count:
            if isinstance(text, str):
                text = pa.repeat(pa.scalar(text, pa.large_string()), count)
            pieces.append(text)
            positions.append(rows[mask])
            covered[mask] = True

    fill(none_left, lead + "every offer is ruled out for this customer by the catalogue's rules.")
    fill(
        no_value,
        lead + "under the value assumptions this card earns less than it costs to "
        "serve, so there is no value at risk to protect.",
    )
    some = ~none_left & ~no_value
    if some.any():
        # one sentence for every such customer at once: what differs by the best offer (its
        # name, its cost) from a small table by a code per row
        js = best[some]
        saving = ev.gross[rows[some], js]
        code = np.empty(js.size, dtype=np.int64)
        before, after = [], []
        small = np.zeros(js.size, dtype=bool)
        for k, j in enumerate(np.unique(js).tolist()):
            a = catalogue.actions[j]
            here = js == j
            code[here] = k
            # cents below $10, or "$1 … less than its $1 cost" reads as a contradiction
            small[here] = a.cost < 10
            cost = f"${a.cost:,.2f}" if a.cost < 10 else f"${a.cost:,.0f}"
            before.append(f"{lead}the best {other}offer, {a.name}, would keep an expected ")
            after.append(f" at risk, less than its {cost} cost.")
        if small.all() or not small.any():
            money = _money_text(saving, cents=bool(small.all()))
        else:
            money = pc.if_else(
                pa.array(small), _money_text(saving, cents=True), _money_text(saving)
            )
        fill(
            some,
            _join(
                _from_table(before, code),
                money,
                " of the ",
                var_text.take(pa.array(rows[some])),
                _from_table(after, code),
            ),
        )
    fill(~covered, "")
    return pieces, positions


def _reasons(
    chosen: np.ndarray,
    ev: Evaluation,
    catalogue: Catalogue,
    customers: Mapping[str, Any],
    segment: tuple[pa.Array, np.ndarray],
    reference: Mapping[str, float],
    taken: np.ndarray | None = None,
    policy: np.ndarray | None = None,
    var_text: pa.Array | None = None,
) -> pa.Array:
    """One short sentence per customer for its chosen action index (-1 = empty slot), built
    with arrow string kernels, piece by piece for all offer rows at once (`_action_reasons`)
    and for all "no action" rows at once (`_no_action_text`): churn risk as the card shows it,
    the evidence the action targets against the typical (median) customer, the save rate and
    which trait set it, the value at risk and the expected net value. The action's and the
    segment's names are shown beside the reason, so the reason does not repeat them. "No
    action" says why in business words (see `_no_action_text`); `taken` (n × actions) marks
    the actions of earlier slots, `policy` (n, bool) the rows whose action the high-risk
    minimum-service setting chose. `segment` is kept for callers; the reason no longer quotes it. `var_text`:
    each customer's value at risk as `_money_text` writes it (default: formatted here), since
    every reason quotes it."""
    n = len(chosen)
    if var_text is None:
        var_text = _money_text(ev.var)
    del segment  # shown beside the reason on every page; repeating it made reasons long
    pieces: list[pa.Array] = []
    positions: list[np.ndarray] = []
    j0 = catalogue.ids.index(NO_ACTION)
    if (chosen == j0).any():
        rows = np.flatnonzero(chosen == j0)
        texts, where = _no_action_text(ev, catalogue, rows, taken, var_text)
        pieces += texts
        positions += where
    rows = np.flatnonzero((chosen >= 0) & (chosen != j0))
    if rows.size:
        pieces.append(
            _action_reasons(
                chosen[rows], rows, ev, catalogue, customers, reference, policy, var_text
            )
        )
        positions.append(rows)
    if len(positions) == 1 and len(positions[0]) == n:
        return pieces[0]  # one action for everyone (always so for one customer): in order
    if not positions:
        return pa.repeat(pa.scalar("", pa.large_string()), n)  # an empty slot for everyone
    empty = np.flatnonzero(chosen < 0)
    pieces.append(pa.repeat(pa.scalar("", pa.large_string()), empty.size))
    positions.append(empty)
    where = np.concatenate(positions)
    inverse = np.empty(n, dtype=np.int64)
    inverse[where] = np.arange(n)
    return pa.concat_arrays(pieces).take(pa.array(inverse))


#: Customers whose reasons are built together: a million reasons are ~140 MB of text, and
#: every buffer that large is fresh memory the kernel must zero (page faults were a third of
#: a million-customer batch's scoring CPU); blocks reuse the memory of the block before.
#: Smaller blocks fault less but pay ~2 ms of per-call work each (measured 16k-1M rows: this
#: size cut the faults by about a third at no extra user time). One arrow array per block.
REASON_BLOCK = 262_144


def _reasons_in_blocks(
    chosen: np.ndarray,
    ev: Evaluation,
    catalogue: Catalogue,
    customers: Mapping[str, Any],
    segment: tuple[pa.Array, np.ndarray],
    reference: Mapping[str, float],
    taken: np.ndarray | None = None,
    policy: np.ndarray | None = None,
    var_text: pa.Array | None = None,
) -> pa.Array | pa.ChunkedArray:
    """`_reasons` for each block of `REASON_BLOCK` customers, as one chunk each."""
    n = len(chosen)
    if var_text is None:
        var_text = _money_text(ev.var)
    if n <= REASON_BLOCK:
        return _reasons(
            chosen, ev, catalogue, customers, segment, reference, taken, policy, var_text
        )
    chunks = []
    for lo in range(0, n, REASON_BLOCK):
        part = slice(lo, min(n, lo + REASON_BLOCK))
        chunks.append(
            _reasons(
                chosen[part],
                _rows_of(ev, part),
                catalogue,
                {c: v[part] for c, v in customers.items()},
                segment,
                reference,
                None if taken is None else taken[part],
                None if policy is None else policy[part],
                var_text[part],
            )
        )
    return pa.chunked_array(chunks, pa.large_string())


def _rows_of(ev: Evaluation, part: slice) -> Evaluation:
    """The evaluation of a block of customers (views, no copies)."""
    ex = ev.exclusions
    return Evaluation(
        ev.index[part],
        ev.ids,
        ev.p[part],
        ev.var[part],
        ev.save[part],
        ev.net[part],
        ev.gross[part],
        Exclusions(ex.code[part], ex.reasons, ex.kinds),
        {t: np.asarray(v)[part] for t, v in ev.trait_arrays.items()},
        None if ev.p_credit is None else ev.p_credit[part],
    )


def recommend_actions(
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    catalogue: Catalogue,
    settings: Settings,
    levers: Mapping[str, float] | None = None,
    top: int = 3,
    reference: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The `top` best actions per customer by expected net value ($), with a reason each:
    columns action_k, action_k_value, action_k_reason (k = 1…top) and value_at_risk.

    Only allowed actions are ranked; "no_action" (0) is always allowed, so the list stops at it:
    slots after it are empty ("" and NaN) because anything below it loses money. Index follows
    `customers`. `levers` multiply an action's expected saving (action id → factor, default 1);
    `reference` are population medians (default: those of `customers`)."""
    columns = recommendation_columns(scores, customers, catalogue, settings, levers, top, reference)
    return pd.DataFrame(columns, index=customers.index, copy=False)


def _top_order(net: np.ndarray, top: int) -> np.ndarray:
    """`np.argsort(-net, axis=1, kind="stable")[:, :top]`: the `top` best actions per row,
    ties in catalogue order, found by `top` argmax passes instead of sorting whole rows.

    argmax takes the first of equal values, which is the stable order, and an action already
    taken is set to -inf so it never wins against a finite value. Rows where a pick is not
    finite (-inf: excluded actions, whose order among themselves the passes cannot tell
    from taken ones; NaN) are sorted in full instead."""
    work = net.copy()
    rows = np.arange(len(net))
    order = np.empty((len(net), top), dtype=np.int64)
    finite = np.ones(len(net), dtype=bool)
    for k in range(top):
        order[:, k] = best = np.argmax(work, axis=1)
        finite &= np.isfinite(work[rows, best])
        work[rows, best] = -np.inf
    redo = np.flatnonzero(~finite)
    if redo.size:
        order[redo] = np.argsort(-net[redo], axis=1, kind="stable")[:, :top]
    return order


def _minimum_service(
    order: np.ndarray,
    ev: Evaluation,
    scores: pd.DataFrame | Mapping[str, Any],
    catalogue: Catalogue,
    settings: Settings,
) -> np.ndarray | None:
    """Rows (bool, n) the high-risk minimum-service policy applies to: the setting
    `high_risk_minimum_action` names an action, the customer is in the high risk band
    (`risk_band` of the scores), the engine's best is no action, and the rules allow the
    policy's action. None when the setting is empty or the scores carry no risk band."""
    wanted = getattr(settings, "high_risk_minimum_action", "")
    if not wanted or "risk_band" not in scores:
        return None
    if wanted not in catalogue.ids or wanted == NO_ACTION:
        raise ValueError(
            f"high_risk_minimum_action '{wanted}' is not an action of the catalogue "
            f"(choose from {', '.join(i for i in catalogue.ids if i != NO_ACTION)})"
        )
    band = np.asarray(_score_column(scores, "risk_band"), dtype=object)
    jm = catalogue.ids.index(wanted)
    j0 = catalogue.ids.index(NO_ACTION)
    return (band == "high") & (order[:, 0] == j0) & ev.exclusions.allowed[:, jm]


def recommendation_columns(
    scores: pd.DataFrame | Mapping[str, Any],
    customers: pd.DataFrame,
    catalogue: Catalogue,
    settings: Settings,
    levers: Mapping[str, float] | None = None,
    top: int = 3,
    reference: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """`recommend_actions` as a dict of column arrays, in its column order: for a caller that
    adds them to a frame of its own (scoring builds one frame, not two). `scores` may also be
    a dict of column arrays in the customers' row order."""
    ref = dict(reference) if reference is not None else population_medians(customers)
    cols = _arrays(customers)
    ev = evaluate(scores, customers, catalogue, settings, levers, ref, columns=cols)
    n, k_actions = ev.net.shape
    top = min(top, k_actions)
    order = _top_order(ev.net, top)
    j0 = catalogue.ids.index(NO_ACTION)
    policy = _minimum_service(order, ev, scores, catalogue, settings)
    if policy is not None and top > 1:  # the policy's action first, then the engine's list
        order[policy, 1:] = order[policy, :-1]
        order[policy, 0] = catalogue.ids.index(settings.high_risk_minimum_action)
    elif policy is not None:
        order[policy, 0] = catalogue.ids.index(settings.high_risk_minimum_action)
    after_none = np.cumsum(order == j0, axis=1) - (order == j0) > 0
    chosen = np.where(after_none, -1, order)
    taken = np.zeros(ev.net.shape, dtype=bool)
    rows = np.arange(n)
    ids = pa.array([*catalogue.ids, ""], type=pa.large_string())
    if "segment_name" in scores:
        # factorised: each reason takes its segment name from a handful of values, not from a
        # column as long as the batch
        names = _score_column(scores, "segment_name")
        if names.dtype != "str":
            names = pd.Series(names, copy=False).astype("str").array
        seg_codes, seg_uniques = schema.factorize(names)
        seg_names = pa.array(seg_uniques, pa.large_string(), from_pandas=True)
        segment = (seg_names, seg_codes)
    else:
        segment = (pa.array(["all customers"], type=pa.large_string()), np.zeros(n, dtype=np.int64))
    var_text = _money_text(ev.var)  # every reason quotes it: formatted once for all slots
    out: dict[str, Any] = {}
    for k in range(top):
        c = chosen[:, k]
        value = np.where(c >= 0, ev.net[rows, np.maximum(c, 0)], np.nan)
        out[f"action_{k + 1}"] = text_array(ids.take(pa.array(np.where(c < 0, len(ids) - 1, c))))
        out[f"action_{k + 1}_value"] = value
        why = _reasons_in_blocks(
            c, ev, catalogue, cols, segment, ref, taken, policy if k == 0 else None, var_text
        )
        out[f"action_{k + 1}_reason"] = text_array(why)
        taken[rows[c >= 0], c[c >= 0]] = True
    out["value_at_risk"] = ev.var
    return out


def explain_exclusions(
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    catalogue: Catalogue,
    settings: Settings,
    which: Sequence[Any] | None = None,
    levers: Mapping[str, float] | None = None,
    reference: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """For a few customers (index labels `which`, default all): one row per (customer, action)
    with allowed yes/no, the reason it was excluded, its save rate and expected net value ($).
    Pass `reference` (population medians of the whole base) when scoring only a few rows."""
    if which is not None:
        scores, customers = scores.loc[list(which)], customers.loc[list(which)]
    ev = evaluate(scores, customers, catalogue, settings, levers, reference)
    n, a = ev.net.shape
    return pd.DataFrame(
        {
            "customer": np.repeat(customers.index.to_numpy(), a),
            "action": np.tile(np.asarray(ev.ids, dtype=object), n),
            "allowed": ev.exclusions.allowed.ravel(),
            "reason": ev.exclusions.reason_text().ravel(),
            "save_rate": ev.save.ravel(),
            "expected_net_value": np.where(ev.exclusions.allowed, ev.net, np.nan).ravel(),
        }
    )


# ---------------------------------------------------------------------------------------------
# Budget mode
# ---------------------------------------------------------------------------------------------


def budget_candidates(recommendations: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """Each customer's best action (action_1) as a budget candidate: customer, action, value
    (expected net $), cost ($); customers whose best is no action are left out."""
    act = recommendations["action_1"].astype("str")
    keep = act.ne(NO_ACTION) & act.ne("") & (recommendations["action_1_value"] > 0)
    costs = {a.id: a.cost for a in catalogue.actions}
    return pd.DataFrame(
        {
            "customer": recommendations.index[keep.to_numpy()],
            "action": act[keep].to_numpy(),
            "value": recommendations.loc[keep, "action_1_value"].to_numpy(dtype=np.float64),
            "cost": act[keep].map(costs).to_numpy(dtype=np.float64),
        }
    )


def _ranked(candidates: pd.DataFrame) -> pd.DataFrame:
    """Positive candidates, one per customer (its highest value), by value per $ descending."""
    c = candidates[(candidates["value"] > 0) & (candidates["cost"] >= 0)]
    c = c.sort_values("value", ascending=False, kind="stable").drop_duplicates("customer")
    ratio = c["value"].to_numpy() / np.maximum(c["cost"].to_numpy(), 1e-12)
    c = c.iloc[np.argsort(-ratio, kind="stable")].reset_index(drop=True)
    c["cum_cost"] = c["cost"].cumsum()
    c["cum_value"] = c["value"].cumsum()
    return c


def allocate_budget(candidates: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Which customers get which single action under a `budget` ($): greedy by expected net
    value per $ of cost, taking the longest prefix whose total cost fits.

    Respects the budget by construction: the chosen rows are exactly those whose cumulative
    cost is ≤ budget. Monotone: a larger budget takes a longer prefix of the same order, and
    every value is > 0, so the total never falls. `candidates`: customer, action, value, cost
    (several rows per customer allowed: its highest-value row is kept)."""
    ranked = _ranked(candidates)
    take = int(np.searchsorted(ranked["cum_cost"].to_numpy(), float(budget), side="right"))
    return ranked.iloc[:take].copy()


def budget_curve(candidates: pd.DataFrame, budgets: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """Total expected net value ($) `allocate_budget` reaches at each budget: columns budget,
    spent, customers, expected_net_value (a table to plot)."""
    ranked = _ranked(candidates)
    cum_cost = ranked["cum_cost"].to_numpy()
    cum_value = np.concatenate([[0.0], ranked["cum_value"].to_numpy()])
    spent = np.concatenate([[0.0], cum_cost])
    b = np.asarray(budgets, dtype=np.float64)
    take = np.searchsorted(cum_cost, b, side="right")
    return pd.DataFrame(
        {
            "budget": b,
            "spent": spent[take],
            "customers": take,
            "expected_net_value": cum_value[take],
        }
    )


# ---------------------------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------------------------


def simulate(
    scores: pd.DataFrame,
    customers: pd.DataFrame,
    catalogue: Catalogue,
    settings: Settings,
    seed: int,
    levers: Mapping[str, float] | None = None,
    baseline_action: str = "retention_offer",
) -> dict[str, Any]:
    """Run the engine on a whole base and compare with baselines (expected net value in $,
    under the catalogue's assumptions and the model's churn probabilities):

    - engine: each customer's action_1;
    - no action: 0;
    - churn score only: `baseline_action` to every flagged customer (`churn_flag`, else
      P ≥ 0.5) where the rules allow it (the contact policy binds any campaign);
    - random: a uniformly random allowed action (other than no action), seeded.

    Returns tables a notebook can display: `summary` (one row per policy), `uplift` (dict, the
    keys of `nba.value` success criteria), `by_segment` (action shares per segment),
    `no_action` (customers left without action), `by_gender` and `by_age_band` (action rates)."""
    ref = population_medians(customers)
    ev = evaluate(scores, customers, catalogue, settings, levers, ref)
    recs = recommend_actions(scores, customers, catalogue, settings, levers, top=1, reference=ref)
    n, _ = ev.net.shape
    rows = np.arange(n)
    j0 = catalogue.ids.index(NO_ACTION)
    cost = np.asarray([a.cost for a in catalogue.actions])

    engine_j = np.asarray([catalogue.ids.index(i) for i in recs["action_1"]], dtype=np.int64)
    flagged = (
        scores["churn_flag"].to_numpy() == 1 if "churn_flag" in scores.columns else ev.p >= 0.5
    )
    jb = catalogue.ids.index(baseline_action)
    base_j = np.where(flagged & ev.exclusions.allowed[:, jb], jb, j0)
    allowed = ev.exclusions.allowed.copy()
    allowed[:, j0] = False
    keys = np.where(allowed, np.random.default_rng(seed).random(allowed.shape), -1.0)
    rand_j = np.where(allowed.any(axis=1), keys.argmax(axis=1), j0)

    def policy(name: str, j: np.ndarray) -> dict[str, Any]:
        acted = j != j0
        net = np.where(acted, ev.net[rows, j], 0.0)
        return {
            "policy": name,
            "customers_contacted": int(acted.sum()),
            "cost": float(cost[j].sum()),
            "expected_saved_value": float(np.where(acted, ev.gross[rows, j], 0.0).sum()),
            "expected_net_value": float(net.sum()),
        }

    summary = pd.DataFrame(
        [
            policy("engine (action_1)", engine_j),
            policy("no action", np.full(n, j0)),
            policy(f"churn score only: {baseline_action} to flagged", base_j),
            policy("random allowed action", rand_j),
        ]
    ).set_index("policy")
    total = summary["expected_net_value"]
    uplift = {
        "net_value_uplift_vs_no_action": float(total.iloc[0] - total.iloc[1]),
        "net_value_uplift_vs_churn_score_one_offer": float(total.iloc[0] - total.iloc[2]),
        "net_value_uplift_vs_random_action": float(total.iloc[0] - total.iloc[3]),
    }
    action = recs["action_1"].astype("str")
    segment = (
        scores["segment_name"].astype("str")
        if "segment_name" in scores.columns
        else pd.Series("all customers", index=scores.index)
    )
    by_segment = pd.crosstab(segment.rename("segment_name"), action.rename("action"))
    age = pd.cut(
        customers["Customer_Age"], bins=list(AGE_BINS), labels=list(AGE_LABELS), right=False
    )
    acted = action.ne(NO_ACTION).rename("action_rate")

    def rates(group: pd.Series) -> pd.DataFrame:
        shares = pd.crosstab(group, action.rename("action"), normalize="index")
        table = acted.groupby(group, observed=True).agg(["size", "mean"])
        table.columns = ["customers", "action_rate"]
        return table.join(shares)

    return {
        "summary": summary,
        "uplift": uplift,
        "by_segment": by_segment,
        "no_action": int((action == NO_ACTION).sum()),
        "by_gender": rates(customers["Gender"].astype("str").rename("Gender")),
        "by_age_band": rates(age.rename("age_band")),
    }
