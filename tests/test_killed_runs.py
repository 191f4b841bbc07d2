"""A killed `sipas run` leaves nothing running: SIGTERM and SIGINT stop the embedded Prefect server with
the command, whether it is still starting or serving the run; after SIGKILL (no handler runs) the server's PID
record, written the moment the server's process exists, lets the next run stop it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import kept_data
import psutil
import pytest
from session_shared import answers

ROOT = Path(__file__).resolve().parents[1]
SIPAS = Path(sys.executable).with_name("sipas")


@pytest.fixture
def prefect_home(tmp_path, prefect_harness, monkeypatch) -> Path:
    """A Prefect home of the test's own whose database is a copy of the kept migrated one (kept_data: what the
    session's server started from, without any other test's runs; the embedded server starts as it does on a
    user's second run); this process sees it too."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    kept_data.migrated_prefect_database(home / "prefect.db")
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{home / 'prefect.db'}")
    return home


def start_run(home: Path, tmp_path: Path, sample_year: Path, name: str, serving: bool) -> tuple[subprocess.Popen, dict]:
    """`sipas run` on the sample year as a real process with its own embedded server; wait until the
    server's process is recorded (and, if `serving`, until it answers); (the process, its server record)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.Popen([str(SIPAS), "run", "--year", "2024", "--raw", str(sample_year), "--db",
                             str(tmp_path / f"{name}.duckdb"), "--work", str(tmp_path / f"work-{name}")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    record = home / "sipas-servers" / f"{proc.pid}.json"
    deadline = time.monotonic() + 240
    while not record.is_file():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the embedded server never started"
        time.sleep(0.1)
    time.sleep(0.2)  # the record is written in one call; let it land
    server = json.loads(record.read_text())
    while serving and not answers(server["url"]):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the embedded server never answered"
        time.sleep(0.1)
    return proc, server


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


@pytest.mark.integration
@pytest.mark.parametrize(("sig", "serving"), [(signal.SIGTERM, True), (signal.SIGINT, False)])
def test_signal_stops_the_embedded_server(prefect_home, tmp_path, sample_year, sig, serving):
    proc, record = start_run(prefect_home, tmp_path, sample_year, sig.name, serving)
    assert alive(record["server"])
    assert answers(record["url"]) or not serving  # serving: the run is under way; else the server is starting
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert gone_within(record["server"], 15)
    assert not (prefect_home / "sipas-servers" / f"{proc.pid}.json").exists()
    assert "Traceback" not in err
    assert proc.returncode != 0  # stopped mid-run: one line, exit 128 + signal (then Prefect's "Stopping …")
    expected = {signal.SIGTERM: {(143, "error: stopped by SIGTERM")},
                signal.SIGINT: {(130, "error: stopped by SIGINT")}}[sig]
    assert {(proc.returncode, line) for line in err.splitlines()} & expected


@pytest.mark.integration
def test_sigkill_orphan_is_stopped_by_the_next_run(prefect_home, tmp_path, sample_year):
    from sipas_pipeline.orchestration import stop_orphan_servers

    proc, record = start_run(prefect_home, tmp_path, sample_year, "kill", serving=False)  # killed while its server starts
    proc.kill()
    proc.wait(timeout=30)
    assert alive(record["server"])  # SIGKILL runs no handler: the server is an orphan now
    assert stop_orphan_servers() == [record["server"]]  # what the next `sipas run` does first
    assert gone_within(record["server"], 10)
    assert not (prefect_home / "sipas-servers" / f"{proc.pid}.json").exists()
