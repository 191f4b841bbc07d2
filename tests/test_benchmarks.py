"""Smoke test: every benchmark script runs at a tiny scale (in one process, `run_all.py --quick`) and RESULTS.md is
written (no timing asserts), on the session's Prefect test server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kept_data
import pytest

pytestmark = pytest.mark.integration  # the benchmark scripts run in a subprocess, with Prefect servers

ROOT = Path(__file__).resolve().parents[1]


def tiny_years(out: Path) -> None:
    """The scripts' tiny synthetic years (benchmarks/common.year: made once under their output folder), kept from
    an earlier session while the code is the same (kept_data), linked in (the scripts only read them)."""
    out.mkdir()
    for survey_year in (2024, 2025):
        (out / f"raw_{survey_year}_x0.02").symlink_to(kept_data.tiny_year(survey_year), target_is_directory=True)


def test_every_benchmark_runs_at_a_tiny_scale(tmp_path, prefect_harness):
    # the session's Prefect test server serves every script: no other server is started
    tiny_years(tmp_path / "out")
    env = dict(os.environ, SIPAS_BENCH_OUT=str(tmp_path / "out"), PREFECT_API_URL=prefect_harness)
    out = tmp_path / "RESULTS.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    for script in ("pipeline.py", "ingest_validate.py", "compute.py", "satisfaction.py", "rerun.py", "generator.py",
                   "coverage.py", "report.py", "year2025.py", "memory.py", "fieldwork.py"):
        assert f"python benchmarks/{script}" in text
    assert "same numbers in all three" in text and "whole command" in text and "re-run / full pipeline time" in text
    assert "whole command, running server" in text and "target <= 2x" in text
    assert "Peak memory of ingest + validate of one citizens' export" in text and "peak RSS" in text
    assert "95% interval, SIPAS" in text and "90% marginal rank set" in text and "top-five set holds" in text
    assert "cores:" in text and "polars" in text
    assert "fieldwork, one batch at a time" in text
