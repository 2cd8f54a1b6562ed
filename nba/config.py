"""Paths from the project root and the run's `Settings`.

Importing this module does no work: no directories are made, nothing is read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any


def _find_root() -> Path:
    """The project root: `NBA_ROOT` if set, else the folder holding pyproject.toml above this file,
    else the current directory (an installed package used from elsewhere)."""
    env = os.environ.get("NBA_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent
    for candidate in (here.parent, *here.parents):
        if (candidate / "pyproject.toml").exists() and (candidate / "nba").is_dir():
            return candidate
    return Path.cwd()


ROOT = _find_root()
DATA_DIR = ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
SYNTHETIC_DIR = DATA_DIR / "synthetic"
MODELS_DIR = ROOT / "models"
REPORTS_DIR = ROOT / "reports"
PARAMS_DIR = ROOT / "params"
NOTEBOOKS_DIR = ROOT / "notebooks"

RAW_FILE = RAW_DIR / "BankChurners.csv"
DATA_ENV = "NBA_DATA"


def cache_dir() -> Path:
    """Where nba keeps what it can rebuild (compiled models, the app's charts) between
    processes: $NBA_CACHE, else the user's cache folder ($XDG_CACHE_HOME or ~/.cache) / nba."""
    env = os.environ.get("NBA_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nba"


#: Rows in the default synthetic dataset: the size of the full public Kaggle dataset.
SYNTHETIC_ROWS = 10_127


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on, in one frozen record. One seed drives every split and model."""

    seed: int = 42  # one seed for every split, model and synthetic draw
    test_size: float = 0.2  # share of customers held out for evaluation (stratified)
    cv_folds: int = 5  # folds for cross-validated model comparison
    synthetic_rows: int = SYNTHETIC_ROWS  # rows of the synthetic default dataset

    # Where things are read and written (relative paths are from the project root).
    data_path: str = ""  # empty: data discovery (NBA_DATA, data/raw, synthetic default)
    reports_dir: str = "reports"  # executed notebooks, figures, metrics/*.json
    models_dir: str = "models"  # trained bundles
    split_file: str = "artifacts/split.csv"  # held-out split (ids), relative to reports_dir
    churn_model_file: str = "artifacts/churn_model.skops"  # stage 1 fitted on the training split
    segmenter_file: str = "artifacts/segmenter.skops"  # stage 2 fitted on the training split
    choices_file: str = "artifacts/choices.json"  # the lineage record notebooks 04-05 write

    # Value assumptions (yearly, in the card's currency); rationale in params/default.yaml.
    interchange_rate: float = 0.018  # issuer's share of card spend
    interest_margin: float = 0.12  # net yearly margin on revolving balances
    annual_fee_blue: float = 0.0  # yearly card fee by tier
    annual_fee_silver: float = 59.0
    annual_fee_gold: float = 99.0
    annual_fee_platinum: float = 199.0
    servicing_cost: float = 40.0  # yearly cost to serve an active account
    value_horizon_years: float = 3.0  # years of value a retained customer is expected to bring
    # Which spend a customer's value counts: "current" (the last 12 months) or "pre_decline"
    # (the 12 months with the Q4/Q1 fall in spend undone; `nba.value.pre_decline_spend`).
    value_basis: str = "current"
    # Policy: the action every high-risk customer gets when the engine would recommend nothing
    # (its expected saving is below the cost); empty: no floor. Rationale in params/default.yaml.
    high_risk_minimum_action: str = ""

    # Responsible decisioning (params/protected.yaml, README "Responsible decisioning").
    protected_params: str = "params/protected.yaml"  # the protected attributes and their rationale
    # Whether the MAIN churn model (retention marketing: non-credit actions) keeps the protected
    # attributes. Credit actions never use it: they use a churn model fitted without them. Kept
    # by default so the main model is the one the stage-1 study chose and measured; removing them
    # costs little (notebook 04 measures it), so a bank wanting one blind model sets this false.
    churn_keeps_protected: bool = True

    # Stage 1's feature variant (nba.churn.CHURN_FEATURE_SETS): "full" (the whole record, the
    # most accurate), "trend" (static profile and Q4/Q1 trend) or "early_warning" (static profile
    # only: no behaviour of the 12-month window, which may coincide with leaving). Rationale and
    # the measured cost in accuracy: params/default.yaml and notebook 04.
    churn_features: str = "full"

    # The closed loop in the response simulator (notebook 09).
    campaign_waves: int = 5  # campaigns planned, answered, recorded and learnt from
    campaign_rows: int = 20_000  # synthetic customers per campaign

    def path(self, name: str) -> Path:
        """A path setting (`reports_dir`, `models_dir`, `data_path`) resolved from the root;
        the files notebooks hand each other (`*_file`) are resolved inside `reports_dir`."""
        value = Path(getattr(self, name))
        if value.is_absolute():
            return value
        return (self.path("reports_dir") if name.endswith("_file") else ROOT) / value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> Settings:
        """Settings from a notebook's parameters (e.g. `Settings.from_parameters(locals())`):
        every name that is a field is taken, cast to the field's type; anything else (modules,
        other variables) is ignored; fields not given keep their defaults."""
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in parameters.items() if k in known}
        return cls().with_overrides(**given)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some fields changed; unknown names are an error, values are cast to the
        field's type (papermill and the command line hand over strings)."""
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        cast = {k: _cast(getattr(self, k), v) for k, v in overrides.items()}
        return replace(self, **cast)


def _cast(current: Any, value: Any) -> Any:
    """`value` as the type of the field's `current` value; "false"/"0"/"no" are False for a
    bool field (papermill and the command line hand over strings, and bool("false") is True)."""
    if isinstance(current, bool) and isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "")
    return type(current)(value)


