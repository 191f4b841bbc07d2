"""Orchestration: the one package of the project that imports Prefect. Its rooms:

- `flow`: the flow `sipas-annual-run` and its tasks (each calls one pure stage and returns its typed report);
- `run`: one run's stages in order (`Run`), their cache (`cached_stage`), `RunRecord` and `RunResult`;
- `artifacts`: the validation summary, the rankings and the release link as Prefect artifacts;
- `deployments`: the deployments of prefect.yaml: `sipas deploy` (work pool, `prefect deploy --all`, the automation),
  `sipas serve`, and the pull step a worker runs;
- `notifications`: the automation that tells people of a Failed, Crashed or Late run (webhook and other blocks);
- `server`: the embedded Prefect server's lifecycle (the only module that touches a private Prefect name).

Prefect's defaults (`config.prefect_defaults`) are applied by the command that starts a run, before Prefect is
imported, never by importing this package."""

from sipas_pipeline.config import prefect_defaults
from sipas_pipeline.orchestration.flow import annual_run, run_year
from sipas_pipeline.orchestration.run import RunRecord, RunResult, cached_stage, survey_year
from sipas_pipeline.orchestration.server import start_embedded_server, stop_orphan_servers

__all__ = ["RunRecord", "RunResult", "annual_run", "cached_stage", "prefect_defaults", "run_year",
           "start_embedded_server", "stop_orphan_servers", "survey_year"]
