"""The full-size year end to end: the pipeline's own work stage by stage without Prefect (ingest, validate,
compute, publish: target <= 2.5 s together; the analyst release `sipas run` builds after publishing: target
<= 1.5 s), the whole `sipas run` command on the embedded Prefect server and on an already running one
(PREFECT_API_URL), and where the fixed cost goes, part by part, each measured in a new process as a user's
command meets it: the interpreter, the command's imports, Prefect's imports (the flow engine), the embedded
server's start (its database migrations checked or, once migrated, skipped), and Prefect's flow and task runs
(the same six tasks and four artifacts with nothing in them, on a running server). Ratios of the whole command to
the pipeline's own work (the five stages it runs): targets <= 2x on the embedded server, <= 1.4x on a running one.
`--before DIR` times the command with another checkout's `src/` too (the code before a change), interleaved with
this one's so both meet the same machine; the machine is shared, so the minimum is the figure to read.

usage: python benchmarks/pipeline.py [--scale 1] [--repeat 3] [--command-repeat 3] [--no-command]
                                    [--running-server-only] [--no-report] [--no-parts] [--before DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, cpu_seconds, line, peak_rss_mb, timed, year

from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.publish import publish
from sipas_pipeline.report.build import build
from sipas_pipeline.stages import compute, ingest, read_quarantine, read_results, validate

ROOT = Path(__file__).resolve().parents[1]


def stage_timings(scale: float, repeat: int, cpu: dict[str, float] | None = None) -> dict[str, tuple[float, float, float]]:
    """Median and range of each stage over `repeat` runs, into a scratch DuckDB file; `cpu` gets each stage's CPU
    seconds (user + system, the median of the runs: the figure to compare on a shared machine)."""
    m = load_methodology(2024)
    raw = year(scale)
    work = OUT / f"work_x{scale:g}"
    db = OUT / f"pipeline_x{scale:g}.duckdb"
    db.unlink(missing_ok=True)
    state: dict = {}

    def do_compute() -> None:
        state["summary"] = compute(m, work)

    def do_publish() -> None:
        run = {"run_id": f"bench-{time.perf_counter_ns()}", "started_at": datetime.now(UTC), "parameters": {}}
        publish(db, m, run, read_results(work), read_quarantine(work))

    cpu = {} if cpu is None else cpu

    def measured(name: str, fn) -> tuple[float, float, float]:
        spent: list[float] = []

        def once() -> None:
            c0 = cpu_seconds()
            fn()
            spent.append(cpu_seconds() - c0)
        t = timed(once, repeat)
        cpu[name] = statistics.median(spent)
        return t

    out = {"ingest": measured("ingest", lambda: ingest(m, raw, work)),
           "validate": measured("validate", lambda: validate(m, work)),
           "compute": measured("compute", do_compute)}
    do_publish()  # the file made (the schema applied) once: each timed publish is into a file with runs, as a user's
    out["publish"] = measured("publish", do_publish)
    out["pipeline (all four)"] = tuple(sum(v[i] for v in out.values()) for i in range(3))
    cpu["pipeline (all four)"] = sum(cpu[k] for k in ("ingest", "validate", "compute", "publish"))
    out["release (report.build)"] = measured("release (report.build)", lambda: build(db, 2024, OUT / f"release_x{scale:g}"))
    cpu["pipeline's own work (all five)"] = cpu["pipeline (all four)"] + cpu["release (report.build)"]
    out["pipeline's own work (all five)"] = tuple(out["pipeline (all four)"][i] + out["release (report.build)"][i]
                                                  for i in range(3))
    return out


def command_env(api_url: str | None = None, src: Path | None = None) -> dict[str, str]:
    """The environment of a `sipas run` as a user has it: no PREFECT_API_URL unless `api_url`; `src`: another
    checkout's code first on the path (the code before a change)."""
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def command_once(scale: float, api_url: str | None, extra: tuple[str, ...],
                 src: Path | None = None) -> tuple[float, float, dict]:
    """One `sipas run --json [extra]` in a new process, every stage run (no manifest from the run before):
    (wall seconds, CPU seconds of the command and its embedded server, its JSON)."""
    work = OUT / "command_work"
    shutil.rmtree(work, ignore_errors=True)
    c0 = cpu_seconds(children=True)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sipas_pipeline.cli", "run", "--year", "2024", "--raw", str(year(scale)),
                           "--db", str(OUT / f"command{'-before' if src else ''}.duckdb"), "--work", str(work), "--json",
                           *(["--allow-incomplete"] if scale < 1 else []), *extra],  # a tiny year misses the minimum
                          cwd=ROOT, env=command_env(api_url, src), capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds(children=True) - c0
    if done.returncode != 0:
        raise SystemExit(f"sipas run failed:\n{done.stderr[-2000:]}")
    return seconds, cpu, json.loads(done.stdout.strip().splitlines()[-1])


