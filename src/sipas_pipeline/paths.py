"""Where the project's files live: schemas, generated data, the default DuckDB file."""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def schemas_root() -> Path:
    """The folder holding `<year>/` methodology folders and `duckdb/` SQL: `SIPAS_SCHEMAS` when set, else
    the copy an installed wheel carries (`sipas_pipeline/schemas`), else the checkout's top-level
    `schemas/` (an editable install). Never the current directory."""
    env = os.environ.get("SIPAS_SCHEMAS")
    if env:
        return Path(env)
    packaged = Path(str(resources.files("sipas_pipeline").joinpath("schemas")))
    if (packaged / "duckdb").is_dir():
        return packaged
    return PROJECT_ROOT / "schemas"


DATA_ENV = "SIPAS_DATA"  # the data root: raw years, work folders, corrections, the DuckDB file


def data_root() -> Path:
    """The data root, absolute: `SIPAS_DATA` when set (what a deployment carries to its worker), else ./data (the
    command line in a checkout). Everything a run names relatively resolves against it (`under_root`)."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser().absolute() if env else Path.cwd() / "data"


def under_root(path: str | Path | None, default: Path | None = None) -> Path:
    """A path a run was given: absolute as it is, relative under the data root (never the current directory of the
    process that serves the run); None gives `default`."""
    if path is None or str(path) == "":
        if default is None:
            raise ValueError("under_root: no path and no default")
        return default
    p = Path(path).expanduser()
    return p if p.is_absolute() else data_root() / p


def corrections_dir() -> Path:
    """Where correction files named without a folder live: <data root>/corrections."""
    return data_root() / "corrections"


def correction_names(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """The `corrections` a run was given, one name or a list (Prefect passes `-p corrections=fix.csv` as a string)."""
    if value is None:
        return []
    return [value] if isinstance(value, str | Path) else [str(v) for v in value]


def correction_path(name: str | Path) -> Path:
    """A correction file as a run names it: absolute as it is; relative under <data root>/corrections, or under the
    data root itself when it is there and not in the corrections folder (`corrections/fix.csv` names the same file
    as `fix.csv`)."""
    p = Path(name).expanduser()
    if p.is_absolute():
        return p
    in_folder, in_root = corrections_dir() / p, data_root() / p
    return in_root if not in_folder.exists() and in_root.exists() else in_folder


def year_dir(year: int, part: str) -> Path:
    """A year's default folder under the data root: `raw` (the exports) or `work` (the stages' Parquet)."""
    return data_root() / str(year) / part


def default_db() -> Path:
    """Where results are published unless told: data/sipas.duckdb."""
    return data_root() / "sipas.duckdb"


MARKER = ".sipas-made"  # written in every folder the tool creates: proof that it may empty or replace it


def demo_dir(year: int) -> Path:
    """Where the synthetic demo year lives (`--demo`), apart from real exports: data/demo/<year>/raw."""
    return data_root() / "demo" / str(year) / "raw"


def made_by_us(folder: Path) -> bool:
    """Whether the tool created `folder` (its marker file is there)."""
    return (Path(folder) / MARKER).is_file()


def marker_purpose(folder: Path) -> str | None:
    """What the tool made `folder` for, as its marker says ("report", "synthetic year", ...); None without a marker."""
    try:
        text = (Path(folder) / MARKER).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text.removeprefix("made by sipas: ").split(";", 1)[0].strip()


def write_marker(folder: Path, what: str) -> None:
    """Mark `folder` as made by the tool for `what`."""
    (Path(folder) / MARKER).write_text(f"made by sipas: {what}; sipas may empty or replace this folder\n",
                                       encoding="utf-8")


def fresh_dir(folder: Path, what: str) -> Path:
    """An empty folder for the tool to fill: created (with its marker) when missing; emptied when the tool
    made it before; used as it is when it exists but is empty. A folder with files the tool did not
    make is never touched: InputError, one line."""
    from sipas_pipeline.errors import InputError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: not a folder (cannot write the {what} there)")
    if folder.is_dir() and any(folder.iterdir()):
        if not made_by_us(folder):
            raise InputError(f"{folder}: not empty and not made by sipas (no {MARKER} marker): "
                             f"nothing deleted; choose an empty or new folder for the {what}")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_marker(folder, what)
    return folder
