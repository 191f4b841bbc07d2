"""The embedded Prefect server's lifecycle: the one module that knows how Prefect starts its temporary server.

Prefect starts its temporary server (`prefect.server.api.server.SubprocessASGIServer`) on first use: a uvicorn child
process serving `prefect.server.api.server:create_app` with three environment flags (no UI, the ephemeral server's
services only), stopped from an atexit hook. Importing that class costs the command ~2 s of Prefect's server code
(the server imports it again in its own process), and Prefect would only start it after the flow's imports. So
`sipas run` starts the same process itself, first, with uvicorn's same arguments and flags (`SERVER_FLAGS`,
`server_command`; `tests/test_prefect_private.py` checks them against the pinned Prefect's own; `server_process`
runs uvicorn's command line with Prefect's server code imported with the garbage collector paused), before it imports
Prefect at all: the server boots on one core while the command imports Prefect's engine and the stages' modules on
the other. `wait()` then points Prefect at it with PREFECT_API_URL (Prefect's public setting) unless the user's
settings name a server. Its PID is recorded under PREFECT_HOME the moment the process exists; the CLI turns
SIGTERM / SIGHUP into a normal exit (so the atexit stop runs; SIGINT already does), and a run killed with SIGKILL,
which runs no hook, leaves a record the next `sipas run` finds and acts on. The server gets Prefect's settings for
a one-shot run (`ONE_SHOT`): no automations, no event persistence, no UI streams, and, once this Prefect has
migrated this database, no migration check and no block registration. No private Prefect name is used."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import psutil

from sipas_pipeline.config import migrated_already, remember_migrated
from sipas_pipeline.localhost import answers, free_port, warm_up
from sipas_pipeline.locking import pid_lock

# as Prefect starts its temporary server (SubprocessASGIServer): no UI, the ephemeral server's services only
SERVER_FLAGS = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
# what a one-shot run's server does without, each unless the user has set it: automations (reactive triggers and
# their actions: the embedded server has none), persisting events (the run's flow and task runs, logs and artifacts
# are recorded all the same), the event and log streams the UI subscribes to (there is no UI)
ONE_SHOT = {"PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false", "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
            "PREFECT_SERVER_EVENTS_STREAM_OUT_ENABLED": "false", "PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED": "false"}
# once this Prefect has migrated this very database (config.migrated_already): no migration check (about half of
# the start) and no block-type registration (done by that first start); unless the user has set them
MIGRATED = {"PREFECT_API_DATABASE_MIGRATE_ON_START": "false", "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
            "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}
# a flow run's heartbeats: an event every 180 s, for an automation that marks a run whose heartbeats stopped as crashed;
# their thread, asleep in 1 s steps, holds the end of every flow run for up to a second
HEARTBEAT_SETTINGS = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")
PORT_IN_USE = 3  # uvicorn's exit code when it cannot bind its port (Prefect then retries on another one)


def server_records() -> Path:
    """Folder of the records of temporary Prefect servers started by `sipas run` (one JSON file per run)."""
    return Path(os.environ["PREFECT_HOME"]) / "sipas-servers"


def same_process(pid: int, started: float) -> psutil.Process | None:
    """The live process `pid` if it is the one that started at `started` (not a reused PID), else None."""
    try:
        proc = psutil.Process(pid)
        return proc if abs(proc.create_time() - started) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def stop_orphan_servers() -> list[int]:
    """Stop the temporary Prefect servers whose `sipas run` is gone (killed); return their PIDs."""
    stopped = []
    for record in sorted(server_records().glob("*.json")) if server_records().is_dir() else []:
        try:
            r = json.loads(record.read_text())
            owner, owner_started, pid, started = r["owner"], r["owner_started"], r["server"], r["server_started"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a record of ours
        if same_process(owner, owner_started):
            continue  # its run is still going
        server = same_process(pid, started)
        if server is not None:
            server.terminate()
            try:
                server.wait(5)
            except psutil.TimeoutExpired:
                server.kill()
            stopped.append(pid)
        record.unlink(missing_ok=True)
    return stopped


def server_command(port: int) -> list[str]:
    """The temporary server's command line: uvicorn with the arguments Prefect's SubprocessASGIServer gives it, run
    by `server_process` (uvicorn's own command line, Prefect's server code imported with the collector paused)."""
    spec = find_spec("prefect")  # Prefect's location without importing it
    app_dir = Path(spec.origin).parent.parent if spec and spec.origin else Path(sys.prefix)
    return [sys.executable, "-m", "sipas_pipeline.orchestration.server_process",
            "--app-dir", str(app_dir), "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"]


def server_environment() -> dict[str, str]:
    """The server's environment: this one, Prefect's flags for its temporary server, and the one-shot settings
    (`ONE_SHOT`, and `MIGRATED` once this Prefect has migrated this database), each unless the user set it."""
    defaults = ONE_SHOT | (MIGRATED if migrated_already() else {})
    return {k: v for k, v in defaults.items() if k not in os.environ} | dict(os.environ) | SERVER_FLAGS


def startup_timeout() -> float:
    """Prefect's PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (config.prefect_defaults sets it), else 20 s."""
    try:
        return float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "20"))
    except ValueError:
        return 20.0


