"""Live fieldwork: the pipeline's own seconds per batch of 500 forms early, midway and at the end of a full-size
season (target <= 1 s each, flat), and the whole season's replay (about 1,000 batches of a realistic mix of sizes)
through the deployment `fieldwork` on a running Prefect server (target <= 10 minutes on 2 cores).

Per batch, as the flow does it (`live.take_batch`): `take` (read, validate with the annual rules, add its
statistics) and `page` (the page rewritten: status, progress, batches from the tallies and the ledger, the SIPAS of
the provinces the batch touched recomputed from their sums), in this process, no Prefect; and, once per `--run`
batches (a flow run takes every batch waiting), `refresh` (every indicator, the SIPAS tree and the PAR survey
points from the season's sums, the fieldwork_* tables written into the next DuckDB file, swapped in). Wall and CPU
seconds (user + system of this process, `time.process_time`). The replay: a Prefect server (a temporary SQLite
database), `sipas fieldwork serve --interval 5` in its own process, the batches copied into the inbox in arrival
order at `--pace` batches per second; the clock runs from the first batch copied to the last one taken and
refreshed; the CPU seconds of the server and of the serving process with its flow runs (their rusage).

usage: python benchmarks/fieldwork.py [--scale 1] [--batch 500] [--run 10] [--pace 4] [--no-replay] [--no-per-batch]
                                     [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
from common import OUT, cpu_seconds, year

from sipas_pipeline.fieldwork.inbox import pending, take
from sipas_pipeline.fieldwork.live import page_after, refresh
from sipas_pipeline.fieldwork.season import Season
from sipas_pipeline.fieldwork.split import replay, split_raw
from sipas_pipeline.localhost import answers, free_port, stop_group
from sipas_pipeline.methodology import load_methodology

ROOT = Path(__file__).resolve().parents[1]


def per_batch(scale: float, size: int, run: int, limit: int | None = None) -> list[dict]:
    """Every batch of an exact-size season taken and its page rewritten one by one, the tables refreshed after every
    `run` batches: seconds of each step."""
    m = load_methodology(2024)
    base = OUT / f"fieldwork_{size}_x{scale:g}"
    if not (base / "split" / "schedule.csv").is_file():
        shutil.rmtree(base, ignore_errors=True)
        split_raw(m, year(scale), base / "split", scale=scale, mean_forms=size, exact=True)
    for part in ("season", "inbox", "db"):
        shutil.rmtree(base / part, ignore_errors=True)
    season = Season.open(base / "season", target_scale=scale)
    (base / "db").mkdir()
    replay(base / "split", base / "inbox")
    rows, entries = [], []
    todo = pending(m, season, base / "inbox")[:limit]
    for k, (source, path) in enumerate(todo, 1):
        t0, c0 = time.perf_counter(), time.process_time()
        entry = take(m, season, source, path)
        t1, c1 = time.perf_counter(), time.process_time()
        page_after(m, season, entry, season.page_path)  # what live.take_batch does after the take
        t2, c2 = time.perf_counter(), time.process_time()
        row = {"k": k, "source": source, "read": entry["read"], "take": t1 - t0, "page": t2 - t1, "cpu_take": c1 - c0,
               "cpu_page": c2 - c1, "refresh": None}
        entries.append(entry)
        if k % run == 0 or k == len(todo):
            refresh(m, season, base / "db" / "sipas.duckdb", season.page_path, entries)
            row |= {"refresh": time.perf_counter() - t2, "cpu_refresh": time.process_time() - c2}
            entries = []
        rows.append(row)
    return rows


def print_part(label: str, part: list[dict]) -> None:
    """One line: medians of a few batches' seconds (wall and CPU, take and page)."""
    med = statistics.median
    print(f"    {label:<7} batches {part[0]['k']:>4}-{part[-1]['k']:<4} take {med(r['take'] for r in part):6.3f} s  "
          f"page {med(r['page'] for r in part):6.3f} s  per batch {med(r['take'] + r['page'] for r in part):6.3f} s, "
          f"CPU {med(r['cpu_take'] + r['cpu_page'] for r in part):6.3f} s (take {med(r['cpu_take'] for r in part):.3f}, "
          f"page {med(r['cpu_page'] for r in part):.3f}; median of {len(part)})  target <= 1 s")