def command_timings(scale: float, repeat: int, api_url: str | None = None, extra: tuple[str, ...] = (),
                    before: Path | None = None, cpu: dict[str, float] | None = None) -> dict[str, tuple[float, float, float]]:
    """Median and range of the wall time of `sipas run` (this code, and the code in `before` when given, runs
    interleaved); each run's CPU seconds and its fixed cost (its wall time less its own stages' seconds) printed."""
    times: dict[str, list[float]] = {"now": [], "before": []}
    spent: dict[str, list[float]] = {"now": [], "before": []}
    for i in range(repeat):
        for which, src in (("before", before), ("now", None)) if before else (("now", None),):
            seconds, cpu_spent, out = command_once(scale, api_url, extra, src)
            times[which].append(seconds)
            spent[which].append(cpu_spent)
            own = sum(out["timings"].values())
            print(f"  run {i + 1} ({which}): {seconds:.2f} s wall, {cpu_spent:.2f} s CPU (with its embedded server if any); "
                  f"its stages {own:.2f} s, so a fixed cost of {seconds - own:.2f} s; {out['timings']}")
    if cpu is not None:
        cpu.update({k: statistics.median(v) for k, v in spent.items() if v})
    return {k: (statistics.median(v), min(v), max(v)) for k, v in times.items() if v}


