"""The season's folder: what fieldwork has taken so far, kept beside the year's other data.

    <season>/                          data/<year>/fieldwork (made by sipas, with its marker)
        batches.json                   the ledger: one entry per file taken (content hash, counts, status)
        received/<source>/<sha8>/FILE  the bytes that were read (copied while hashed)
        bronze/<source>/<batch>@<sha8>.parquet      each taken version's rows (no personal data)
        silver/<source>/<batch>@<sha8>.parquet      its valid forms (the season's silver is their union)
        quarantine/<source>/<batch>@<sha8>.parquet  its quarantined rows, with every reason
        keys/<source>.parquet          every keyed row of the active versions with its version's seq
                                       (cross-batch duplicates)
        state/cells.parquet            citizens' integer counts per (province, stratum, PSU, weight)
        state/official.npz             officials' moments per province (`OfficialMoments`)
        state/sipas_provinces.parquet  the provinces' provisional SIPAS (the page's, updated per batch)

Files are replaced by writing beside them and renaming, and the ledger is written last: a batch whose ledger
entry is missing was not taken (its partial files are overwritten when it is taken again).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sipas_pipeline.indicators import indicator_cells
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.par_index import OfficialMoments, official_moments
from sipas_pipeline.paths import fresh_dir, made_by_us, year_dir

FIELDWORK_SOURCES = ("citizen", "official")  # the appraisal is not fieldwork: it arrives once, after the window


def season_dir(year: int) -> Path:
    """The season's folder of a year: data/<year>/fieldwork under the data root."""
    return year_dir(year, "fieldwork")


def inbox_dir(year: int) -> Path:
    """Where a year's batches arrive: data/<year>/incoming/<source>/ (any depth below)."""
    return year_dir(year, "incoming")


def write_beside(path: Path, write: Any) -> None:
    """`write(tmp)` then rename tmp over `path` (a reader sees the old file or the new one, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


@contextlib.contextmanager
def season_lock(root: Path) -> Iterator[None]:
    """Hold the season's lock (one taker at a time); a second taker waits."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_frame(path: Path, frame: pl.DataFrame) -> None:
    """A Parquet file written beside its target and renamed over it."""
    write_beside(path, frame.write_parquet)


def form_schema(m: Methodology, source: str) -> dict[str, pl.DataType]:
    """The silver columns of a source's form (no rows): what the reductions read."""
    types = {"int": pl.Int64, "float": pl.Float64, "date": pl.Date}
    form = m.forms[source].filter(pl.col("pii") == "no")
    return {f: types.get(d, pl.Utf8) for f, d in form.select("field_id", "dtype").iter_rows()}


