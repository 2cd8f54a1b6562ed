"""The notebook runner on tiny notebooks: order, parameters, atomic publishing, failures."""

from __future__ import annotations

import json

import nbformat
import pytest

from nba import config, pipeline
from nba.cli import main
from nba.data import synth
from nba.errors import NbaError

from factories import to_kaggle_csv

PARAMS = """\
seed: int = 42  # one seed
reports_dir: str = "reports"  # where to write
data_path: str = ""  # data
"""


def _notebook(path, body: str, params: str = PARAMS) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


WRITE = """\
import json, pathlib
out = pathlib.Path(reports_dir) / "metrics" / "{name}.json"
out.parent.mkdir(parents=True, exist_ok=True)
previous = sorted(p.name for p in out.parent.glob("*.json"))
out.write_text(json.dumps({{"seed": seed, "data": data_path, "seen": previous}}))
"""


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_first.ipynb", WRITE.format(name="first"))
    _notebook(folder / "02_second.ipynb", WRITE.format(name="second"))
    _notebook(folder / "scratch.ipynb", "raise RuntimeError('not numbered: never run')")
    data = tmp_path / "customers.csv"
    data.write_text(to_kaggle_csv(synth.generate(30, 1)))
    params = tmp_path / "params.yaml"
    params.write_text("seed: 7\n")
    return tmp_path, folder, data, params


def _run(project, **kwargs):
    tmp_path, folder, data, params = project
    return pipeline.run(
        data_path=data,
        params_file=params,
        reports_dir=tmp_path / "reports",
        notebooks_dir=folder,
        progress=False,
        **kwargs,
    )


def test_runs_numbered_notebooks_in_order_with_their_parameters(project):
    tmp_path = project[0]
    summary = _run(project, overrides={"seed": "9"})
    assert [n.name for n in summary.notebooks] == ["01_first", "02_second"]
    reports = tmp_path / "reports"
    second = json.loads((reports / "metrics" / "second.json").read_text())
    assert second == {"seed": 9, "data": str(project[2].resolve()), "seen": ["first.json"]}
    for name in ("01_first.ipynb", "02_second.ipynb"):
        assert (reports / "notebooks" / name).exists()
    assert (reports / "html" / "01_first.html").exists()
    business = (reports / "html" / "01_first.business.html").read_text()
    assert "pathlib" not in business  # code hidden for business readers
    run = json.loads((reports / "run_summary.json").read_text())
    assert run["data"]["rows"] == 30 and run["data"]["synthetic"] is False
    assert run["parameters"]["seed"] == 9
    assert not list(tmp_path.glob(".reports.staging-*"))


def test_a_failing_notebook_names_the_cell_and_keeps_the_last_good_reports(project):
    tmp_path, folder = project[0], project[1]
    _run(project)
    good = (tmp_path / "reports" / "metrics" / "first.json").read_text()
    _notebook(folder / "02_second.ipynb", "x = 1\nraise ValueError('boom')")
    _notebook(folder / "01_first.ipynb", WRITE.format(name="first").replace("seed}", "seed + 1}"))
    with pytest.raises(pipeline.PipelineError) as err:
        _run(project)
    message = str(err.value)
    assert "02_second" in message and "cell" in message and "ValueError: boom" in message
    assert "\n" not in message
    assert (tmp_path / "reports" / "metrics" / "first.json").read_text() == good
    kept = tmp_path / "reports" / "failed" / "02_second.ipynb"
    assert "boom" in kept.read_text()


def test_unknown_parameter_is_one_clear_error(project):
    with pytest.raises(NbaError, match="unknown parameter"):
        _run(project, overrides={"sede": "1"})


def test_bad_value_type_is_one_clear_error(project):
    with pytest.raises(NbaError, match="seed='x' is not a valid int"):
        _run(project, overrides={"seed": "x"})


def test_prepare_injects_parameters_without_running(project, tmp_path):
    _, folder, data, params = project
    out = pipeline.prepare(
        tmp_path / "prepared", data_path=data, params_file=params, notebooks_dir=folder
    )
    assert [p.name for p in out] == ["01_first.ipynb", "02_second.ipynb"]
    nb = nbformat.read(out[0], as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "seed = 7" in injected[0].source
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_the_command_exits_1_with_one_line_on_failure(project, capsys, monkeypatch):
    tmp_path, folder, data, params = project
    _notebook(folder / "01_first.ipynb", "1/0")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", folder)
    code = main(
        ["pipeline", "--data", str(data), "--params", str(params), "-q"]
        + ["--reports-dir", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "01_first" in err[0] and "ZeroDivisionError" in err[0]


def test_real_notebooks_declare_only_settings_fields():
    from dataclasses import fields

    known = {
        f.name: type(getattr(config.Settings(), f.name)).__name__ for f in fields(config.Settings)
    }
    found = pipeline.notebooks()
    numbers = [int(p.name[:2]) for p in found]
    assert numbers == sorted(set(numbers)) and numbers[0] == 1  # unique, in phase order
    assert len(found) >= 3
    for notebook in found:
        nb = nbformat.read(notebook, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{notebook.name}: {len(tagged)} parameters cells"
        declared = pipeline.declared_parameters(notebook)
        assert declared, f"{notebook.name} has no parameters cell"
        for name, record in declared.items():
            assert name in known, f"{notebook.name}: {name} is not a Settings field"
            assert record["inferred_type_name"] == known[name], (notebook.name, name)