PART = r"""
import json, sys, time
t0 = time.perf_counter()
import sipas_pipeline.cli
t1 = time.perf_counter()
from sipas_pipeline.config import prefect_defaults
prefect_defaults()
out = {"command imports (typer, polars, the CLI)": t1 - t0}
if sys.argv[1] == "server":  # as `sipas run` starts it (orchestration/server.py), with nothing beside it
    from sipas_pipeline.orchestration.server import start_embedded_server
    t2 = time.perf_counter()
    start_embedded_server()
    out[sys.argv[2]] = time.perf_counter() - t2
else:
    import sipas_pipeline.orchestration.flow
    t2 = time.perf_counter()
    from sipas_pipeline.orchestration.run import preload
    preload()
    out["Prefect imports (the flow engine)"] = t2 - t1
    out["the stages' imports (run.preload: Pandera, SciPy, the release's writers)"] = time.perf_counter() - t2
print(json.dumps(out))
"""
CHECKED = {"PREFECT_API_DATABASE_MIGRATE_ON_START": "true", "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "true",
           "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "true"}


def fixed_cost_parts(repeat: int, embedded: bool) -> dict[str, float]:
    """The fixed cost by part (the minimum of `repeat` new processes each): the interpreter, the command's imports,
    Prefect's, the stages', the embedded server's start as `sipas run` starts it (its migrations and block
    registration checked, and skipped once done), and the flow's own runs. In `sipas run` the server's start runs
    beside the imports (its own process, the other core): the command waits for the longer of the two."""
    from sipas_pipeline.config import prefect_defaults

    prefect_defaults(ROOT / ".prefect")
    env = command_env()
    runs: dict[str, list[float]] = {}

    def part(args: list[str], extra_env: dict[str, str] | None = None) -> None:
        done = subprocess.run([sys.executable, "-c", PART, *args], cwd=ROOT, env=env | (extra_env or {}),
                              capture_output=True, text=True, check=True)
        for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items():
            runs.setdefault(k, []).append(v)

    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        runs.setdefault("Python interpreter start", []).append(time.perf_counter() - t0)
        part(["imports"])
        if embedded:
            part(["server", "embedded server start, migrations checked"], CHECKED)
            part(["server", "embedded server start, migrations skipped (a second run)"])
    with running_server() as url:
        for _ in range(repeat):
            runs.setdefault("Prefect flow + 6 task runs + 4 artifacts (empty)", []).append(empty_flow_seconds(url))
    return {k: min(v) for k, v in runs.items()}


def empty_flow_seconds(api_url: str) -> float:
    """The flow's shape with nothing in it, in a new process on the server at `api_url`, called as `sipas run` calls
    its flow (no flow-run heartbeats): seconds of the call."""
    code = r"""
import time
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

@task(cache_policy=NO_CACHE)
def stage(i: int) -> int:
    return i

@task(cache_policy=NO_CACHE)
def report() -> None:
    create_markdown_artifact("# empty", key="bench-empty-validation")
    create_table_artifact([{"a": 1}], key="bench-empty-sipas")
    create_table_artifact([{"a": 1}], key="bench-empty-par")

@flow
def empty() -> None:
    for i in range(5):
        stage(i)
    report()
    create_markdown_artifact("# release", key="bench-empty-release")

from sipas_pipeline.orchestration.server import without_heartbeats

with without_heartbeats():  # as `sipas run` calls its flow (no heartbeat thread holding the run's end)
    empty()  # the first call in a process imports and connects: timed below is the second, as a run meets it
    t0 = time.perf_counter()
    empty()
print(time.perf_counter() - t0)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=command_env(api_url), capture_output=True,
                          text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--command-repeat", type=int, default=3)
    ap.add_argument("--no-command", action="store_true", help="skip the `sipas run` timing")
    ap.add_argument("--running-server-only", action="store_true",
                    help="time `sipas run` on the running server only (the smoke test: the tests start the embedded "
                         "server elsewhere)")
    ap.add_argument("--no-report", action="store_true", help="time `sipas run --no-report` (the smoke test)")
    ap.add_argument("--no-parts", action="store_true", help="skip the fixed cost's breakdown")
    ap.add_argument("--before", type=Path, help="another checkout's src/ (the code before): its `sipas run` timed too")
    args = ap.parse_args()
    print(f"pipeline, scale {args.scale:g}, {args.repeat} runs per stage (no Prefect)")
    stage_cpu: dict[str, float] = {}
    stages = stage_timings(args.scale, args.repeat, stage_cpu)
    targets = {"pipeline (all four)": "target <= 2.5 s at scale 1", "release (report.build)": "target <= 1.5 s at scale 1"}
    for stage, t in stages.items():
        print(line(stage, t, targets.get(stage, "")) + f"  CPU {stage_cpu[stage]:.2f} s")
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    four = stages["pipeline (all four)"][1]  # what `sipas run --no-report` runs (minimum of the runs, as below)
    own = four if args.no_report else stages["pipeline's own work (all five)"][1]
    own_cpu = stage_cpu["pipeline (all four)" if args.no_report else "pipeline's own work (all five)"]
    if not args.no_parts:
        embedded = not args.running_server_only
        print(f"the fixed cost by part: minimum of {args.repeat} new processes each")
        parts = fixed_cost_parts(args.repeat, embedded)
        for name, seconds in parts.items():
            print(f"  {name:<74} {seconds:6.2f} s")
    if args.no_command:
        return
    extra = ("--no-report",) if args.no_report else ()
    ratios = []
    if not args.running_server_only:
        print(f"sipas run --json, embedded Prefect, {args.command_repeat} runs")
        cpu: dict[str, float] = {}
        embedded_t = command_timings(args.scale, args.command_repeat, None, extra, args.before, cpu)
        for which, t in embedded_t.items():
            print(line(f"whole command ({which})", t, "") + f"  CPU {cpu[which]:.2f} s")
            ratios.append(f"embedded server ({which}) {t[1] / own:.2f}x (target <= 2x; {t[1] / four:.2f}x the four "
                          f"stages alone; CPU {cpu[which] / own_cpu:.2f}x the stages' CPU)")
        child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS of a `sipas run` process {child_mb:.0f} MB (the embedded Prefect server runs in its own process)")
    print(f"sipas run --json, on a running Prefect server (PREFECT_API_URL), {args.command_repeat} runs")
    with running_server() as url:
        cpu = {}
        running = command_timings(args.scale, args.command_repeat, url, extra, args.before, cpu)
    for which, t in running.items():
        print(line(f"whole command, running server ({which})", t, "") + f"  CPU {cpu[which]:.2f} s (the command's)")
        ratios.append(f"running server ({which}) {t[1] / own:.2f}x (target <= 1.4x; {t[1] / four:.2f}x the four stages "
                      f"alone; CPU {cpu[which] / own_cpu:.2f}x the stages' CPU)")
    print(f"  ratio of the fastest whole command to the pipeline's own {own:.2f} s (fastest stages): " + "; ".join(ratios))
    print("  (target <= 2x embedded, <= 1.4x on a running server)")


@contextlib.contextmanager
def running_server():
    """The Prefect server at PREFECT_API_URL when one is set (run_all --quick shares one), else one started
    here, as a user's `prefect server start` would be; yields its API URL."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from sipas_pipeline.config import prefect_defaults

    prefect_defaults(ROOT / ".prefect")
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    try:
        yield server.api_url
    finally:
        server.stop()


if __name__ == "__main__":
    main()
