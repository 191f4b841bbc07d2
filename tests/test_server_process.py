"""The embedded server's process (`orchestration.server_process`): uvicorn's command line with Prefect's server code
imported first, the garbage collector paused. Serving is what every embedded run checks (test_killed_runs,
test_flow); here: which module it imports first, and that uvicorn's exit codes come through (a taken port: 3, on
which `server.Starting` spawns again on another port)."""

from __future__ import annotations

import gc
import http.server
import socket
import subprocess
import threading

import pytest
from kept_data import migrated_prefect_database

from sipas_pipeline.collector import collector_paused
from sipas_pipeline.localhost import free_port, warm_up
from sipas_pipeline.orchestration import server
from sipas_pipeline.orchestration.server_process import factory_module


def test_the_factory_module_is_found_among_uvicorns_arguments():
    assert factory_module(server.server_command(4321)[3:]) == "prefect.server.api.server"
    assert factory_module(["--app-dir", "C:\\prefect\\site", "--factory", "pkg.mod:make_app", "--port", "1"]) == "pkg.mod"
    assert factory_module(["--app-dir", "/x:y/z", "--host", "127.0.0.1:80"]) is None  # a path, an address: no factory


def test_the_collector_is_paused_inside_and_restored():
    before = gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled() == before
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # one that was off stays off
    finally:
        if before:
            gc.enable()
        gc.unfreeze()


@pytest.mark.integration  # imports Prefect's server code in a child (seconds of CPU)
def test_a_taken_port_exits_with_uvicorns_code(tmp_path, monkeypatch):
    migrated_prefect_database(tmp_path / "prefect.db")  # a home of its own (the server's lifespan opens it)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run(server.server_command(port), env=server.server_environment(), capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == server.PORT_IN_USE, done.stderr[-2000:]


def test_warm_up_asks_the_first_requests_and_never_raises():
    """`localhost.warm_up` (after the embedded server answers its health check): an unknown path (FastAPI then builds
    every router's routes) and one database query; a 404, or no server at all, is no error."""
    seen: list[tuple[str, str, bytes]] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(("GET", self.path, b""))
            self.send_error(404)

        def do_POST(self) -> None:
            seen.append(("POST", self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/api"
        assert warm_up(url) == ["/sipas-warm-up", "/flows/filter"]
        httpd.shutdown()
    assert seen == [("GET", "/api/sipas-warm-up", b""), ("POST", "/api/flows/filter", b'{"limit": 1}')]
    assert warm_up(f"http://127.0.0.1:{free_port()}/api") == ["/sipas-warm-up", "/flows/filter"]  # nothing listening
