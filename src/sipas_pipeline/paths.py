"""Where the project's files live: schemas, generated data, the default DuckDB file."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def schemas_root() -> Path:
    """The folder holding `<year>/` methodology folders (`SIPAS_SCHEMAS` overrides it)."""
    env = os.environ.get("SIPAS_SCHEMAS")
    if env:
        return Path(env)
    for candidate in (Path.cwd() / "schemas", PROJECT_ROOT / "schemas"):
        if (candidate / "duckdb").is_dir() or any(candidate.glob("[0-9][0-9][0-9][0-9]")):
            return candidate
    return PROJECT_ROOT / "schemas"


def data_root() -> Path:
    """Generated data (synthetic years, bronze/silver Parquet, runs): `SIPAS_DATA` or ./data."""
    return Path(os.environ.get("SIPAS_DATA", Path.cwd() / "data"))


def year_dir(year: int, part: str) -> Path:
    """A year's default folder under the data root: `raw` (the exports) or `work` (the stages' Parquet)."""
    return data_root() / str(year) / part


def default_db() -> Path:
    """Where results are published unless told: data/sipas.duckdb."""
    return data_root() / "sipas.duckdb"
