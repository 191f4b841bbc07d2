"""The operator's files: prefect.yaml (both deployments as `serve` had them: cron in Asia/Ho_Chi_Minh, limit 1,
tags, a process pool, a module-path entrypoint inside the package, the pull step of the installed wheel) and the
systemd units in deploy/ (verified by systemd-analyze with the installed environment in place; the worker polls the
pool prefect.yaml names and talks to the server's port)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sipas_pipeline.config import prefect_defaults

ROOT = Path(__file__).resolve().parents[1]
SPEC = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))


def unit_lines(name: str) -> dict[str, list[str]]:
    """key -> values of a unit file's settings (Environment may repeat)."""
    out: dict[str, list[str]] = {}
    for line in (ROOT / "deploy" / name).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def environment(name: str) -> dict[str, str]:
    return dict(v.split("=", 1) for v in unit_lines(name)["Environment"])


def test_prefect_yaml_declares_the_three_deployments():
    by_name = {d["name"]: d for d in SPEC["deployments"]}
    assert set(by_name) == {"annual", "manual-rerun", "fieldwork"}
    annual, manual, fieldwork = by_name["annual"], by_name["manual-rerun"], by_name["fieldwork"]
    assert annual["schedules"] == [{"cron": "0 2 1 3 *", "timezone": "Asia/Ho_Chi_Minh", "active": True}]
    assert manual["schedules"] == []
    for d in (annual, manual):
        assert d["entrypoint"] == "sipas_pipeline.orchestration.flow:annual_run"
        assert d["concurrency_limit"] == 1
    # the fieldwork: every minute, one run at a time, an overlapping run cancelled (the next takes what it left)
    assert fieldwork["entrypoint"] == "sipas_pipeline.orchestration.fieldwork:fieldwork_run"
    assert fieldwork["schedules"] == [{"interval": 60, "timezone": "Asia/Ho_Chi_Minh", "active": True}]
    assert fieldwork["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    for d in by_name.values():
        assert "sipas" in d["tags"] and d["description"]
        assert d["work_pool"]["name"] == "sipas"
        assert d["work_pool"]["job_variables"]["env"] == {"SIPAS_DATA": "{{ $SIPAS_DATA }}"}
    assert "trigger" not in annual["parameters"] and "trigger" not in manual["parameters"]  # Prefect knows it
    assert SPEC["pull"] == [{"sipas_pipeline.orchestration.deployments.installed_package": {}}]
    assert SPEC["build"] is None and SPEC["push"] is None  # nothing of the checkout travels


@pytest.mark.integration  # imports Prefect and the flows
def test_entrypoints_and_pull_step_are_in_the_package():
    import importlib

    names = {"annual": "sipas-annual-run", "manual-rerun": "sipas-annual-run", "fieldwork": "sipas-fieldwork"}
    for d in SPEC["deployments"]:
        module, name = d["entrypoint"].split(":")
        assert importlib.import_module(module).__file__.startswith(str(ROOT / "src" / "sipas_pipeline"))
        assert getattr(importlib.import_module(module), name).name == names[d["name"]]
    (step,) = SPEC["pull"][0]
    module, name = step.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))


def test_units_verify_with_the_installed_environment(tmp_path):
    for name in ("sipas-server.service", "sipas-worker.service"):
        text = (ROOT / "deploy" / name).read_text(encoding="utf-8").replace("/opt/sipas/venv", sys.prefix)
        (tmp_path / name).write_text(text, encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", *(str(p) for p in sorted(tmp_path.glob("*.service")))],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip()) == (0, "")
    broken = (tmp_path / "sipas-worker.service").read_text().replace(sys.prefix, "/nowhere")
    (tmp_path / "sipas-worker.service").write_text(broken)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "sipas-worker.service")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "/nowhere/bin/python" in done.stderr  # the check can fail


def test_units_point_at_each_other_and_at_prefect_yaml():
    server, worker = environment("sipas-server.service"), environment("sipas-worker.service")
    assert worker["PREFECT_API_URL"] == f"http://{server['PREFECT_SERVER_API_HOST']}:{server['PREFECT_SERVER_API_PORT']}/api"
    assert worker["SIPAS_DATA"].startswith("/") and server["PREFECT_HOME"] == worker["PREFECT_HOME"]
    argv = shlex.split(unit_lines("sipas-worker.service")["ExecStart"][0])
    assert argv[1:6] == ["-m", "prefect", "worker", "start", "--pool"] and argv[6] == SPEC["deployments"][0]["work_pool"]["name"]
    assert argv[argv.index("--type") + 1] == "process"
    assert shlex.split(unit_lines("sipas-server.service")["ExecStart"][0])[1:] == ["-m", "prefect", "server", "start"]
    assert unit_lines("sipas-worker.service")["Restart"] == ["always"]


