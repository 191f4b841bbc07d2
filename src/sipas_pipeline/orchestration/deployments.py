"""The deployments as `prefect.yaml` declares them (the one place their names, schedules, parameters, limits, tags and
work pool are written): `sipas deploy` registers them with `prefect deploy --all` on a process work pool and
creates the failure automation; `sipas serve` serves the same deployments from this process (a try-out: stopping
it pauses them); `installed_package` is the pull step a worker runs before each flow run."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from sipas_pipeline.errors import InputError
from sipas_pipeline.paths import DATA_ENV, PROJECT_ROOT, data_root

PREFECT_FILE = "prefect.yaml"


def prefect_file(path: Path | None = None) -> Path:
    """The prefect.yaml to use: `path`, else ./prefect.yaml, else the checkout's (one line when there is none)."""
    for candidate in ([path] if path else [Path.cwd() / PREFECT_FILE, PROJECT_ROOT / PREFECT_FILE]):
        if candidate.is_file():
            return candidate.resolve()
    raise InputError(f"{path or PREFECT_FILE}: no such file: run from the checkout or pass --prefect-file PATH")


def specs(path: Path) -> list[dict[str, Any]]:
    """The `deployments:` of a prefect.yaml (each with name, entrypoint, parameters, schedules, limit, pool)."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot be read as a prefect.yaml: {exc}".replace("\n", " ")) from exc
    found = loaded.get("deployments") if isinstance(loaded, dict) else None
    if not found or not all(isinstance(d, dict) and d.get("name") and d.get("entrypoint") for d in found):
        raise InputError(f"{path}: no `deployments:` list with a name and an entrypoint in each")
    return found


def pools(path: Path) -> list[str]:
    """The work pools the deployments of `path` name."""
    return sorted({d["work_pool"]["name"] for d in specs(path) if isinstance(d.get("work_pool"), dict)})


def schedule(spec: dict[str, Any], where: Path) -> Any:
    """One `schedules:` item of prefect.yaml as Prefect's schedule: `cron` or `interval` (seconds), with its
    timezone, anchor date and active flag, as `prefect deploy` reads them."""
    from datetime import datetime

    from prefect.schedules import Cron, Interval

    common = {"timezone": spec.get("timezone"), "active": spec.get("active", True)}
    if "cron" in spec:
        return Cron(spec["cron"], **common)
    if "interval" in spec:
        anchor = datetime.fromisoformat(str(spec["anchor_date"])) if spec.get("anchor_date") else None
        return Interval(float(spec["interval"]), anchor_date=anchor, **common)
    raise InputError(f"{where}: a schedule with neither cron nor interval: {spec}")


def concurrency(value: Any) -> Any:
    """`concurrency_limit:` of prefect.yaml: a number, or `{limit, collision_strategy}` (ENQUEUE or CANCEL_NEW)."""
    if not isinstance(value, dict):
        return value
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    return ConcurrencyLimitConfig(limit=value["limit"], collision_strategy=value.get("collision_strategy", "ENQUEUE"))


def served(path: Path) -> list[Any]:
    """The deployments of `path` built in this process for `prefect.serve`: the same names, schedules (cron or
    interval), parameters, concurrency limits and collision strategies, tags and descriptions as `prefect deploy
    --all` registers (no work pool)."""
    from prefect.deployments.runner import EntrypointType
    from prefect.flows import load_flow_from_entrypoint

    out = []
    for d in specs(path):
        flow = load_flow_from_entrypoint(d["entrypoint"])
        out.append(flow.to_deployment(name=d["name"], schedules=[schedule(s, path) for s in d.get("schedules") or []],
                                      concurrency_limit=concurrency(d.get("concurrency_limit")),
                                      parameters=d.get("parameters") or {}, description=d.get("description"),
                                      tags=d.get("tags"), entrypoint_type=EntrypointType.MODULE_PATH))
    return out


def serve(path: Path) -> None:
    """Serve the deployments of `path` until interrupted (stopping pauses them: a worker keeps their schedules)."""
    from prefect import serve as prefect_serve

    prefect_serve(*served(path))


def ensure_pool(name: str) -> bool:
    """The process work pool `name`, created when missing; whether it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return True


def deployment_ids(path: Path) -> dict[str, Any]:
    """`flow/deployment` name -> id of every deployment of `path`, as the server holds them."""
    from prefect.client.orchestration import get_client
    from prefect.flows import load_flow_from_entrypoint

    names = [f"{load_flow_from_entrypoint(d['entrypoint']).name}/{d['name']}" for d in specs(path)]
    with get_client(sync_client=True) as client:
        return {n: client.read_deployment_by_name(n).id for n in names}


def deploy(path: Path, webhook: str | None = None, notify_blocks: list[str] | None = None,
           email: Any | None = None) -> dict[str, Any]:
    """`prefect deploy --all` from `path` (its pools created first, as process pools), then the automation on
    Failed, Crashed and Late runs of every deployment there, notifying the webhook, the e-mail block (`email`, a
    `mail.SmtpEmail`) and the blocks named. The data root (SIPAS_DATA, made absolute) goes into every deployment
    through the environment of `prefect deploy`."""
    from sipas_pipeline.orchestration import notifications

    created = [p for p in pools(path) if ensure_pool(p)]
    env = os.environ | {DATA_ENV: str(data_root())}
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", str(path)],
                          cwd=path.parent, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-1:] or ["no output"]
        raise InputError(f"prefect deploy --all --prefect-file {path} failed: {last[0].strip()}")
    ids = deployment_ids(path)
    blocks = [notifications.save_webhook(webhook)] if webhook else []
    blocks += [notifications.save_email(email)] if email is not None else []
    blocks += [notifications.block_id(b) for b in notify_blocks or []]
    automation = notifications.watch(list(ids.values()), blocks) if blocks else None
    return {"deployments": {n: str(i) for n, i in ids.items()}, "pools_created": created, "data_root": env[DATA_ENV],
            "automation": str(automation) if automation else None, "notified": len(blocks)}


def installed_package() -> dict[str, str]:
    """The pull step of prefect.yaml, run by the worker before each flow run: the flow comes from the installed
    sipas-pipeline, not from a checkout (one line when it is not installed); the run's working directory is the data
    root (made when missing), so nothing it does depends on where the worker was started. The flow's first log line
    names the package's version and folder."""
    try:
        installed = version("sipas-pipeline")
    except PackageNotFoundError as exc:  # imported from a folder on sys.path, not installed
        raise InputError("sipas-pipeline is not installed in the worker's environment: pip install the wheel") from exc
    root = data_root()
    root.mkdir(parents=True, exist_ok=True)
    os.chdir(root)
    return {"directory": str(root), "sipas_pipeline": installed}
