"""The work folder's catalog: the one module that spells a path under a run's work folder, and the one
caching mechanism (content-keyed folders, one manifest per stage output as the only proof it is complete).

    <work>/raw-<corrections key>/                 the raw folder with re-sent batches (links), when any
    <work>/inputs-<inputs key>/                   one StageFolder per content of the inputs:
        bronze/<source>/<batch>.parquet           ingest       (manifest bronze/_manifest.json)
        silver/<source>.parquet, quarantine/…     validate     (manifest silver/_manifest.json)
        results/<table>.parquet                   compute      (manifest results/_manifest.json)
        corrected-<corrections key>/              correct: a StageFolder of its own (silver/, quarantine/,
                                                  results/), its manifest silver/_manifest.json
    <work>/runs/<run_id>.json                     the run record (RunRecord), written at the end of a run
    <work>/.sipas-run.lock                        held by the one run using the work folder (run, year, PID, since)

A stage's manifest is written last, after every file of its output, and holds the stage's content key and
its report: a stage whose manifest is there with the same key is not run again (a cache hit); anything
else (no manifest, another key, a folder emptied by hand) runs it again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sipas_pipeline.errors import InputError
from sipas_pipeline.locking import pid_lock

MANIFEST = "_manifest.json"
KEY_CHARS = 16  # characters of a content key in a folder name
MANIFEST_DIRS = {"ingest": "bronze", "validate": "silver", "correct": "silver", "compute": "results"}  # stage -> output


@dataclass(frozen=True)
class StageFolder:
    """The Parquet outputs of ingest, validate and compute for one content of the inputs (or one
    corrected version of it); a plain work folder given to `sipas validate --work` is one too."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def bronze_dir(self) -> Path:
        return self.root / "bronze"

    @property
    def silver_dir(self) -> Path:
        return self.root / "silver"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def report_dir(self) -> Path:
        """The analyst release made after publish (report.build)."""
        return self.root / "report"

    def bronze(self, source: str) -> Path:
        """Folder of a source's bronze Parquet (one file per batch)."""
        return self.bronze_dir / source

    def bronze_files(self, source: str) -> list[Path]:
        """A source's bronze Parquet files, sorted."""
        return sorted(self.bronze(source).glob("*.parquet"))

    def silver(self, source: str) -> Path:
        return self.silver_dir / f"{source}.parquet"

    def quarantine(self, source: str) -> Path:
        return self.quarantine_dir / f"{source}.parquet"

    def quarantine_files(self) -> list[Path]:
        return sorted(self.quarantine_dir.glob("*.parquet"))

    def result(self, table: str) -> Path:
        return self.results_dir / f"{table}.parquet"

    def result_files(self) -> list[Path]:
        return sorted(self.results_dir.glob("*.parquet"))

    def corrected(self, corrections_key: str) -> StageFolder:
        """The folder of this input's silver, quarantine and results after the row corrections `corrections_key`."""
        return StageFolder(self.root / f"corrected-{corrections_key[:KEY_CHARS]}")

    # ---- manifests: the proof a stage's output is complete -------------------------------------------------
    def manifest(self, stage: str) -> Path:
        """Where the manifest of `stage`'s output lives (inside the folder the stage fills, so emptying that
        folder removes the proof too)."""
        return self.root / MANIFEST_DIRS[stage] / MANIFEST

    def write_manifest(self, stage: str, key: str, report: dict[str, Any]) -> None:
        """Record `stage`'s output as complete for `key`, with its report (call after every file is written)."""
        path = self.manifest(stage)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"stage": stage, "key": key, "report": report}, ensure_ascii=False, default=str),
                       encoding="utf-8")
        tmp.replace(path)

    def cached(self, stage: str, key: str) -> dict[str, Any] | None:
        """`stage`'s report when its output is complete for `key` (a cache hit), else None."""
        try:
            manifest = json.loads(self.manifest(stage).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return manifest["report"] if manifest.get("stage") == stage and manifest.get("key") == key else None

    def forget(self, stage: str) -> None:
        """Remove `stage`'s manifest before its output is rewritten (a half-written output is never a hit)."""
        self.manifest(stage).unlink(missing_ok=True)


@dataclass(frozen=True)
class Catalog:
    """A run's work folder: where each stage's output for a given content lives, and the run records."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def overlay(self, corrections_key: str) -> Path:
        """The raw folder as it stands after the `replace_batch` corrections of `corrections_key` (links)."""
        return self.root / f"raw-{corrections_key[:KEY_CHARS]}"

    def inputs(self, inputs_key: str) -> StageFolder:
        """The stage outputs of the inputs whose content key is `inputs_key`."""
        return StageFolder(self.root / f"inputs-{inputs_key[:KEY_CHARS]}")

    def input_folders(self) -> list[StageFolder]:
        """Every inputs folder made under this work folder (tests and benchmarks look inside)."""
        return [StageFolder(p) for p in sorted(self.root.glob("inputs-*")) if p.is_dir()]

    @property
    def lock_file(self) -> Path:
        """Held by the one run using this work folder (two runs at once would read each other's half-written Parquet)."""
        return self.root / ".sipas-run.lock"

    @contextlib.contextmanager
    def holding(self, run_id: str, year: int) -> Iterator[list[str]]:
        """Hold the work folder for run `run_id`: a second run meanwhile fails at once with one line (InputError)
        naming the holder; the marker of a run that died is taken over (a note, yielded). OS errors (a work folder
        under a file, a full disk) are raised as they are, for the run to record and word."""
        self.root.mkdir(parents=True, exist_ok=True)

        def busy(held: dict) -> Exception:
            who = (f"run {held['run_id']} (year {held['year']}, PID {held['pid']}, since {held['since']})"
                   if "run_id" in held else "another run")
            return InputError(f"{self.root}: the work folder is in use by {who}; nothing was done: run again when it has "
                              "finished, or give another --work")

        def taken(old: dict, state: str) -> str:
            return (f"{self.lock_file}: took over the work folder from run {old.get('run_id')} (PID {old['pid']}, "
                    f"{state}), which stopped before it finished")

        with pid_lock(self.lock_file, {"run_id": run_id, "year": year}, busy, lambda exc: exc, taken) as notes:
            yield notes

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_record(self, run_id: str) -> Path:
        """The JSON record of run `run_id` (what the flow returned)."""
        return self.runs_dir / f"{run_id}.json"