@dataclass(frozen=True)
class Season:
    """A season's folder (see the module's docstring)."""

    root: Path

    @classmethod
    def open(cls, root: Path, target_scale: float | None = None) -> Season:
        """The season at `root`, made (with its marker) when missing or empty; a folder of other files is refused.
        `target_scale` (kept in season.json) scales the methodology's target sample: 1 for a real season, the
        scale of a synthetic year replayed (`sipas sample --scale`)."""
        root = Path(root)
        if not (made_by_us(root) and (root / "batches.json").is_file()):
            if root.is_dir() and not any(p.name != ".lock" for p in root.iterdir()):
                (root / ".lock").unlink(missing_ok=True)
            fresh_dir(root, "fieldwork season")
            (root / "batches.json").write_text("[]\n", encoding="utf-8")
        season = cls(root)
        if target_scale is not None and target_scale != season.target_scale:
            (root / "season.json").write_text(json.dumps({"target_scale": float(target_scale)}) + "\n", encoding="utf-8")
        return season

    @property
    def target_scale(self) -> float:
        path = self.root / "season.json"
        return float(json.loads(path.read_text(encoding="utf-8"))["target_scale"]) if path.is_file() else 1.0

    @property
    def page_path(self) -> Path:
        """The fieldwork page (rewritten by each refresh)."""
        return self.root / "fieldwork.html"

    def version(self, kind: str, source: str, batch_id: str, sha: str) -> Path:
        """The Parquet of one taken version of a batch (`kind` bronze, silver or quarantine)."""
        return self.root / kind / source / f"{batch_id}@{sha[:8]}.parquet"

    def received(self, source: str, sha: str, name: str) -> Path:
        return self.root / "received" / source / sha[:8] / name

    def keys(self, source: str) -> Path:
        return self.root / "keys" / f"{source}.parquet"

    @property
    def cells_path(self) -> Path:
        return self.root / "state" / "cells.parquet"

    @property
    def tallies_path(self) -> Path:
        return self.root / "state" / "progress.parquet"

    def tallies(self) -> pl.DataFrame:
        """Rows read and valid per unit so far (`progress.tally`)."""
        from sipas_pipeline.fieldwork.progress import empty_tally

        return pl.read_parquet(self.tallies_path) if self.tallies_path.is_file() else empty_tally()

    @property
    def sipas_path(self) -> Path:
        return self.root / "state" / "sipas_provinces.parquet"

    def province_sipas(self) -> pl.DataFrame | None:
        """The provinces' provisional SIPAS as the last batch left them (None before the first page)."""
        return pl.read_parquet(self.sipas_path) if self.sipas_path.is_file() else None

    @property
    def official_path(self) -> Path:
        return self.root / "state" / "official.npz"

    # ---- the ledger -------------------------------------------------------------------------------------------
    def ledger(self) -> list[dict[str, Any]]:
        return json.loads((self.root / "batches.json").read_text(encoding="utf-8"))

    def save_ledger(self, entries: list[dict[str, Any]]) -> None:
        """One entry per line (json's C encoder: an indented dump is pure Python, ~0.1 s at 250 entries)."""
        text = "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries) + "\n]\n"
        write_beside(self.root / "batches.json", lambda p: p.write_text(text, encoding="utf-8"))

    # ---- the sufficient statistics -----------------------------------------------------------------------------
    def cells(self, m: Methodology) -> pl.DataFrame:
        """The citizens' counts so far (no forms: the empty cells frame of the year's indicators)."""
        if self.cells_path.is_file():
            return pl.read_parquet(self.cells_path)
        return empty_cells(m)

    def official(self, m: Methodology) -> OfficialMoments:
        """The officials' moments so far (no forms: zeros)."""
        if not self.official_path.is_file():
            return empty_moments(m)
        with np.load(self.official_path) as z:
            return OfficialMoments(tuple(z["codes"].tolist()), tuple(z["subcriteria"].tolist()), z["n"], z["s"], z["c"], z["m"])

    def save_state(self, cells: pl.DataFrame, official: OfficialMoments, tallies: pl.DataFrame) -> None:
        write_frame(self.cells_path, cells)
        write_frame(self.tallies_path, tallies)

        def npz(p: Path) -> None:
            with p.open("wb") as f:
                np.savez(f, codes=np.array(official.codes), subcriteria=np.array(official.subcriteria), n=official.n,
                         s=official.s, c=official.c, m=official.m)
        write_beside(self.official_path, npz)

    def silver(self, source: str) -> pl.DataFrame | None:
        """The season's valid forms of a source: the union of the active versions' silver (None when none)."""
        active = [self.version("silver", e["source"], e["batch_id"], e["sha256"]) for e in self.ledger()
                  if e["status"] == "taken" and e["source"] == source]
        frames = [pl.read_parquet(p) for p in active if p.is_file()]
        return pl.concat(frames, how="vertical_relaxed") if frames else None


def empty_cells(m: Methodology) -> pl.DataFrame:
    """The cells of no forms (the columns of the year's indicators)."""
    return indicator_cells(m, pl.DataFrame(schema=form_schema(m, "citizen")))


def empty_moments(m: Methodology) -> OfficialMoments:
    """The officials' moments of no forms."""
    return official_moments(m, pl.DataFrame(schema=form_schema(m, "official")))


def statistics_of(m: Methodology, source: str, forms: pl.DataFrame) -> pl.DataFrame | OfficialMoments:
    """What a set of valid forms of `source` adds to the season: the citizens' cells or the officials' moments."""
    return indicator_cells(m, forms) if source == "citizen" else official_moments(m, forms)
