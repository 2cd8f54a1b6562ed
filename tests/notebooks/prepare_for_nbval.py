"""Prepare the notebooks for nbval: papermill injects the CI parameters (nothing runs), then the
reference outputs of the `# NBVAL_CHECK_OUTPUT` cells are filled in from expected_outputs.json.

Committed notebooks carry no outputs, so the printed results that must not change live here, in
the tests, as expectations. nbval then executes each prepared notebook once; that execution is
the notebooks' CI run (it writes the metrics that tests/notebooks/test_notebooks.py asserts).

Usage: python tests/notebooks/prepare_for_nbval.py REPORTS_DIR [PARAMS_YAML]
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat

from nba import config, pipeline

MARK = "# NBVAL_CHECK_OUTPUT"
EXPECTED = Path(__file__).with_name("expected_outputs.json")


def inject(notebook: Path, expected: dict[str, str]) -> int:
    """Set the reference output of every marked cell; a marked cell without one is an error."""
    nb = nbformat.read(notebook, as_version=4)
    marked = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.source.lstrip().startswith(MARK):
            continue
        if cell.id not in expected:
            raise SystemExit(
                f"{notebook.name}: cell {cell.id} is marked {MARK} but has no "
                f"expected output in {EXPECTED.name}"
            )
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=expected[cell.id])]
        marked += 1
        cell.execution_count = marked  # nbval refuses reference outputs of an unrun cell
    nbformat.write(nb, notebook)
    return marked


def main(reports_dir: str, params: str | None = None) -> None:
    reports = Path(reports_dir).resolve()
    shutil.rmtree(reports, ignore_errors=True)  # a dedicated folder: nothing stale survives
    expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    prepared = pipeline.prepare(
        reports / "prepared",
        params_file=Path(params) if params else config.PARAMS_DIR / "ci.yaml",
        reports_dir=reports,
    )
    for notebook in prepared:
        n = inject(notebook, expected.get(notebook.name, {}))
        print(f"prepared {notebook.name} ({n} output checks)")


if __name__ == "__main__":
    main(*sys.argv[1:])
