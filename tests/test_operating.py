"""The pipeline operated as Prefect users operate it (docs/operating.md), for real: a `prefect server start` and a
`prefect worker start` run from the ExecStart lines of the systemd units in deploy/ (the installed wheel's
environment in place of /opt/sipas/venv, a free port, temporary homes), a webhook receiver on 127.0.0.1, and the
page's commands run one by one (`sipas deploy` = `prefect deploy --all` from prefect.yaml plus the automation; the
manual re-run with a correction file named relative to the data root; a run given a missing raw folder). Then read
back through Prefect's API, the data root's DuckDB file, the webhook receiver and an SMTP receiver on 127.0.0.1 (the
automation's e-mail). One server, one worker, the small sample year."""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import socketserver
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import kept_data
import pytest
import wheel_env
from docs_pages import section

from sipas_pipeline.localhost import free_port, stop_group
from sipas_pipeline.publish import read_query

pytestmark = [pytest.mark.integration, pytest.mark.server]
ROOT = Path(__file__).resolve().parents[1]
VENV = "/opt/sipas/venv"  # where the units expect the installed wheel
PREFECT_YAML = "/opt/sipas/prefect.yaml"  # the operator's copy of the checkout's prefect.yaml
DATA, SERVER, HOOK, UNITS = "/srv/sipas", "http://127.0.0.1:4200", "http://127.0.0.1:8099", "/etc/systemd/system"
SMTP = "127.0.0.1:8025"  # the page's SMTP server (here: the receiver below)
FLOWS = {"annual": "sipas-annual-run", "manual-rerun": "sipas-annual-run", "fieldwork": "sipas-fieldwork"}
FIX = {"action": "set", "source": "citizen", "form_id": "24-01-000001", "field": "s_s_overall", "old_value": "4",
       "new_value": "1", "reason": "Nhập sai (mis-keyed)", "requested_by": "Sở Nội vụ Hà Nội", "requested_at": "2025-01-15"}


def unit(path: Path) -> tuple[list[str], dict[str, str]]:
    """A unit's ExecStart (as argv) and its Environment= settings."""
    argv: list[str] = []
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("Environment="):
            key, value = line.removeprefix("Environment=").split("=", 1)
            env[key] = value
        elif line.startswith("ExecStart="):
            argv = shlex.split(line.removeprefix("ExecStart="))
    return argv, env


class Receiver:
    """A webhook receiver on 127.0.0.1: every POST's JSON body, in order."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append({"path": self.path, **json.loads(body or b"{}")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class MailReceiver:
    """An SMTP server on 127.0.0.1 that keeps every message it is given (envelope and text), in order: enough of
    RFC 5321 for smtplib (EHLO, MAIL, RCPT, DATA, QUIT), no TLS, no login."""

    def __init__(self) -> None:
        self.mails: list[dict[str, Any]] = []
        received = self.mails

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                self.reply("220 127.0.0.1 ESMTP test receiver")
                mail: dict[str, Any] = {"to": []}
                for raw in self.rfile:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    verb = line[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 127.0.0.1")
                    elif verb == "MAIL":
                        mail["from"] = line.split(":", 1)[1].strip(" <>")
                    elif verb == "RCPT":
                        mail["to"].append(line.split(":", 1)[1].strip(" <>"))
                    elif verb == "DATA":
                        self.reply("354 end with a dot")
                        text = []
                        for data in self.rfile:
                            if data.rstrip(b"\r\n") == b".":
                                break
                            text.append(data.decode("utf-8", "replace"))
                        received.append(mail | {"message": "".join(text)})
                        mail = {"to": []}
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    if verb not in ("EHLO", "HELO", "DATA"):
                        self.reply("250 OK")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def messages(self) -> list[Any]:
        """The messages, parsed (subject, plain-text body)."""
        from email import message_from_string

        return [message_from_string(m["message"]) for m in self.mails]


def api(url: str, path: str, body: dict | None = None) -> Any:
    """One call of the server's REST API (POST with a JSON body, else GET)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read() or b"null")


def wait(what: str, check, timeout: float = 120, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while (got := check()) in (None, False, [], {}):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
    return got


def commands(heading: str) -> list[str]:
    """The shell commands of the ```bash blocks under `heading` in docs/operating.md, one per line (comments kept)."""
    text = section("operating", heading)
    blocks = [b.split("```", 1)[0] for b in text.split("```bash")[1:]]
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip() and not line.strip().startswith("#")]


