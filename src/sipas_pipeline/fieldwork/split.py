"""A synthetic year split into the batches its fieldwork would have sent (`sipas sample --fieldwork DIR`).

    DIR/year/                        the synthetic year (`generate_year`: raw exports, truth/)
    DIR/batches/<source>/<day>/FILE  every batch as it arrives, FILE = <YYYYMMDDTHHMM>_<team>_<nnnn>.csv (UTC)
    DIR/schedule.csv                 one row per arrival: when, source, team, file, rows, kind
    DIR/annual/                      the same forms as a raw year (the last version of each batch, and the
                                     appraisal export): what the annual run reads to compare with fieldwork

Each team (one per province and source: citizens' interviewers `ktv-<code>`, the province's officials' e-survey
`cc-<code>`) sends its forms in date order, in batches of a realistic mix of sizes (gamma, shape 2) a few hours to
a day after the last interview; three teams send late (one to three weeks). One citizens' batch arrives with a
wrong province code on every row and is re-sent with the code fixed two days later (same file name, other
bytes); one batch is sent twice with the same bytes.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sipas_pipeline.fieldwork.season import FIELDWORK_SOURCES, write_beside
from sipas_pipeline.ingest.bronze import header_score, map_headers, source_fields, to_bronze
from sipas_pipeline.ingest.bronze import list_files as export_files
from sipas_pipeline.ingest.normalize import province_lookup
from sipas_pipeline.ingest.readers import read_table
from sipas_pipeline.methodology import Methodology, load_methodology
from sipas_pipeline.paths import fresh_dir

TEAM_PREFIX = {"citizen": "ktv", "official": "cc"}
WRONG_CODE = "99"  # no province has it
MEAN_FORMS = 86  # forms per batch on average: about 1,000 batches in a full-size year


def export_rows(m: Methodology, source: str, raw: Path) -> pl.DataFrame:
    """Every row of a source's exports as text under its export headers, with the bronze province and date
    beside (`_province`, `_day`) for splitting (the rows themselves are written as they were read)."""
    frames = []
    for path in export_files(raw / m.meta["sources"][source]["folder"]):
        table = read_table(path, score=header_score(source_fields(m, source)))
        bronze, _ = to_bronze(table, m, source, path.name, "", province_lookup(m))
        date_field = m.meta["sources"][source]["date_field"]
        frames.append(table.frame.cast(pl.Utf8).with_columns(
            bronze["province_code"].alias("_province"), bronze[date_field].str.to_date(strict=False).alias("_day")))
    rows = pl.concat(frames, how="diagonal_relaxed")
    return rows.with_columns(pl.col("_province").forward_fill().backward_fill())


def split_year(year: int, out: Path, seed: int = 7, scale: float = 1.0, mean_forms: int = MEAN_FORMS,
               team_size: int = 1) -> dict[str, Any]:
    """Generate a synthetic year under `out/year` and split it into timestamped batches (see the module)."""
    from sipas_pipeline.synth import generate_year

    out = fresh_dir(Path(out), "synthetic fieldwork season")
    generate_year(year, out / "year", seed=seed, scale=scale)
    return split_raw(load_methodology(year), out / "year", out, seed, scale, mean_forms, team_size)


def split_raw(m: Methodology, raw: Path, out: Path, seed: int = 7, scale: float = 1.0, mean_forms: int = MEAN_FORMS,
              team_size: int = 1, exact: bool = False) -> dict[str, Any]:
    """Split the raw year `raw` (citizen/, official/, appraisal/) into timestamped batches under `out` (see the
    module). A team covers `team_size` provinces (1: one per province; more makes a small season of few batches);
    `scale` is recorded as the season's target scale; `exact` makes every batch `mean_forms` forms (a team's last
    one the rest), for benchmarks."""
    if Path(raw).parent != Path(out):  # else split_year made `out` and generated the year inside it
        out = fresh_dir(Path(out), "synthetic fieldwork season")
    year = m.year
    rng = np.random.default_rng([seed, 2107])
    window = m.meta["survey_window"]
    start_day, end_day = (date.fromisoformat(str(window[k])) for k in ("start", "end"))
    schedule = []
    for source in FIELDWORK_SOURCES:
        rows = export_rows(m, source, raw)
        codes = rows["_province"].unique().sort().to_list()
        teams = {codes[i]: codes[i:i + team_size] for i in range(0, len(codes), team_size)}
        late = set(rng.choice(list(teams), size=min(3, len(teams) - 1), replace=False).tolist())
        for team_code, members in teams.items():
            mine = rows.filter(pl.col("_province").is_in(members)).sort("_day", nulls_last=True, maintain_order=True)
            sizes, left = [], mine.height
            while left > 0:
                sizes.append(min(left, mean_forms if exact else max(5, int(rng.gamma(2.0, mean_forms / 2)))))
                left -= sizes[-1]
            delay = timedelta(days=int(rng.integers(7, 22))) if team_code in late else timedelta(0)
            start = 0
            for k, size in enumerate(sizes, 1):
                chunk = mine.slice(start, size)
                start += size
                inside = chunk["_day"].drop_nulls().filter(chunk["_day"].drop_nulls().is_between(start_day, end_day))
                last = inside.max() or end_day  # a form dated outside the window (a defect) does not date its batch
                at = (datetime(last.year, last.month, last.day, 17, tzinfo=UTC) + delay
                      + timedelta(minutes=int(rng.integers(60, 60 * 30))))
                team = f"{TEAM_PREFIX[source]}-{team_code}"
                schedule.append({"at": at, "source": source, "team": team, "file": f"{at:%Y%m%dT%H%M}_{team}_{k:04d}.csv",
                                 "kind": "late" if delay else "normal", "frame": chunk.drop("_province", "_day")})
    schedule.sort(key=lambda b: (b["at"], b["file"]))
    (out / "season.json").write_text(json.dumps({"year": year, "seed": seed, "scale": scale, "team_size": team_size}) + "\n",
                                     encoding="utf-8")
    citizen = [i for i, b in enumerate(schedule) if b["source"] == "citizen"]
    wrong = schedule[citizen[len(citizen) // 3]]
    dup = schedule[citizen[len(citizen) // 2]]
    mapping, _, _ = map_headers(wrong["frame"].columns, source_fields(m, "citizen"))
    province_col = next(c for c, f in mapping.items() if f == "province_code")
    fixed = dict(wrong, at=wrong["at"] + timedelta(days=2), kind="resent_fixed")
    wrong.update(kind="wrong_province_code", frame=wrong["frame"].with_columns(pl.lit(WRONG_CODE).alias(province_col)))
    again = dict(dup, at=dup["at"] + timedelta(days=1), kind="sent_twice")
    schedule = sorted([*schedule, fixed, again], key=lambda b: (b["at"], b["file"]))
    return write_season(m, raw, out, schedule)


def write_season(m: Methodology, raw: Path, out: Path, schedule: list[dict[str, Any]]) -> dict[str, Any]:
    """Write the batches, the schedule and the annual raw folder (last version of each batch)."""
    annual = out / "annual"
    for source in (*FIELDWORK_SOURCES, "appraisal"):
        (annual / m.meta["sources"][source]["folder"]).mkdir(parents=True, exist_ok=True)
    rows = []
    for b in schedule:
        folder = m.meta["sources"][b["source"]]["folder"]
        path = out / "batches" / folder / f"{b['at']:%Y-%m-%d}" / b["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(b["frame"].write_csv(), encoding="utf-8")
        (annual / folder / b["file"]).write_bytes(path.read_bytes())  # a later version replaces an earlier one
        rows.append({"arrives_at": b["at"].isoformat(timespec="minutes"), "source": b["source"], "team": b["team"],
                     "file": path.relative_to(out).as_posix(), "rows": b["frame"].height, "kind": b["kind"]})
    for p in export_files(raw / m.meta["sources"]["appraisal"]["folder"]):
        (annual / "appraisal" / p.name).write_bytes(p.read_bytes())
    table = pl.DataFrame(rows)
    table.write_csv(out / "schedule.csv")
    forms = dict(table.group_by("source").agg(pl.col("rows").sum()).iter_rows())
    return {"year": m.year, "batches": table.height, "forms": forms,
            "kinds": dict(sorted(table.group_by("kind").len().iter_rows())), "schedule": "schedule.csv",
            "first": rows[0]["arrives_at"], "last": rows[-1]["arrives_at"]}


def replay(out: Path, inbox: Path, upto: int | None = None, start: int = 0) -> list[Path]:
    """Copy the batches of a split season into an inbox in arrival order (rows `start` to `upto` of the schedule),
    each under `<source>/<day>/`; return the paths written."""
    table = pl.read_csv(Path(out) / "schedule.csv").slice(start, None if upto is None else upto - start)
    written = []
    for rel in table["file"]:
        src = Path(out) / rel
        dst = Path(inbox) / Path(rel).relative_to("batches")
        write_beside(dst, lambda p, s=src: shutil.copyfile(s, p))  # whole or not at all: see inbox.pending
        written.append(dst)
    return written
