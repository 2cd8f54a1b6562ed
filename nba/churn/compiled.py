"""Compiled inference for the churn model: the boosted trees as native code (lleaves + LLVM).

The same trees and thresholds as LightGBM's, about 4x faster on one core; every compiled model
is checked against LightGBM on a few rows before use and dropped (LightGBM scores instead) if
it disagrees beyond summation-order noise or if lleaves is unavailable. Object files are cached
on disk per model text and machine in `nba.config.cache_dir()`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from nba.config import cache_dir

logger = logging.getLogger(__name__)

#: Raw scores of the compiled trees may differ from LightGBM's only by floating-point summation
#: order; anything larger means the compiled code is wrong, and LightGBM is used instead.
COMPILED_TOLERANCE = 1e-9
_COMPILED: weakref.WeakKeyDictionary[lgb.Booster, Any] = weakref.WeakKeyDictionary()


def _compile(booster: lgb.Booster) -> Any:
    """The booster as native code with lleaves (the same trees and thresholds, compiled by
    LLVM: ~4x faster than LightGBM's own predict on one core). Compiling takes about a second,
    so the object file is cached on disk per model text and machine (CPU, library versions)."""
    from importlib.metadata import version

    import lleaves
    import llvmlite.binding as llvm

    text = booster.model_to_string()
    cpu = f"{llvm.get_host_cpu_name()} {llvm.get_host_cpu_features().flatten()}"
    machine = f"lleaves {version('lleaves')} llvmlite {version('llvmlite')} {cpu}"
    key = hashlib.sha256(f"{machine}\n{text}".encode()).hexdigest()[:32]
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"churn-{key}.o"
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / "model.txt"
        model_file.write_text(text)
        model = lleaves.Model(model_file=str(model_file))
        if target.exists():
            model.compile(cache=str(target), raw_score=True)
            with contextlib.suppress(OSError):
                os.utime(target)  # "recently used": what `prune_cache` keeps
        else:  # compile beside the target, then move into place: concurrent workers are safe
            partial = folder / f".{target.name}.{uuid.uuid4().hex}.tmp"
            model.compile(cache=str(partial), raw_score=True)
            os.replace(partial, target)
            prune_cache(folder)
    return model


#: Compiled models kept in the cache folder: the most recently used ones (one per trained
#: model and machine, ~1 MB each); older ones are deleted when a new one is written.
CACHE_KEEP = 20
_PARTIAL_MAX_AGE = 3600.0  # s: a partial file older than this is left over from a crash


def prune_cache(folder: Path, keep: int = CACHE_KEEP) -> None:
    """Delete all but the `keep` most recently used compiled models in `folder`, and partial
    files left by interrupted compilations; files that vanish meanwhile are skipped."""
    entries = []
    for path in folder.glob("churn-*.o"):
        with contextlib.suppress(OSError):
            entries.append((path.stat().st_mtime, path))
    entries.sort(reverse=True)
    stale = [path for _, path in entries[keep:]]
    now = time.time()
    for path in folder.glob(".churn-*.tmp"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > _PARTIAL_MAX_AGE:
                stale.append(path)
    for path in stale:
        with contextlib.suppress(OSError):
            path.unlink()
    if stale:
        logger.info("removed %d old compiled models from %s", len(stale), folder)


def compiled_booster(booster: lgb.Booster, probe: np.ndarray) -> Any | None:
    """The compiled booster (see `_compile`), built once per booster and process and checked
    against LightGBM on `probe` (a few model-input rows); None when lleaves is unavailable or
    disagrees, so that the caller keeps LightGBM's own predict."""
    if booster in _COMPILED:
        return _COMPILED[booster]
    model = None
    try:
        model = _compile(booster)
        want = booster.predict(probe, raw_score=True, num_threads=1)
        got = model.predict(probe, n_jobs=1)
        if not np.allclose(got, want, rtol=0.0, atol=COMPILED_TOLERANCE):
            logger.warning("compiled churn model disagrees with LightGBM; using LightGBM")
            model = None
    except Exception as err:  # noqa: BLE001 - any failure means: score with LightGBM itself
        logger.warning("churn model not compiled (%s); using LightGBM", err)
        model = None
    _COMPILED[booster] = model
    return model
