"""The notebooks' CI run, shared by the tests of this folder, and what the notebooks showed.

Under `make test` nbval executes the prepared notebooks (tests/notebooks/prepare_for_nbval.py)
in the same pytest session and NBA_NOTEBOOK_REPORTS names their reports folder. nbval keeps no
executed copy, so `pytest_collection_modifyitems` below records every cell's outputs, as nbval
received them, into `<reports>/executed/<notebook>.jsonl`: the text a person reads in each
notebook, for the cross-check of tests/notebooks/test_one_truth.py. Run on its own, this folder
runs `nba pipeline` with params/ci.yaml instead, which publishes executed notebooks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nba import config, pipeline

ENV = "NBA_NOTEBOOK_REPORTS"
EXECUTED = "executed"


def _record_outputs(item, folder: Path) -> None:
    """Wrap an nbval cell so that, once it has run, its outputs are appended to the folder."""
    run = item.runtest
    notebook = Path(str(item.parent.fspath)).name

    def runtest() -> None:
        try:
            run()
        finally:
            folder.mkdir(parents=True, exist_ok=True)
            record = {"cell": item.cell.get("id"), "outputs": item.test_outputs or []}
            with (folder / f"{notebook}.jsonl").open("a", encoding="utf-8") as out:
                out.write(json.dumps(record, default=str) + "\n")

    item.runtest = runtest


def pytest_collection_modifyitems(session, config, items) -> None:  # noqa: ARG001
    given = os.environ.get(ENV)
    if not given:
        return
    folder = Path(given).resolve() / EXECUTED
    cells = [item for item in items if type(item).__name__ == "IPyNbCell"]  # nbval's items
    if cells:
        for stale in folder.glob("*.jsonl"):
            stale.unlink()
    for item in cells:
        _record_outputs(item, folder)


@pytest.fixture(scope="session")
def reports(tmp_path_factory) -> Path:
    given = os.environ.get(ENV)
    if given:
        folder = Path(given).resolve()
        assert (folder / "metrics").is_dir(), f"{ENV}={given} but the notebooks wrote no metrics"
        return folder
    folder = tmp_path_factory.mktemp("reports")
    pipeline.run(params_file=config.PARAMS_DIR / "ci.yaml", reports_dir=folder, progress=False)
    return folder


def _texts(outputs: list[dict]) -> list[str]:
    out = []
    for o in outputs:
        if o.get("output_type") == "stream":
            out.append(o.get("text", ""))
        for kind in ("text/markdown", "text/plain", "text/html"):
            value = o.get("data", {}).get(kind)
            if value:
                out.append(value if isinstance(value, str) else "".join(value))
    return out


@pytest.fixture(scope="session")
def notebook_text(reports: Path):
    """`notebook_text(stem)`: what the executed notebook `stem` showed (see `shown_by`)."""
    return lambda stem: shown_by(reports, stem)


def shown_by(reports: Path, stem: str) -> str:
    """Everything notebook `stem` (e.g. "07_evaluation") showed: its markdown, text, tables
    and printed lines, from the executed copy the pipeline published or from nbval's run."""
    published = reports / "notebooks" / f"{stem}.ipynb"
    if published.exists():
        import nbformat

        nb = nbformat.read(published, as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        return "\n".join(_texts(outputs))
    recorded = reports / EXECUTED / f"{stem}.ipynb.jsonl"
    assert recorded.exists(), f"no executed copy of {stem}: neither {published} nor {recorded}"
    lines = recorded.read_text(encoding="utf-8").splitlines()
    return "\n".join(t for line in lines for t in _texts(json.loads(line)["outputs"]))
