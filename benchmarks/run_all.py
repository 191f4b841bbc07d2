"""Run every benchmark and write benchmarks/RESULTS.md with the machine it ran on: `make bench`.

usage: python benchmarks/run_all.py [--quick] [--out benchmarks/RESULTS.md]
  --quick runs each script at a tiny scale, in this process (what the smoke test does); the figures are then
  meaningless.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import runpy
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from common import cpu_seconds

HERE = Path(__file__).resolve().parent

FULL = [
    ("pipeline.py", ["--repeat", "5", "--command-repeat", "3"],
     "The full-size year: each stage without Prefect, and the whole `sipas run` on the embedded Prefect"),
    ("ingest_validate.py", ["--repeat", "5"], "Ingest + validate of the full-size year"),
    ("compute.py", ["--repeat", "3", "--scales", "1", "10", "100"],
     "The whole compute stage (indicators, SIPAS tree, PAR, ranks) on the year replicated 1x, 10x, 100x"),
    ("satisfaction.py", ["--repeat", "3", "--scales", "1", "10", "100"],
     "51 satisfaction indicators per province: project Polars vs plain pandas vs plain DuckDB SQL"),
    ("rerun.py", ["--repeat", "3"], "A re-run after a one-province correction beside a full run"),
    ("generator.py", ["--scale", "100"], "The synthetic-year generator at 100x"),
    ("report.py", ["--repeat", "3"], "`sipas report` (HTML report, PNGs, workbook, CSVs) on the full-size year"),
    ("coverage.py", ["--years", "200"],
     "Coverage of the 95% intervals and the 90% rank confidence sets on simulated years with place and respondent effects"),
    ("memory.py", ["--sizes-mb", "100", "500", "1000"],
     "Peak memory of ingest + validate against the size of one citizens' export (generated, never committed)"),
    ("year2025.py", ["--repeat", "5"],
     "Survey year 2025 on the 34 units: its compute stage and 2024 re-estimated on the 34 units (comparable series)"),
    ("fieldwork.py", [],
     "Live fieldwork: seconds per 500-form batch early, midway and at the end; the season through the deployment"),
]
QUICK = {  # the smoke test: the smallest run of each script that goes through all of its code
    "pipeline.py": ["--scale", "0.02", "--repeat", "1", "--command-repeat", "1", "--running-server-only", "--no-report"],
    "ingest_validate.py": ["--scale", "0.02", "--repeat", "1"],
    "compute.py": ["--base-scale", "0.02", "--scales", "2", "--repeat", "1", "--same-process"],
    "satisfaction.py": ["--base-scale", "0.02", "--scales", "1", "--repeat", "1", "--same-process"],
    "rerun.py": ["--scale", "0.02", "--repeat", "1"],
    "generator.py": ["--scale", "0.01"],
    "report.py": ["--scale", "0.02", "--repeat", "1"],
    "coverage.py": ["--years", "2"],
    "year2025.py": ["--scale", "0.02", "--repeat", "1"],
    "memory.py": ["--sizes-mb", "0.2", "--limit-gb", "4"],
    "fieldwork.py": ["--scale", "0.02", "--batch", "5", "--limit", "8", "--no-replay"],
}
PACKAGES = ("polars", "pyarrow", "pandera", "prefect", "duckdb", "pandas")


def machine() -> list[str]:
    """Cores, memory, OS, Python and package versions."""
    mem = next((int(line.split()[1]) / 1024 / 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), float("nan")) if Path("/proc/meminfo").is_file() else float("nan")
    return [f"- cores: {os.cpu_count()}; memory: {mem:.1f} GB; {platform.platform()}",
            f"- Python {platform.python_version()}; " + ", ".join(f"{p} {version(p)}" for p in PACKAGES),
            f"- run at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args()
    lines = ["# Benchmark results", "", "Regenerate with `make bench` (= `python benchmarks/run_all.py`). "
             "Each figure is the median and range of several runs; peak memory is the resident set.", "",
             "## Machine", "", *machine(), ""]
    if args.quick:
        lines += ["**Quick mode: tiny scales, the figures mean nothing.**", ""]
    with shared_server(args.quick) as env:
        lines += run_scripts(args.quick, env)
    lines += kept_sections(HERE / "RESULTS.md")
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")


@contextlib.contextmanager
def shared_server(quick: bool):
    """In quick mode (the smoke test) one Prefect server for every script (PREFECT_API_URL in their environment),
    so that only the embedded-server measurement starts another; a full run measures each script as it is."""
    env = dict(os.environ)
    if not quick or env.get("PREFECT_API_URL"):
        yield env
        return
    from sipas_pipeline.config import prefect_defaults

    prefect_defaults(HERE.parent / ".prefect")
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    try:
        yield dict(os.environ, PREFECT_API_URL=server.api_url)
    finally:
        server.stop()


def run_scripts(quick: bool, env: dict[str, str]) -> list[str]:
    """Run each benchmark script; its output as a RESULTS.md section."""
    lines = []
    for script, full_args, title in FULL:
        argv = QUICK[script] if quick else full_args
        print(f"== {script} {' '.join(argv)}", flush=True)
        t0, c0 = time.perf_counter(), cpu_seconds() + cpu_seconds(children=True)
        output = in_this_process(script, argv, env) if quick else in_its_own_process(script, argv, env)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() + cpu_seconds(children=True) - c0
        print(output, flush=True)
        lines += [f"## {title}", "", f"`python benchmarks/{script} {' '.join(argv)}` ({wall:.0f} s, {cpu:.0f} s CPU)",
                  "", "```", output.rstrip(), "```", ""]
    return lines


def in_its_own_process(script: str, argv: list[str], env: dict[str, str]) -> str:
    """What the script prints, run as a user runs it (its memory figures are its own)."""
    done = subprocess.run([sys.executable, str(HERE / script), *argv], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"benchmark {script} failed (exit {done.returncode})")
    return done.stdout


def in_this_process(script: str, argv: list[str], env: dict[str, str]) -> str:
    """What the script prints, run in this process (quick mode: no interpreter start and imports per script)."""
    buffer = io.StringIO()
    saved = sys.argv, dict(os.environ)
    sys.argv = [str(HERE / script), *argv]
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(buffer):
            runpy.run_path(str(HERE / script), run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise SystemExit(f"benchmark {script} failed: {exc.code}") from exc
    finally:
        sys.argv = saved[0]
        os.environ.clear()
        os.environ.update(saved[1])
    return buffer.getvalue()


KEPT = "## Test suite"  # measured by hand (pytest cannot time itself from inside its own smoke test): carried over


def kept_sections(path: Path) -> list[str]:
    """The hand-measured sections of the current RESULTS.md (titles starting with KEPT), to write again."""
    if not path.is_file():
        return []
    out, keep = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            keep = line.startswith(KEPT)
        if keep:
            out.append(line)
    return [*out, ""] if out else []


if __name__ == "__main__":
    main()