class Operator:
    """The machine of docs/operating.md in a temporary folder: the units' processes, the page's commands."""

    def __init__(self, tmp: Path, venv: Path, receiver: Receiver, mail: MailReceiver) -> None:
        self.tmp, self.venv, self.receiver, self.mail = tmp, venv, receiver, mail
        self.root = tmp / "srv-sipas"
        self.units = tmp / "etc-systemd-system"
        self.url = f"http://127.0.0.1:{free_port()}"
        self.env = wheel_env.clean_env()
        self.processes: dict[str, subprocess.Popen] = {}
        self.ran: list[tuple[str, int, str]] = []

    def place(self, text: str) -> str:
        """The page's (and the units') paths and addresses, on this machine."""
        for theirs, ours in ((PREFECT_YAML, str(ROOT / "prefect.yaml")), (VENV, str(self.venv)), (DATA, str(self.root)),
                             (SERVER, self.url), (HOOK, self.receiver.url), (UNITS, str(self.units)),
                             (SMTP, self.mail.address)):
            text = text.replace(theirs, ours)
        return text

    def install_units(self) -> None:
        self.units.mkdir()
        for f in (ROOT / "deploy").glob("*.service"):
            (self.units / f.name).write_text(self.place(f.read_text(encoding="utf-8")), encoding="utf-8")

    def start(self, name: str, **overrides: str) -> subprocess.Popen:
        """Start the unit `name` as systemd would: its ExecStart with its Environment (plus this machine's homes)."""
        argv, env = unit(self.units / f"{name}.service")
        env = self.env | env | overrides
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 (the process's, while it runs)
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.tmp)
        self.processes[name] = proc
        return proc

    def run(self, line: str) -> tuple[int, str]:
        """One command of the page: `export K=V` sets the environment of the next ones; `sipas` and `prefect` are
        the installed environment's commands."""
        line = self.place(line)
        if line.startswith("export "):
            key, value = line.removeprefix("export ").split("=", 1)
            self.env[key] = value
            return 0, ""
        argv = shlex.split(line)
        if argv[0] in ("sipas", "prefect"):
            argv[0] = str(self.venv / "bin" / argv[0])
        done = subprocess.run(argv, env=self.env, cwd=self.tmp, capture_output=True, text=True, timeout=600)
        self.ran.append((line, done.returncode, done.stdout + done.stderr))
        return done.returncode, done.stdout + done.stderr

    def deployment(self, name: str) -> dict[str, Any]:
        return api(self.url + "/api", f"/deployments/name/{FLOWS[name]}/{name}")

    def flow_runs(self, deployment: str, **state: Any) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"deployments": {"id": {"any_": [self.deployment(deployment)["id"]]}}, "sort": "START_TIME_ASC"}
        if state:
            body["flow_runs"] = {"state": {"type": {"any_": state["types"]}}}
        return api(self.url + "/api", "/flow_runs/filter", body)

    def logs(self, flow_run_id: str) -> list[dict[str, Any]]:
        return api(self.url + "/api", "/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC"})

    def close(self) -> None:
        for proc in reversed(list(self.processes.values())):
            stop_group(proc)


def migrated_home(home: Path) -> Path:
    """A Prefect home whose database is a copy of the kept migrated one (kept_data: migrated, and without the runs
    and deployments other tests made on the session's server; the server starts as it does on its second boot,
    without the first migration's ~20 s)."""
    home.mkdir()
    kept_data.migrated_prefect_database(home / "prefect.db")
    return home


