"""Progress of the fieldwork against the design: forms received, valid and quarantined per province, commune
and village (citizens) and per province and respondent type (officials), against the target sample of the
methodology (`fieldwork.target_forms`, spread over the sampled villages of the frame, or the provinces), with
the date of the last batch and a behind-schedule flag.

The tallies are sums per unit (received, valid), updated by each batch like the estimates' statistics: a batch
adds its rows, a re-sent batch takes its earlier version's rows out, a retracted form moves from valid to
quarantined. "As of" is the latest form date the season has seen (so a replayed season reads as it did then);
the expected forms by then are the target times the share of the survey window elapsed.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl

from sipas_pipeline.methodology import Methodology
from sipas_pipeline.synth.year import allocate

UNITS = {"citizen": ["province_code", "commune_code", "village_code"], "official": ["province_code", "respondent_type"]}
TALLY = ["source", "province_code", "commune_code", "village_code", "respondent_type"]


def tally(source: str, bronze: pl.DataFrame, silver: pl.DataFrame, sign: int = 1) -> pl.DataFrame:
    """Rows read and valid per unit of one version of a batch (negated with `sign=-1`)."""
    flags = bronze.join(silver.select("source_row", pl.lit(1).alias("v")), on="source_row", how="left")
    cols = [pl.col(c).cast(pl.Utf8) if c in flags.columns else pl.lit(None, pl.Utf8).alias(c) for c in TALLY[1:]]
    return (flags.select(pl.lit(source).alias("source"), *cols, pl.col("v").fill_null(0).alias("valid"))
            .group_by(TALLY).agg((pl.len() * sign).cast(pl.Int64).alias("read"), (pl.col("valid").sum() * sign)
                                 .cast(pl.Int64).alias("valid")))


def retracted_tally(source: str, forms: pl.DataFrame) -> pl.DataFrame:
    """Valid forms that became quarantined: valid -1 each, read unchanged."""
    return tally(source, forms, forms, -1).with_columns(pl.lit(0, pl.Int64).alias("read"))


def add_tallies(*frames: pl.DataFrame) -> pl.DataFrame:
    """Sums of tallies per unit (units left with nothing read dropped)."""
    both = pl.concat([f for f in frames if f.height], how="vertical_relaxed") if any(f.height for f in frames) else frames[0]
    return (both.group_by(TALLY).agg(pl.col("read").sum(), pl.col("valid").sum())
            .filter((pl.col("read") != 0) | (pl.col("valid") != 0)).sort(TALLY, nulls_last=True))


def empty_tally() -> pl.DataFrame:
    return pl.DataFrame(schema={**{c: pl.Utf8 for c in TALLY}, "read": pl.Int64, "valid": pl.Int64})


_TARGETS: dict[tuple[str, float], dict[str, pl.DataFrame]] = {}


def targets(m: Methodology, scale: float = 1.0) -> dict[str, pl.DataFrame]:
    """The target forms per sampled village (citizens) and per province (officials), times `scale` (made once per
    methodology content and scale)."""
    key = (m.content_hash, scale)
    if key not in _TARGETS:
        _TARGETS[key] = _targets(m, scale)
    return _TARGETS[key]


def _targets(m: Methodology, scale: float) -> dict[str, pl.DataFrame]:
    spec = {k: round(int(v) * scale) for k, v in m.meta.get("fieldwork", {}).get("target_forms", {}).items()}
    villages = m.sampling_frame.select("province_code", "commune_code", "village_code").sort("village_code")
    cit = villages.with_columns(pl.Series("target", allocate(int(spec.get("citizen", 0)), np.ones(villages.height))))
    provinces = m.provinces.select("province_code").sort("province_code")
    off = provinces.with_columns(pl.Series("target", allocate(int(spec.get("official", 0)), np.ones(provinces.height))))
    return {"citizen": cit, "official": off}


def window_share(m: Methodology, as_of: date | None) -> float:
    """The share of the survey window elapsed on `as_of` (0 before it starts, 1 after it ends)."""
    w = m.meta.get("survey_window")
    if not w or as_of is None:
        return 0.0
    start, end = (date.fromisoformat(str(w[k])) for k in ("start", "end"))
    return min(max(((as_of - start).days + 1) / ((end - start).days + 1), 0.0), 1.0)


def as_of_date(ledger: list[dict[str, Any]], m: Methodology) -> date | None:
    """The latest form date inside the survey window among the batches taken."""
    w = m.meta.get("survey_window") or {}
    end = date.fromisoformat(str(w["end"])) if "end" in w else None
    days = [date.fromisoformat(e["fieldwork_date"]) for e in ledger if e.get("fieldwork_date") and e["status"] == "taken"]
    days = [d for d in days if end is None or d <= end]
    return max(days) if days else None


def last_batches(ledger: list[dict[str, Any]]) -> pl.DataFrame:
    """Per source and province: the date of its last batch (latest form date) and how many batches it sent."""
    rows = [{"source": e["source"], "province_code": p, "date": e.get("fieldwork_date")}
            for e in ledger if e["status"] in ("taken", "superseded") for p in e.get("provinces", [])]
    if not rows:
        return pl.DataFrame(schema={"source": pl.Utf8, "province_code": pl.Utf8, "last_batch_date": pl.Utf8, "batches": pl.Int64})
    return (pl.DataFrame(rows, schema={"source": pl.Utf8, "province_code": pl.Utf8, "date": pl.Utf8})
            .group_by("source", "province_code").agg(pl.col("date").max().alias("last_batch_date"),
                                                     pl.len().cast(pl.Int64).alias("batches")))


def progress(m: Methodology, tallies: pl.DataFrame, ledger: list[dict[str, Any]], scale: float = 1.0) -> pl.DataFrame:
    """One row per (source, level, unit): target, received, valid, quarantined, coverage (valid / target),
    expected by the as-of date, behind_schedule (provinces only), last_batch_date and batches (provinces)."""
    as_of = as_of_date(ledger, m)
    share = window_share(m, as_of)
    threshold = float(m.meta.get("fieldwork", {}).get("behind_schedule", 0.8))
    t = targets(m, scale)
    frames = []
    for source, units in UNITS.items():
        got = tallies.filter(pl.col("source") == source)
        for depth, level in enumerate(units):
            keys = units[: depth + 1]
            counts = got.group_by(keys).agg(pl.col("read").sum().alias("received"), pl.col("valid").sum())
            if level in ("province_code", "commune_code", "village_code") and (source == "citizen" or level == "province_code"):
                aim = t[source].group_by(keys).agg(pl.col("target").sum())
                table = aim.join(counts, on=keys, how="full", coalesce=True)
            else:
                table = counts.with_columns(pl.lit(None, pl.Int64).alias("target"))
            frames.append(table.with_columns(pl.lit(source).alias("source"), pl.lit(level.removesuffix("_code")).alias("level"),
                                             pl.col(level).alias("unit_code"),
                                             pl.col("province_code").alias("province_code")).select(
                "source", "level", "unit_code", "province_code", pl.col("target").cast(pl.Int64),
                pl.col("received").fill_null(0).cast(pl.Int64), pl.col("valid").fill_null(0).cast(pl.Int64)))
    out = pl.concat(frames).with_columns(
        (pl.col("received") - pl.col("valid")).alias("quarantined"),
        pl.when(pl.col("target") > 0).then(pl.col("valid") / pl.col("target")).alias("coverage"),
        (pl.col("target") * share).alias("expected"))
    out = out.with_columns(pl.when(pl.col("level") == "province")
                           .then(pl.col("valid") < threshold * pl.col("expected")).alias("behind_schedule"))
    last = last_batches(ledger)
    out = out.join(last.with_columns(pl.lit("province").alias("level")), on=["source", "level", "province_code"], how="left")
    return out.with_columns(pl.lit(str(as_of) if as_of else None, pl.Utf8).alias("as_of")).sort(
        "source", "level", "province_code", "unit_code", nulls_last=True)
