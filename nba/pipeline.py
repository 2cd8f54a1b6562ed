"""`nba pipeline`: re-run the numbered CRISP-DM notebooks in order with papermill.

A run finds the data once (discovery), gives every notebook the parameters its `parameters`
cell declares (from `params/*.yaml`, `-p KEY VALUE` overrides, the data path and the reports
folder), and writes into a staging folder. Only when every notebook has passed are the executed
notebooks, their HTML (with code, and without code for business readers), figures, metrics and a
run summary moved into `reports/`, so a failed run never leaves a half-written report over the
last good one. A failing notebook stops the run with a `PipelineError` naming the notebook and
the cell; its executed copy is kept in `reports/failed/` for inspection.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from nba import config
from nba.errors import NbaError
from nba.report import library_versions

log = logging.getLogger(__name__)

#: What a run owns inside the reports folder; everything else there is left alone.
OUTPUTS = (
    "notebooks",
    "html",
    "figures",
    "metrics",
    "artifacts",
    "scores",
    "model_card.md",
    "run_summary.json",
)
FAILED = "failed"
SUMMARY = "run_summary.json"
VERSIONS = ("nba", "pandas", "numpy", "scikit-learn", "papermill", "matplotlib", "pandera")


class PipelineError(NbaError):
    """A notebook failed: names the notebook and the cell, and where its executed copy is."""


@dataclass
class NotebookRun:
    name: str
    seconds: float
    parameters: dict[str, Any]


@dataclass
class RunSummary:
    """What a run did: for reports/run_summary.json and the command's last lines."""

    started: str
    seconds: float
    data: dict[str, Any]
    parameters: dict[str, Any]
    notebooks: list[NotebookRun] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    reports_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def notebooks(folder: Path | None = None) -> list[Path]:
    """The numbered notebooks (`NN_name.ipynb`) in dependency order."""
    folder = Path(folder or config.NOTEBOOKS_DIR)
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def _cast(name: str, value: Any) -> Any:
    """A parameter value in its Settings field's type (the command line hands over text)."""
    default = getattr(config.Settings(), name)
    if isinstance(default, bool):
        return str(value).strip().lower() in {"1", "true", "yes", "on"}
    try:
        return type(default)(value)
    except (TypeError, ValueError) as exc:
        kind = type(default).__name__
        raise NbaError(f"parameter {name}={value!r} is not a valid {kind}") from exc


def load_parameters(
    params_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Parameters from a YAML file, then overrides; every name must be a Settings field."""
    params_file = Path(params_file or config.PARAMS_DIR / "default.yaml")
    if not params_file.exists():
        raise NbaError(f"The parameters file {params_file} does not exist.")
    loaded = yaml.safe_load(params_file.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise NbaError(f"{params_file} must hold KEY: VALUE lines.")
    merged = {**loaded, **(overrides or {})}
    known = {f.name for f in fields(config.Settings)}
    unknown = sorted(set(merged) - known)
    if unknown:
        raise NbaError(
            f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return {k: _cast(k, v) for k, v in merged.items()}


def declared_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    """The parameters a notebook's `parameters` cell declares (name → papermill's record)."""
    import papermill

    return papermill.inspect_notebook(str(notebook))


def _for_notebook(notebook: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    declared = declared_parameters(notebook)
    return {k: v for k, v in parameters.items() if k in declared}


def _title(nb: Any) -> str:
    """A notebook's page title: its first markdown heading, without the # marks."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in str(cell.source).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return "nba report"


def _alt_text(nb: Any) -> None:
    """Every picture output without an HTML form of its own (a plain PNG, which nbconvert
    renders without alternative text) gets one: an <img> whose alt is the first sentence of the
    next markdown cell (the house style puts a sentence under every figure saying what it
    shows), else the last heading above it. In place."""
    import html
    import re

    heading = "Figure"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for line in str(cell.source).splitlines():
                if line.startswith("#"):
                    heading = line.lstrip("#").strip()
            continue
        if cell.cell_type != "code":
            continue
        after = next((c for c in nb.cells[i + 1 :] if c.cell_type == "markdown"), None)
        text = heading
        if after is not None and not str(after.source).lstrip().startswith("#"):
            plain = re.sub(r"[*_`#>\[\]]", "", str(after.source))
            text = re.split(r"(?<=[.!?])\s", " ".join(plain.split()), maxsplit=1)[0] or heading
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data and "text/html" not in data:
                alt = html.escape(text[:300], quote=True)
                png = str(data["image/png"]).replace("\n", "")
                data["text/html"] = (
                    f'<img src="data:image/png;base64,{png}" alt="{alt}" style="max-width:100%">'
                )