def limit_of(spec: object) -> tuple[int, str]:
    """A concurrency_limit of prefect.yaml as (limit, collision strategy): a number means ENQUEUE (Prefect's default)."""
    return (spec["limit"], spec.get("collision_strategy", "ENQUEUE")) if isinstance(spec, dict) else (spec, "ENQUEUE")


def schedule_of(schedule: object) -> dict:
    """A Prefect schedule (served) as prefect.yaml writes it: cron or interval (seconds), timezone, active."""
    s = schedule.schedule
    kind = {"cron": s.cron} if hasattr(s, "cron") else {"interval": int(s.interval.total_seconds())}
    return kind | {"timezone": s.timezone, "active": schedule.active}


@pytest.mark.integration
def test_served_deployments_are_those_of_prefect_yaml():
    """`sipas serve` builds its deployments from prefect.yaml: the same names, schedules (cron and interval),
    parameters, limit and collision strategy, tags."""
    prefect_defaults()
    from prefect.utilities.importtools import import_object

    from sipas_pipeline.orchestration.deployments import served
    from sipas_pipeline.orchestration.fieldwork import fieldwork_deployment

    got = {d.name: d for d in served(ROOT / "prefect.yaml")}
    assert set(got) == {d["name"] for d in SPEC["deployments"]}
    for spec in SPEC["deployments"]:
        d = got[spec["name"]]
        assert import_object(d.entrypoint) is import_object(spec["entrypoint"])  # module.flow or module:flow
        options = d.concurrency_options.collision_strategy.value if d.concurrency_options else "ENQUEUE"
        assert (d.concurrency_limit, options) == limit_of(spec["concurrency_limit"])
        assert d.parameters == spec["parameters"] and sorted(d.tags) == sorted(spec["tags"])
        assert [schedule_of(s) for s in d.schedules] == spec["schedules"]
    # `sipas fieldwork serve` (its own paths as parameters) serves the same deployment
    own = fieldwork_deployment(2024, "inbox", "season", "db.duckdb")
    mine = got["fieldwork"]
    assert (own.name, own.entrypoint, sorted(own.tags), [schedule_of(s) for s in own.schedules]) == (
        mine.name, mine.entrypoint, sorted(mine.tags), [schedule_of(s) for s in mine.schedules])
    assert (own.concurrency_limit, own.concurrency_options) == (mine.concurrency_limit, mine.concurrency_options)


@pytest.mark.integration  # imports Prefect's blocks
def test_the_email_block_is_an_apprise_mailto_url_and_refuses_bad_addresses():
    from urllib.parse import parse_qs, urlsplit

    from sipas_pipeline.errors import InputError
    from sipas_pipeline.orchestration.mail import smtp_block

    block = smtp_block(["ops@example.org", "lead@example.org"], "smtp.example.gov.vn:587", username="sipas",
                       password="p@ss:w/rd")
    url = urlsplit(block.apprise_url())
    assert (url.scheme, url.hostname, url.port, url.username, url.password) == (
        "mailto", "smtp.example.gov.vn", 587, "sipas", "p%40ss%3Aw%2Frd")
    query = parse_qs(url.query)
    assert query["mode"] == ["starttls"] and query["to"] == ["ops@example.org,lead@example.org"]
    assert "p@ss" not in repr(block) and block.password.get_secret_value() == "p@ss:w/rd"
    assert smtp_block(["a@example.org"], "127.0.0.1:25").security == "insecure"
    assert smtp_block(["a@example.org"], "mail.example.org:465").security == "ssl"
    for to, smtp, said in ((["ops"], "127.0.0.1:25", "--email-to ops"), (["a@example.org"], "127.0.0.1", "--smtp 127.0.0.1"),
                           (["a@example.org"], "h:70000", "--smtp h:70000")):
        with pytest.raises(InputError, match=said):
            smtp_block(to, smtp)
    with pytest.raises(InputError, match="--smtp-from not-an-address"):
        smtp_block(["a@example.org"], "127.0.0.1:25", sender="not-an-address")


def test_deploy_wants_email_to_and_smtp_together(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sipas_pipeline.cli", "deploy", "--email-to", "ops@example.org"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode != 0 and done.stderr.strip().splitlines() == [
        "error: --email-to and --smtp go together: the address(es) and the SMTP server (HOST:PORT) that sends to them"]
