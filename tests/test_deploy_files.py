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


def test_prefect_yaml_declares_both_deployments():
    by_name = {d["name"]: d for d in SPEC["deployments"]}
    assert set(by_name) == {"annual", "manual-rerun"}
    annual, manual = by_name["annual"], by_name["manual-rerun"]
    assert annual["schedules"] == [{"cron": "0 2 1 3 *", "timezone": "Asia/Ho_Chi_Minh", "active": True}]
    assert manual["schedules"] == []
    for d in by_name.values():
        assert d["entrypoint"] == "sipas_pipeline.orchestration.flow:annual_run"
        assert d["concurrency_limit"] == 1 and "sipas" in d["tags"] and d["description"]
        assert d["work_pool"]["name"] == "sipas"
        assert d["work_pool"]["job_variables"]["env"] == {"SIPAS_DATA": "{{ $SIPAS_DATA }}"}
    assert "trigger" not in annual["parameters"] and "trigger" not in manual["parameters"]  # Prefect knows it
    assert SPEC["pull"] == [{"sipas_pipeline.orchestration.deployments.installed_package": {}}]
    assert SPEC["build"] is None and SPEC["push"] is None  # nothing of the checkout travels


@pytest.mark.integration  # imports Prefect and the flow
def test_entrypoint_and_pull_step_are_in_the_package():
    import importlib

    entry = SPEC["deployments"][0]["entrypoint"]
    module, name = entry.split(":")
    assert importlib.import_module(module).__file__.startswith(str(ROOT / "src" / "sipas_pipeline"))
    assert getattr(importlib.import_module(module), name).name == "sipas-annual-run"
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


@pytest.mark.integration
def test_served_deployments_are_those_of_prefect_yaml():
    """`sipas serve` builds its deployments from prefect.yaml: the same names, schedules, parameters, limit, tags."""
    prefect_defaults()
    from prefect.utilities.importtools import import_object

    from sipas_pipeline.orchestration.deployments import served

    got = {d.name: d for d in served(ROOT / "prefect.yaml")}
    for spec in SPEC["deployments"]:
        d = got[spec["name"]]
        assert import_object(d.entrypoint) is import_object(spec["entrypoint"])  # module.flow or module:flow
        assert d.concurrency_limit == spec["concurrency_limit"]
        assert d.parameters == spec["parameters"] and sorted(d.tags) == sorted(spec["tags"])
        assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in d.schedules] == [
            (s["cron"], s["timezone"], s["active"]) for s in spec["schedules"]]
