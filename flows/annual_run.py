"""Prefect deployments of the SIPAS / PAR INDEX pipeline.

The flow itself lives in the package (`sipas_pipeline.orchestration.flow.annual_run`) so that the
`sipas` command and these deployments run the same definition (`orchestration.deployments`).

    prefect server start                           # in one terminal (UI on http://127.0.0.1:4200)
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python flows/annual_run.py                     # serves "annual" (cron, Asia/Ho_Chi_Minh) and "manual-rerun"
    prefect deployment run 'sipas-annual-run/manual-rerun' -p year=2024 -p raw=data/2024/raw
"""

from __future__ import annotations

import argparse

from sipas_pipeline.config import prefect_defaults

prefect_defaults()  # Prefect reads its settings when imported: the defaults go first
from sipas_pipeline.orchestration import annual_run, deployments  # noqa: E402

__all__ = ["annual_run", "deployments"]


def main() -> None:
    """Serve both deployments until interrupted."""
    from prefect import serve

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", help="raw year folder for the scheduled run (default data/<year>/raw)")
    parser.add_argument("--db", help="DuckDB file (default data/sipas.duckdb)")
    args = parser.parse_args()
    serve(*deployments(raw=args.raw, db=args.db))


if __name__ == "__main__":
    main()
