"""The deployments of prefect.yaml served from this process, as `sipas serve` does (kept for those who started
them with `python flows/annual_run.py`). Stopping it pauses every deployment it served: in service, register them
with `sipas deploy` and run a worker (docs/operating.md)."""

from __future__ import annotations

from sipas_pipeline.config import prefect_defaults

prefect_defaults()  # Prefect reads its settings when imported: the defaults go first
from sipas_pipeline.orchestration.deployments import prefect_file, serve  # noqa: E402

if __name__ == "__main__":
    serve(prefect_file())