@pytest.fixture(scope="module")
def operated(tmp_path_factory, wheel_venv, sample_year, prefect_harness):
    """The page's session, start to end: what each step gave, for the tests below to read."""
    tmp = tmp_path_factory.mktemp("operator")
    receiver, mail = Receiver(), MailReceiver()
    op = Operator(tmp, wheel_venv / "venv", receiver, mail)
    op.root.mkdir()
    shutil.copytree(sample_year, op.root / "2024" / "raw")  # the exports, where the data root says
    (op.root / "corrections").mkdir()
    with (op.root / "corrections" / "fix-2024-01.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(FIX))
        w.writeheader()
        w.writerow(FIX)
    op.install_units()
    port = op.url.rsplit(":", 1)[1]
    try:
        op.start("sipas-server", PREFECT_HOME=str(migrated_home(tmp / "server-home")), PREFECT_SERVER_API_PORT=port,
                 PREFECT_UI_ENABLED="false", PREFECT_API_SERVICES_SCHEDULER_LOOP_SECONDS="2")
        wait("the server", lambda: _healthy(op.url), timeout=180)
        worker = {"PREFECT_HOME": str(tmp / "worker-home"), "PREFECT_API_URL": op.url + "/api", "SIPAS_DATA": str(op.root),
                  "PREFECT_WORKER_QUERY_SECONDS": "1"}
        op.start("sipas-worker", **worker)
        out: dict[str, Any] = {"op": op, "receiver": receiver, "mail": mail, "steps": []}
        for line in commands("Commands, one by one"):
            expected = 1 if "--watch" in line and "raw=" in line else 0
            code, text = op.run(line)
            assert code == expected, f"{line}\n{text[-3000:]}"
            out["steps"].append((line, text))
        # the failed manual re-run's notification (a fieldwork run may be Late while the worker restarts: its own)
        out["notified"] = wait("the webhook", lambda: [p for p in receiver.posts if "manual-rerun" in p["subject"]],
                               timeout=90)
        out["mailed"] = wait("the e-mail", lambda: [m for m in mail.messages() if "manual-rerun" in m["Subject"]],
                             timeout=90)
        out["fieldwork_runs"] = op.flow_runs("fieldwork")
        # the worker stops (SIGTERM, as systemctl stop) and starts again: the deployments are the server's
        stop_group(op.processes["sipas-worker"])
        out["after_stop"] = op.deployment("annual")
        op.start("sipas-worker", **worker)
        out["scheduled"] = wait("the 1 March run", lambda: op.flow_runs("annual", types=["SCHEDULED"]), timeout=90)
        out["after_restart"] = op.deployment("annual")
        yield out
    finally:
        op.close()
        receiver.server.shutdown()
        mail.server.shutdown()


def _healthy(url: str) -> bool:
    try:
        return api(url + "/api", "/health") is True
    except OSError:
        return False


def test_units_verify_and_run_from_the_installed_wheel(operated):
    op = operated["op"]
    verified = [r for r in op.ran if r[0].startswith("systemd-analyze verify")]
    assert verified and verified[0][1] == 0 and verified[0][2].strip() == ""
    for name in ("sipas-server", "sipas-worker"):
        argv, _ = unit(op.units / f"{name}.service")
        assert Path(argv[0]).is_file() and argv[0].startswith(str(op.venv))  # the wheel's environment, no checkout


def test_deployments_are_those_of_prefect_yaml(operated):
    op = operated["op"]
    annual, manual, fieldwork = op.deployment("annual"), op.deployment("manual-rerun"), op.deployment("fieldwork")
    for d in (annual, manual):
        assert d["entrypoint"] == "sipas_pipeline.orchestration.flow:annual_run"  # a module path in the wheel
    for d in (annual, manual, fieldwork):
        assert d["work_pool_name"] == "sipas" and d["global_concurrency_limit"]["limit"] == 1
        assert d["job_variables"]["env"]["SIPAS_DATA"] == str(op.root)  # the data root travels with every run
        assert d["pull_steps"] == [{"sipas_pipeline.orchestration.deployments.installed_package": {}}]
    assert sorted(annual["tags"]) == ["annual", "sipas"] and sorted(manual["tags"]) == ["rerun", "sipas"]
    (schedule,) = annual["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 1 3 *" and schedule["schedule"]["timezone"] == "Asia/Ho_Chi_Minh"
    assert manual["schedules"] == [] and manual["parameters"] == {"corrections": []}
    # fieldwork: every minute, one at a time, an overlapping run cancelled (not queued)
    assert fieldwork["entrypoint"] == "sipas_pipeline.orchestration.fieldwork:fieldwork_run"
    (every,) = fieldwork["schedules"]
    assert every["schedule"]["interval"] == 60 and every["active"] is True
    assert fieldwork["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    assert sorted(fieldwork["tags"]) == ["fieldwork", "sipas"] and fieldwork["parameters"] == {}
    pool = api(op.url + "/api", "/work_pools/sipas")
    assert pool["type"] == "process"


def test_manual_rerun_completes_into_the_data_root(operated):
    op = operated["op"]
    first = op.flow_runs("manual-rerun")[0]
    assert first["state_type"] == "COMPLETED" and first["parameters"]["corrections"] == "fix-2024-01.csv"
    db = op.root / "sipas.duckdb"
    (run_id, trigger, parameters), = read_query(db, 'SELECT run_id, "trigger", parameters FROM current_runs WHERE year = 2024')
    assert trigger == "manual" and json.loads(parameters)["trigger"] == "manual"
    assert json.loads(parameters)["corrections"] == [str(op.root / "corrections" / "fix-2024-01.csv")]
    assert read_query(db, "SELECT count(*) FROM current_ranks WHERE year = 2024 AND measure = 'sipas' "
                          "AND value IS NOT NULL") == [(63,)]
    assert read_query(db, "SELECT form_id, outcome FROM corrections WHERE run_id = ?", [run_id]) == [
        ("24-01-000001", "valid")]
    messages = [x["message"] for x in op.logs(first["id"])]
    assert any(m.startswith("sipas-pipeline ") and f"{wheel_env.site_packages(op.venv.parent)}/sipas_pipeline" in m
               for m in messages), messages  # the pull step: the flow came from the installed wheel


def test_missing_raw_folder_fails_in_one_line_and_is_recorded(operated):
    op = operated["op"]
    failed = op.flow_runs("manual-rerun", types=["FAILED"])
    assert len(failed) == 1
    logs = op.logs(failed[0]["id"])
    errors = [x["message"] for x in logs if x["level"] >= 40]
    missing = op.root / "2024" / "raw-missing"
    assert len(errors) == 1 and str(missing) in errors[0], errors
    assert not any("Traceback" in x["message"] for x in logs)
    assert "Traceback" not in (op.tmp / "sipas-worker.log").read_text(encoding="utf-8", errors="replace")
    assert failed[0]["state"]["message"] == errors[0]
    rows = read_query(op.root / "sipas.duckdb", "SELECT status, error, \"trigger\", flow_run_id FROM runs "
                                                "WHERE status <> 'published'")
    assert rows == [("refused", errors[0], "manual", failed[0]["id"])]


def test_the_automation_notified_the_webhook(operated):
    op, posts = operated["op"], operated["notified"]
    failed = op.flow_runs("manual-rerun", types=["FAILED"])[0]
    (post,) = posts
    assert post["path"] == "/sipas"
    assert post["subject"] == f"SIPAS: manual-rerun run {failed['name']} is Failed"
    assert failed["id"] in post["body"] and failed["state"]["message"] in post["body"]
    automations = api(op.url + "/api", "/automations/filter", {})
    (auto,) = [a for a in automations if a["name"] == "sipas-runs-failed-crashed-late"]
    assert sorted(auto["trigger"]["expect"]) == ["prefect.flow-run.Crashed", "prefect.flow-run.Failed",
                                                 "prefect.flow-run.Late"]
    ids = {op.deployment(n)["id"] for n in FLOWS}
    assert {r.removeprefix("prefect.deployment.") for r in auto["trigger"]["match_related"]["prefect.resource.id"]} == ids
    assert len(auto["actions"]) == 2  # the webhook and the e-mail


def test_the_automation_emailed_the_failure(operated):
    """`sipas deploy --email-to ops@example.org --smtp HOST:PORT`: the same notification, by SMTP."""
    op = operated["op"]
    failed = op.flow_runs("manual-rerun", types=["FAILED"])[0]
    (mail,) = operated["mailed"]
    (envelope,) = [m for m in operated["mail"].mails if "manual-rerun" in m["message"]]
    assert envelope["to"] == ["ops@example.org"] and envelope["from"].startswith("sipas@")
    assert mail["Subject"] == f"SIPAS: manual-rerun run {failed['name']} is Failed"
    text = next(part.get_payload(decode=True).decode() for part in mail.walk() if part.get_content_type() == "text/plain")
    assert failed["id"] in text and failed["state"]["message"] in " ".join(text.split())
    block = api(op.url + "/api", "/block_documents/filter", {"block_types": {"slug": {"any_": ["sipas-smtp-email"]}}})
    assert [(b["name"], b["data"]["to"]) for b in block] == [("sipas-failures", ["ops@example.org"])]


def test_fieldwork_runs_end_at_once_outside_the_window(operated):
    """The worker runs the fieldwork deployment every minute; the data root has no inbox for this year: each run
    Completed (or was Cancelled by the one-at-a-time limit), none Failed."""
    runs = operated["fieldwork_runs"]
    assert runs and all(r["auto_scheduled"] for r in runs), [
        (r["name"], r["state_name"], r["created"], r["auto_scheduled"], r.get("created_by"), r.get("tags"),
         r.get("idempotency_key")) for r in runs]
    states = {(r["state_type"], r["state_name"]) for r in runs}
    assert {s for s, _ in states} <= {"SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "CANCELLED", "CANCELLING"}, states


def test_stopping_the_worker_leaves_the_schedule_active(operated):
    for d in (operated["after_stop"], operated["after_restart"]):
        assert d["paused"] is False and [s["active"] for s in d["schedules"]] == [True]
    (next_run,) = operated["scheduled"]
    assert next_run["auto_scheduled"] is True
    assert next_run["expected_start_time"].startswith("2027-02-28T19:00:00")  # 02:00 on 1 March, Vietnam time