#: The protected attributes when no params file is found (an installed package used elsewhere);
#: the rationale of each is in params/protected.yaml.
DEFAULT_PROTECTED = ("Gender", "Customer_Age", "Marital_Status", "Dependent_count")


def load_params_file(cls: type, path: str | Path | None, default_name: str, what: str) -> Any:
    """A frozen dataclass `cls` of settings from a YAML file of its fields: `path`, else
    `params/<default_name>`; `cls()` (its built-in defaults) when that default file is absent,
    e.g. in an installed package. Each value takes its field default's type. A missing file
    (given explicitly), bad YAML or an unknown key is an `NbaError` naming the file and `what`."""
    import yaml

    from nba.errors import NbaError

    default = PARAMS_DIR / default_name
    file = Path(path) if path else default
    if not file.is_file():
        if file == default:
            return cls()
        raise NbaError(f"No {what} file at {file}.")
    try:
        values = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise NbaError(f"{file} is not valid YAML ({type(exc).__name__}).") from exc
    if not isinstance(values, Mapping):
        raise NbaError(f"{file} must map the {what}' names to values.")
    defaults = cls()
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise NbaError(
            f"{file} has unknown key(s) for the {what}: {', '.join(map(str, unknown))}; known: "
            f"{', '.join(f.name for f in fields(cls))}."
        )
    return cls(**{k: type(getattr(defaults, k))(v) for k, v in values.items()})


def protected_attributes(path: str | Path | None = None) -> dict[str, str]:
    """The protected attributes (column → rationale) from `path`, default
    params/protected.yaml; without that file, `DEFAULT_PROTECTED`. A file that names a column
    the customer record does not have, or an attribute without its rationale, raises
    `ValueError` with one sentence naming it."""
    import yaml

    from nba.data import schema

    file = Path(path) if path is not None else PARAMS_DIR / "protected.yaml"
    if path is None and not file.is_file():
        return {
            c: "default protected attribute (no params/protected.yaml found)"
            for c in DEFAULT_PROTECTED
        }
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{file}: cannot be read as YAML ({type(exc).__name__})") from None
    listed = raw.get("protected") if isinstance(raw, Mapping) else None
    if not isinstance(listed, Mapping):
        raise ValueError(f"{file}: needs a mapping 'protected' of column: rationale")
    out: dict[str, str] = {}
    for column, why in listed.items():
        if column not in schema.REQUIRED or column == schema.ID:
            raise ValueError(f"{file}: protected attribute {column!r} is not a customer column")
        if not isinstance(why, str) or not why.strip():
            raise ValueError(f"{file}: protected attribute {column!r} has no rationale")
        out[str(column)] = " ".join(why.split())
    return out