def report_per_batch(rows: list[dict], size: int, run: int) -> None:
    full = [r for r in rows[1:] if r["read"] == size]  # the first batch: imports, a new database file
    print(f"fieldwork, one batch at a time: {len(rows)} batches ({len(full) + (rows[0]['read'] == size)} of exactly {size} "
          f"forms), {sum(r['read'] for r in rows):,} rows; the tables refreshed every {run} batches")
    med = statistics.median
    for source in ("citizen", "official"):  # a citizens' batch costs more than an officials' of the same size
        mine = [r for r in full if r["source"] == source]
        n = len(mine)
        if not n:
            continue
        print(f"  {source}s' batches ({n} of {size} forms), early, midway and at the end of the season:")
        thirds = (("early", mine[:5]), ("midway", mine[max(n // 2 - 2, 0):n // 2 + 3]), ("end", mine[-5:]))
        for label, part in thirds if n >= 15 else (("all", mine),):
            print_part(label, part)
    runs = [r for r in rows[1:] if r["refresh"] is not None]
    for label, part in (("early", runs[:3]), ("end", runs[-3:])):
        if part:
            print(f"  refresh once per run ({label}, after batch {part[0]['k']}-{part[-1]['k']}): "
                  f"{med(r['refresh'] for r in part):6.3f} s, CPU {med(r['cpu_refresh'] for r in part):6.3f} s "
                  f"(every table and the DuckDB swap; {med(r['refresh'] for r in part) / run:.3f} s per batch of a run "
                  f"of {run})")
    print(f"  first batch (imports, new database file): {rows[0]['take'] + rows[0]['page']:.3f} s; "
          f"load average {os.getloadavg()[0]:.1f} at the end")


def replay_season(scale: float, pace: float) -> None:
    """The whole season through the deployment on a running server."""
    m = load_methodology(2024)
    base = OUT / f"fieldwork_season_x{scale:g}"
    if not (base / "split" / "schedule.csv").is_file():
        shutil.rmtree(base, ignore_errors=True)
        split_raw(m, year(scale), base / "split", scale=scale)
    for part in ("season", "inbox", "db"):
        shutil.rmtree(base / part, ignore_errors=True)
    (base / "db").mkdir()
    schedule = pl.read_csv(base / "split" / "schedule.csv")
    tmp = Path(tempfile.mkdtemp(prefix="sipas-fieldwork-bench-"))
    env = dict(os.environ, PREFECT_HOME=str(tmp / "home"), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    started = []
    try:
        if "PREFECT_API_URL" not in os.environ:
            url = f"http://127.0.0.1:{free_port()}/api"
            server_env = env | {"PREFECT_UI_ENABLED": "0", "PREFECT_SERVER_DATABASE_CONNECTION_URL":
                                f"sqlite+aiosqlite:///{tmp / 'prefect.db'}"}
            port = url.rsplit(":", 1)[1].split("/")[0]
            started.append(subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
                                             "--host", "127.0.0.1", "--port", port], env=server_env, cwd=tmp,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
            for _ in range(240):
                if answers(url):
                    break
                time.sleep(0.5)
            else:
                raise SystemExit("the Prefect server did not start")
            env["PREFECT_API_URL"] = url
        sipas = str(Path(sys.executable).with_name("sipas"))
        started.append(subprocess.Popen([sipas, "fieldwork", "serve", "--year", "2024", "--season", str(base / "season"),
                                         "--inbox", str(base / "inbox"), "--db", str(base / "db" / "sipas.duckdb"),
                                         "--interval", "5"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                        stderr=open(tmp / "serve.log", "wb"), start_new_session=True))  # noqa: SIM115
        time.sleep(8)  # the deployment registered, its schedule running
        t0 = time.perf_counter()
        for k in range(schedule.height):
            replay(base / "split", base / "inbox", start=k, upto=k + 1)
            time.sleep(1 / pace)
        dropped = time.perf_counter() - t0
        ledger = base / "season" / "batches.json"
        db = base / "db" / "sipas.duckdb"  # the tables refreshed after the run's last batch (the page, after each)
        while True:
            entries = json.loads(ledger.read_text(encoding="utf-8")) if ledger.is_file() else []
            if len(entries) == schedule.height and db.is_file() and db.stat().st_mtime > ledger.stat().st_mtime:
                break
            if time.perf_counter() - t0 > 3600:
                raise SystemExit(f"not done after an hour: {len(entries)} of {schedule.height} batches")
            time.sleep(1)
        total = time.perf_counter() - t0
        cpu = {}
        for name, proc in zip(("serve (with its flow runs)", "server"), reversed(started), strict=False):
            before = cpu_seconds(children=True)
            stop_group(proc, 20)
            cpu[name] = cpu_seconds(children=True) - before
        runs = sorted({line.split("Flow run '")[1].split("'")[0] for line in (tmp / "serve.log").read_text(
            encoding="utf-8", errors="replace").splitlines() if "Flow run '" in line})
        print(f"fieldwork season replay through the deployment (running server, interval 5 s): {schedule.height} batches, "
              f"{schedule['rows'].sum():,} rows, arriving over {dropped:.0f} s; the last taken and refreshed after "
              f"{total:.0f} s ({total / 60:.1f} min)  target <= 10 min; {len(runs)} flow runs; CPU "
              + ", ".join(f"{k} {v:.0f} s" for k, v in cpu.items()) + f"; load average {os.getloadavg()[0]:.1f}")
    finally:
        for p in reversed(started):
            stop_group(p, 20)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--run", type=int, default=10, help="batches per flow run (the tables refreshed once per run)")
    parser.add_argument("--pace", type=float, default=4.0, help="batches copied into the inbox per second")
    parser.add_argument("--no-replay", action="store_true")
    parser.add_argument("--no-per-batch", action="store_true")
    parser.add_argument("--limit", type=int, help="take only the first N batches (the smoke test)")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, scale {args.scale:g}, load average {os.getloadavg()[0]:.1f} at the start")
    if not args.no_per_batch:
        report_per_batch(per_batch(args.scale, args.batch, args.run, args.limit), args.batch, args.run)
    if not args.no_replay:
        replay_season(args.scale, args.pace)


if __name__ == "__main__":
    main()
