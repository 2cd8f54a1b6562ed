"""Project hygiene: environment.yml agrees with pyproject.toml; committed notebooks are clean."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import yaml

from nba import config

#: conda-forge splits the extra `dask[dataframe,distributed]` into two packages.
EXTRAS = {"dask": ["dask", "distributed"]}


def _split(requirement: str) -> tuple[str, str]:
    m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", requirement.strip())
    assert m, requirement
    return m.group(1).lower(), m.group(3).replace(" ", "")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((config.ROOT / "pyproject.toml").read_text())["project"]
    out = {}
    for req in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name, spec = _split(req)
        for conda_name in EXTRAS.get(name, [name]):
            out[conda_name] = spec
    return out


def _environment_requirements() -> tuple[dict[str, str], list]:
    env = yaml.safe_load((config.ROOT / "environment.yml").read_text())
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
            continue
        name, spec = _split(dep.replace("=", "==", 1) if re.match(r"^python=", dep) else dep)
        conda[name] = spec
    return conda, pip


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    conda, pip = _environment_requirements()
    python = conda.pop("python")
    conda.pop("pip")
    assert conda == _pyproject_requirements()
    assert python == "==3.11" and pip == ["-e ."]


def test_committed_notebooks_carry_no_outputs():
    listed = subprocess.run(
        ["git", "ls-files", "*.ipynb"], cwd=config.ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "app.ipynb" in listed
    dirty = []
    for name in listed:
        nb = json.loads((config.ROOT / name).read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
                dirty.append(name)
    assert not dirty, f"strip outputs (nbstripout) from: {sorted(set(dirty))}"
