"""Packaging: the wheel carries schemas/ (methodology and DuckDB SQL) and a normal, non-editable install
runs from a folder outside the checkout (as a Prefect worker would)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT / "src").parts) for p in (ROOT / "src").rglob("__init__.py")}
    assert found | {"sipas_pipeline.schemas"} == listed


@pytest.mark.integration
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path, sample_year, wheel_venv):
    import wheel_env

    names = zipfile.ZipFile(wheel_env.wheel(wheel_venv)).namelist()
    for f in ("sipas_pipeline/schemas/2024/methodology.yaml", "sipas_pipeline/schemas/2024/citizen_form.csv",
              "sipas_pipeline/schemas/duckdb/tables.sql", "sipas_pipeline/schemas/duckdb/views.sql"):
        assert f in names
    # a fresh environment: the wheel alone, the dependencies seen through a .pth on this venv's site-packages
    env_dir, site = wheel_venv / "venv", wheel_env.site_packages(wheel_venv)
    python = env_dir / "bin" / "python"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("SIPAS_SCHEMAS", "PYTHONPATH", "VIRTUAL_ENV")}
    sipas = str(env_dir / "bin" / "sipas")
    where = subprocess.run([str(python), "-c", "import sipas_pipeline, sipas_pipeline.paths as p; "
                            "print(sipas_pipeline.__file__); print(p.schemas_root())"],
                           cwd=outside, env=env, check=True, capture_output=True, text=True).stdout.split()
    assert where[0].startswith(str(site)) and where[1] == str(site / "sipas_pipeline" / "schemas")
    done = subprocess.run([sipas, "methodology", "--year", "2024", "--json"], cwd=outside, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["units"], summary["par"]["subcriteria"], summary["indicators"]["satisfaction"]) == (63, 88, 51)
    raw = outside / "raw"
    shutil.copytree(sample_year, raw)
    done = subprocess.run([sipas, "validate", "--year", "2024", "--raw", str(raw), "--work", str(outside / "work"),
                           "--json"], cwd=outside, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    sources = json.loads(done.stdout)["sources"]
    assert sources["appraisal"]["read"] == 5544
    assert all(c["read"] == c["valid"] + c["quarantined"] > 0 for c in sources.values())
