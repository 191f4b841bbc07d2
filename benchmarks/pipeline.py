"""The full-size year end to end: the pipeline's own work stage by stage without Prefect
(ingest, validate, compute, publish: target under 3 s together; then the analyst release `sipas run` builds
after publishing) and the whole `sipas run` command on the embedded Prefect server (target: under 20 s),
then on an already running Prefect server (PREFECT_API_URL). The fixed cost (imports, the server, Prefect's
task runs) is shown as ratios of the whole command to the pipeline's own work, the five stages it runs:
targets <= 3.5x on the embedded server, <= 2x on a running one.

usage: python benchmarks/pipeline.py [--scale 1] [--repeat 3] [--command-repeat 3] [--no-command]
                                    [--running-server-only] [--no-report]
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

from common import OUT, line, peak_rss_mb, timed, year

from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.publish import publish
from sipas_pipeline.report.build import build
from sipas_pipeline.stages import compute, ingest, read_quarantine, read_results, validate

ROOT = Path(__file__).resolve().parents[1]


def stage_timings(scale: float, repeat: int) -> dict[str, tuple[float, float, float]]:
    """Median and range of each stage over `repeat` runs, into a scratch DuckDB file."""
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

    out = {"ingest": timed(lambda: ingest(m, raw, work), repeat),
           "validate": timed(lambda: validate(m, work), repeat),
           "compute": timed(do_compute, repeat),
           "publish": timed(do_publish, repeat)}
    out["pipeline (all four)"] = tuple(sum(v[i] for v in out.values()) for i in range(3))
    out["release (report.build)"] = timed(lambda: build(db, 2024, OUT / f"release_x{scale:g}"), repeat)
    out["pipeline's own work (all five)"] = tuple(out["pipeline (all four)"][i] + out["release (report.build)"][i]
                                                  for i in range(3))
    return out


def command_timings(scale: float, repeat: int, api_url: str | None = None,
                    extra: tuple[str, ...] = ()) -> tuple[float, float, float]:
    """Wall time of `sipas run --json [extra]` as a user runs it (new process): on the embedded Prefect server, or
    on the server at `api_url`."""
    raw = year(scale)
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    times = []
    for i in range(repeat):
        work = OUT / "command_work"
        shutil.rmtree(work, ignore_errors=True)  # every stage runs: no stage manifest from the run before
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "sipas_pipeline.cli", "run", "--year", "2024", "--raw", str(raw),
                               "--db", str(OUT / "command.duckdb"), "--work", str(work), "--json",
                               *(["--allow-incomplete"] if scale < 1 else []), *extra],  # a tiny year misses the minimum
                              cwd=ROOT, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"sipas run failed:\n{done.stderr[-2000:]}")
        if i == 0:
            print("  first run's own stage timings:", json.loads(done.stdout.strip().splitlines()[-1])["timings"])
    return statistics.median(times), min(times), max(times)


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
    args = ap.parse_args()
    print(f"pipeline, scale {args.scale:g}, {args.repeat} runs per stage (no Prefect)")
    stages = stage_timings(args.scale, args.repeat)
    for stage, t in stages.items():
        print(line(stage, t, "target < 3 s at scale 1" if stage == "pipeline (all four)" else ""))
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    if not args.no_command:
        four = stages["pipeline (all four)"][0]  # what `sipas run --no-report` runs
        own = four if args.no_report else stages["pipeline's own work (all five)"][0]
        extra = ("--no-report",) if args.no_report else ()
        ratios = []
        if not args.running_server_only:
            print(f"sipas run --json, embedded Prefect, {args.command_repeat} runs")
            embedded = command_timings(args.scale, args.command_repeat, None, extra)
            print(line("whole command", embedded, "target < 20 s at scale 1"))
            child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"peak RSS of a `sipas run` process {child_mb:.0f} MB (the embedded Prefect server runs in its own "
                  "process)")
            ratios.append(f"embedded server {embedded[0] / own:.2f}x (target <= 3.5x; {embedded[0] / four:.2f}x the four "
                          "stages alone)")
        print(f"sipas run --json, on a running Prefect server (PREFECT_API_URL), {args.command_repeat} runs")
        with running_server() as url:
            running = command_timings(args.scale, args.command_repeat, url, extra)
        print(line("whole command, running server", running, ""))
        ratios.append(f"running server {running[0] / own:.2f}x (target <= 2x; {running[0] / four:.2f}x the four stages "
                      "alone)")
        print(f"  ratio to the pipeline's own {own:.2f} s: {', '.join(ratios)}")


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