class Starting:
    """Prefect's temporary server on its way up: `wait()` returns once it answers (or raises why it did not) and
    points Prefect at it. `Starting()` is no server (the user's settings name one); `Starting(pending=True)` one that
    starts at `start()`."""

    def __init__(self, spawn: bool = False, pending: bool = False) -> None:
        self.process: subprocess.Popen | None = None
        self.url: str | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.pending = pending
        self.lock, self.cancelled = threading.Lock(), False  # stopped_on_error(): no spawn after it
        if spawn:
            self.start()

    def start(self) -> None:
        """Stop servers orphaned by killed runs, then start ours (in a thread: it spawns the process and waits)."""
        self.pending = False
        stop_orphan_servers()
        self.thread = threading.Thread(target=self._start, name="sipas-prefect-server", daemon=True)
        self.thread.start()

    @property
    def embedded(self) -> bool:
        """Whether this is a server of our own (False: the environment names one)."""
        return self.thread is not None

    def _start(self) -> None:
        try:
            with first_start():
                env = server_environment()
                while True:
                    self.spawn(env)
                    if self.healthy():
                        return
        except BaseException as exc:  # raised again by wait(), in the command's thread
            self.error = exc

    def spawn(self, env: dict[str, str]) -> None:
        """Start the server's process on a free port; record it at once (its stop is registered with it)."""
        with self.lock:
            if self.cancelled:
                raise RuntimeError("the command stopped before its Prefect server started")
            port = free_port()
            self.url = f"http://127.0.0.1:{port}/api"
            self.process = subprocess.Popen(server_command(port), env=env)
            atexit.register(self.stop)
            record_server(self.process.pid, self.url)

    def healthy(self) -> bool:
        """Wait until the server answers (True), or its port was taken (False: spawn again); raise if it failed."""
        deadline = time.monotonic() + startup_timeout()
        while time.monotonic() < deadline:
            process = self.process
            if process is None:
                raise RuntimeError("the command stopped its Prefect server before it answered")
            code = process.poll()
            if code == PORT_IN_USE:
                return False
            if code is not None:
                raise RuntimeError(f"Prefect's temporary server exited with code {code} while starting")
            if answers(self.url):
                warm_up(self.url)  # its first requests' work (routes built, a database session) done before the flow's
                return True
            time.sleep(0.05)
        raise RuntimeError(f"Timed out after {startup_timeout():.0f} s waiting for Prefect's temporary server at "
                           f"{self.url} (PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)")

    def wait(self) -> None:
        """Block until the server answers, then point Prefect at it (PREFECT_API_URL); a server that could not start
        raises its error here. A server named in the user's Prefect settings (a profile) wins: this one stops."""
        while self.thread is not None and self.thread.is_alive():
            self.thread.join(0.05)  # in short steps: the signal handlers of the command's thread still run
        if self.error is not None:
            raise self.error
        if self.thread is None:
            return
        from prefect.context import refresh_global_settings_context
        from prefect.settings import PREFECT_API_URL

        if PREFECT_API_URL.value():  # the user's settings name a server (a profile, prefect.toml): this one stops
            self.stop()
            return
        os.environ["PREFECT_API_URL"] = self.url
        os.environ.setdefault("PREFECT_UI_URL", "")  # it serves no UI: no "View at <link>" line to a page not there
        refresh_global_settings_context()  # Prefect's own way to re-read its settings from the environment

    @contextlib.contextmanager
    def stopped_on_error(self) -> Iterator[None]:
        """Around what the command does while the server starts (its checks, its imports): a user's mistake, a signal
        or any error there stops the server at once (no server starts after it), not when the process exits."""
        try:
            yield
        except BaseException:
            with self.lock:
                self.cancelled = True
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (at exit, or when the user's own server is used)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_embedded_server(wait: bool = True, early: bool = False) -> Starting:
    """Before a run without PREFECT_API_URL in the environment: stop servers orphaned by killed runs, start Prefect's
    temporary server now and record its PID the moment its process exists, so that a run killed while the server is
    still starting (seconds) leaves a record too (the record goes when this process exits normally). Call it before
    importing Prefect (it need not be: `wait()` makes an imported Prefect re-read its settings). `wait=False` returns
    while the server starts (the caller then imports the flow and calls `wait()`). `early`: called before the
    command's checks, it starts the server only once this Prefect has migrated this database; a first start (which
    migrates it) waits for the caller's `start()` after the checks, so a user's mistake never cuts a migration short."""
    if os.environ.get("PREFECT_API_URL"):
        return Starting()
    if early and not migrated_already():
        return Starting(pending=True)
    starting = Starting(spawn=True)
    if wait:
        starting.wait()
    return starting


@contextlib.contextmanager
def without_heartbeats() -> Iterator[None]:
    """Around the flow call of `sipas run` (a command of seconds, not a deployment's run): no flow-run heartbeats
    (`HEARTBEAT_SETTINGS`), unless the user set one, through Prefect's public `temporary_settings`."""
    if any(k in os.environ for k in HEARTBEAT_SETTINGS):
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@contextlib.contextmanager
def first_start() -> Iterator[None]:
    """Serialise the first start of a server on a new Prefect home: the first migrates Prefect's database (~30 s),
    and two runs migrating the same database at once fail with a migration traceback. The first holds
    `PREFECT_HOME/.sipas-first-start.lock` (with its PID) while its server starts; a second waits for it, then finds
    the database migrated. Once this Prefect has migrated this database (`config.remember_migrated`, written here
    when the first start succeeded) later starts take no lock."""
    home = Path(os.environ["PREFECT_HOME"])
    if migrated_already():
        (home / ".sipas-migrated").unlink(missing_ok=True)  # the second marker earlier versions wrote
        yield
        return
    home.mkdir(parents=True, exist_ok=True)
    with pid_lock(home / ".sipas-first-start.lock", {"run_id": f"first start, PID {os.getpid()}", "year": None},
                  lambda held: RuntimeError("unreachable: the lock is waited for"), lambda exc: exc,
                  lambda old, state: "", wait=True):
        yield
        remember_migrated()


def record_server(pid: int, url: str) -> None:
    """Record the temporary server `pid` as this process's (owner and both start times: PIDs are reused)."""
    child, me = psutil.Process(pid), psutil.Process()
    server_records().mkdir(parents=True, exist_ok=True)
    record = server_records() / f"{me.pid}.json"
    record.write_text(json.dumps({"owner": me.pid, "owner_started": me.create_time(), "server": child.pid,
                                  "server_started": child.create_time(), "url": url}))
    atexit.register(record.unlink, missing_ok=True)
