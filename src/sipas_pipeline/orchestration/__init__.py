"""Orchestration: the one package of the project that imports Prefect. Its rooms:

- `flow`: the flow `sipas-annual-run` and its tasks (each calls one pure stage and returns its typed report);
- `run`: one run's stages in order (`Run`), their cache (`cached_stage`), `RunRecord` and `RunResult`;
- `artifacts`: the validation summary, the rankings and the release link as Prefect artifacts;
- `deployments`: the deployments of prefect.yaml: `sipas deploy` (work pool, `prefect deploy --all`, the automation),
  `sipas serve`, and the pull step a worker runs;
- `notifications`: the automation that tells people of a Failed, Crashed or Late run (webhook and other blocks);
- `server`: the embedded Prefect server's lifecycle (public Prefect API only; the one module allowed a private name).

The names below are imported when first used (PEP 562), so that `sipas run` can start the server (`server`,
light) before it imports the flow (Prefect's engine, heavy) and both proceed at once; a room is imported as a
module (`from sipas_pipeline.orchestration import deployments`). Prefect's defaults (`config.prefect_defaults`)
are applied by the command that starts a run, before Prefect is imported, never by importing this package."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sipas_pipeline.config import prefect_defaults

if TYPE_CHECKING:
    from sipas_pipeline.orchestration.flow import annual_run, run_year
    from sipas_pipeline.orchestration.run import RunRecord, RunResult, cached_stage, preload, survey_year
    from sipas_pipeline.orchestration.server import start_embedded_server, stop_orphan_servers

WHERE = {"annual_run": "flow", "run_year": "flow", "RunRecord": "run", "RunResult": "run", "cached_stage": "run",
         "preload": "run", "survey_year": "run", "start_embedded_server": "server", "stop_orphan_servers": "server"}
__all__ = ["RunRecord", "RunResult", "annual_run", "cached_stage", "prefect_defaults", "preload", "run_year",
           "start_embedded_server", "stop_orphan_servers", "survey_year"]


def __getattr__(name: str) -> Any:
    if name not in WHERE:  # a room (a submodule) is then imported by the import system itself
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{WHERE[name]}"), name)
    globals()[name] = value
    return value
