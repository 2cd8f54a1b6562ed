"""nba — next best action for credit-card customers: churn risk, segments, ranked actions.

Importing the package does no work; `load_bundle` imports the model libraries when called.
"""

from __future__ import annotations

from importlib import metadata as _metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nba.bundle import Bundle

try:
    __version__ = _metadata.version("nba")
except _metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"


def load_bundle(path) -> Bundle:
    """Load a trained bundle safely (see `nba.bundle.load_bundle`)."""
    from nba.bundle import load_bundle as _load

    return _load(path)


__all__ = ["__version__", "load_bundle"]
