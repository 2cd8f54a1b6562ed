"""One versioned artifact holding everything needed to score: the safe save/load and metadata.

A bundle is a skops file (a zip of JSON and arrays, no pickle) holding a plain dict: the fitted
churn model and its threshold, the segmentation, the action catalogue, the settings, a
monitoring reference and the metadata (format version, creation time, data source with sha256
and synthetic flag, metrics, library versions). Loading never executes untrusted code: skops
instantiates only the types on `trusted_types()`; a file asking for anything else is refused,
whatever checksum it carries, because a checksum stored in the same file proves nothing against
tampering.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from nba.errors import NbaError
from nba.report import atomic_write_bytes, library_versions

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LIBRARIES = ("nba", "scikit-learn", "numpy", "pandas", "scipy", "skops", "lightgbm")

#: Types a bundle may hold beyond skops' own defaults (numpy, scipy, scikit-learn): the
#: project's estimators and the model library they wrap. Nothing else is ever instantiated.
TRUSTED_TYPES = (
    "builtins.slice",
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "nba.churn.model.ChurnModel",
    "nba.config.Settings",
    "nba.features.FeatureBuilder",
    "nba.segments.model.Segmenter",
    "nba.segments.space.NeedsFeatures",
)


class BundleError(NbaError):
    """A bundle file is missing, corrupt, tampered with or from an incompatible version."""


def trusted_types() -> list[str]:
    """Every type the loader agrees to instantiate beyond skops' defaults."""
    return sorted(TRUSTED_TYPES)


@dataclass
class Bundle:
    """Everything needed to score a customer. Build with `nba.train`, load with `load_bundle`."""

    churn: Any
    segmenter: Any
    catalogue: Any = None
    settings: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The churn model credit actions use, fitted without the protected attributes; None when
    #: the main model is itself blind (`Settings.churn_keeps_protected` false) or the bundle
    #: predates it.
    credit_churn: Any = None
    _parsed_catalogue: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def threshold(self) -> float:
        return float(self.churn.threshold_)

    @property
    def run_settings(self) -> Any:
        """The `Settings` the bundle was trained with (value assumptions for the actions)."""
        from nba.config import Settings

        known = {f for f in Settings.__dataclass_fields__}
        return Settings(**{k: v for k, v in self.settings.items() if k in known})

    @property
    def credit_model(self) -> Any:
        """The churn model credit actions use: `credit_churn`, else the main model."""
        return self.churn if self.credit_churn is None else self.credit_churn

    @property
    def protected(self) -> tuple[str, ...]:
        """The protected attributes this bundle keeps out of credit decisions: the columns its
        credit model was fitted without (the configured list for a bundle from before that)."""
        excluded = tuple(getattr(self.credit_model, "exclude", ()) or ())
        if excluded:
            return excluded
        from nba.config import protected_attributes

        return tuple(protected_attributes())

    @property
    def action_catalogue(self) -> Any:
        """The action catalogue, parsed once from the plain data the bundle stores (a credit
        action's rule naming a protected attribute is refused)."""
        if self._parsed_catalogue is None:
            from nba.actions import parse_catalogue

            self._parsed_catalogue = parse_catalogue(self.catalogue, protected=self.protected)
        return self._parsed_catalogue

    def score(self, df: pd.DataFrame) -> pd.DataFrame:
        """Score a clean customer frame: one row per customer with the score columns."""
        from nba.scoring import score_frame

        return score_frame(self, df)

    def recommend(self, customer: dict[str, Any]) -> dict[str, Any]:
        """One customer (a dict of BankChurners fields) → one score row as a dict."""
        from nba.scoring import recommend

        return recommend(self, customer)


def make_metadata(
    source: dict[str, Any], metrics: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any]:
    """What a bundle promises, readable without running a notebook."""
    return {
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": dict(source),
        "synthetic": bool(source.get("synthetic")),
        "metrics": metrics,
        "settings": settings,
        "libraries": library_versions(LIBRARIES),
    }


PARTS = ("churn", "segmenter", "catalogue", "settings", "reference", "metadata", "credit_churn")


def _payload(bundle: Bundle) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, **{k: getattr(bundle, k) for k in PARTS}}


def dump_trusted(obj: Any, path: str | Path) -> Path:
    """Write any project object (a bundle payload, a fitted model) with skops, atomically;
    refuse to write what `load_trusted` would not load."""
    import skops.io as sio

    path = Path(path)
    data = sio.dumps(obj)
    untrusted = set(sio.get_untrusted_types(data=data)) - set(trusted_types())
    if untrusted:
        raise BundleError(
            f"{path.name} would hold types the loader does not trust: {', '.join(sorted(untrusted))}"
        )
    atomic_write_bytes(path, data)
    log.info("wrote %s (%d bytes)", path, len(data))
    return path


def load_trusted(path: str | Path) -> Any:
    """Load a skops file instantiating only trusted types; any problem is one sentence."""
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise BundleError(f"No file at {path}.")
    data = path.read_bytes()
    try:
        untrusted = set(sio.get_untrusted_types(data=data)) - set(trusted_types())
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise BundleError(
            f"{path} is not a readable nba file (corrupt or another format)."
        ) from exc
    if untrusted:
        raise BundleError(
            f"{path} asks to load types nba does not trust ({', '.join(sorted(untrusted))}); "
            "refusing to load it: it may have been tampered with."
        )
    try:
        return sio.loads(data, trusted=trusted_types())
    except Exception as exc:  # noqa: BLE001 - any failure to rebuild is one sentence
        raise BundleError(f"{path} could not be loaded ({type(exc).__name__}: {exc}).") from exc


def save_bundle(bundle: Bundle, path: str | Path) -> Path:
    """Write the bundle atomically; refuse to write one the loader would not trust."""
    return dump_trusted(_payload(bundle), path)


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle safely: only trusted types are instantiated; any problem is one sentence."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"No bundle at {path}: build one with `nba train --out {path}`.")
    payload = load_trusted(path)
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise BundleError(f"{path} is not an nba bundle.")
    if payload["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{path} has bundle format {payload['format_version']}, this nba reads format "
            f"{FORMAT_VERSION}: rebuild it with `nba train`."
        )
    parts = {k: payload[k] for k in PARTS if k != "credit_churn"}
    return Bundle(**parts, credit_churn=payload.get("credit_churn"))  # absent before it existed