def _html(executed: Path, html_dir: Path) -> None:
    """Two HTML copies: with code (for the team) and without (for business readers), titled
    with the notebook's heading (not "Notebook"), every figure with alternative text."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    html_dir.mkdir(parents=True, exist_ok=True)
    title = _title(nb)
    _alt_text(nb)
    for suffix, exporter in (
        ("", HTMLExporter()),
        (
            ".business",
            HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True),
        ),
    ):
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        (html_dir / f"{executed.stem}{suffix}.html").write_text(body, encoding="utf-8")


def _publish(staging: Path, reports: Path) -> None:
    """Move the run's outputs from staging into reports, one entry at a time (rename)."""
    reports.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        new = staging / name
        if not new.exists():
            continue
        old = reports / name
        retired = reports / f".{name}.old"
        if retired.exists():
            shutil.rmtree(retired) if retired.is_dir() else retired.unlink()
        if old.exists():
            os.replace(old, retired)
        os.replace(new, old)
        if retired.exists():
            shutil.rmtree(retired) if retired.is_dir() else retired.unlink()


def _failure(exc: Exception, notebook: Path, executed: Path, reports: Path) -> PipelineError:
    """Keep the executed copy for inspection and say which cell failed, in one line."""
    failed_dir = reports / FAILED
    failed_dir.mkdir(parents=True, exist_ok=True)
    kept = failed_dir / notebook.name
    if executed.exists():
        shutil.copyfile(executed, kept)
    cell = getattr(exc, "exec_count", None) or getattr(exc, "cell_index", None)
    ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
    where = f"in cell {cell}" if cell is not None else "before its cells ran"
    first = (str(evalue).strip().splitlines() or [""])[0][:300]
    return PipelineError(
        f"notebook {notebook.stem} failed {where}: {ename}: {first} (executed copy: {kept})"
    )


def prepare(
    out_dir: Path,
    data_path: str | Path | None = None,
    params_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    reports_dir: Path | None = None,
    notebooks_dir: Path | None = None,
) -> list[Path]:
    """Write every notebook with its parameters injected but not executed (papermill's
    prepare-only), for nbval to execute: the same parameters `run` would give."""
    import papermill

    parameters, _ = _run_parameters(data_path, params_file, overrides, reports_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for notebook in notebooks(notebooks_dir):
        target = out_dir / notebook.name
        papermill.execute_notebook(
            str(notebook),
            str(target),
            parameters=_for_notebook(notebook, parameters),
            prepare_only=True,
            progress_bar=False,
        )
        written.append(target)
    return written


def _run_parameters(
    data_path: str | Path | None,
    params_file: Path | None,
    overrides: dict[str, Any] | None,
    reports_dir: Path | None,
):
    """The run's parameters: YAML + overrides + the discovered data + the reports folder."""
    from nba.data.discover import discover

    parameters = load_parameters(params_file, overrides)
    settings = config.Settings(**parameters)
    source = discover(data_path or parameters.get("data_path") or None, settings)
    parameters["data_path"] = str(Path(source.path).resolve())
    if reports_dir is not None:
        parameters["reports_dir"] = str(Path(reports_dir).resolve())
    else:
        parameters["reports_dir"] = str(config.Settings(**parameters).path("reports_dir"))
    return parameters, source


def run(
    data_path: str | Path | None = None,
    params_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    reports_dir: Path | None = None,
    notebooks_dir: Path | None = None,
    progress: bool = True,
    kernel_name: str | None = None,
) -> RunSummary:
    """Execute every notebook in order; publish into the reports folder only if all pass."""
    import papermill
    from tqdm.auto import tqdm

    start = time.perf_counter()
    parameters, source = _run_parameters(data_path, params_file, overrides, reports_dir)
    reports = Path(parameters["reports_dir"])
    staging = reports.parent / f".{reports.name}.staging-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    staged = {**parameters, "reports_dir": str(staging)}
    summary = RunSummary(
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=0.0,
        data=source.to_dict(),
        parameters=parameters,
        versions=library_versions(VERSIONS),
        reports_dir=str(reports),
    )
    if source.synthetic:
        log.warning("%s", source.banner)
    todo = notebooks(notebooks_dir)
    if not todo:
        raise PipelineError(f"No numbered notebooks in {notebooks_dir or config.NOTEBOOKS_DIR}.")
    try:
        bar = tqdm(todo, desc="pipeline", unit="notebook", disable=not progress)
        for notebook in bar:
            bar.set_postfix_str(notebook.stem)
            given = _for_notebook(notebook, staged)
            executed = staging / "notebooks" / notebook.name
            executed.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(notebook),
                    str(executed),
                    parameters=given,
                    kernel_name=kernel_name,
                    progress_bar=False,
                    cwd=str(config.ROOT),
                )
            except Exception as exc:  # noqa: BLE001 - any failure becomes one line naming the cell
                raise _failure(exc, notebook, executed, reports) from exc
            seconds = time.perf_counter() - t0
            log.info("%s ran in %.1f s", notebook.stem, seconds)
            published = {k: parameters.get(k, v) for k, v in given.items()}
            summary.notebooks.append(NotebookRun(notebook.stem, round(seconds, 2), published))
            _html(executed, staging / "html")
        summary.seconds = round(time.perf_counter() - start, 2)
        from nba.report import write_json

        write_json(staging / SUMMARY, summary.to_dict())
        _publish(staging, reports)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary
