"""The comparable series: the previous year re-estimated on this year's units (domain estimation).

When the units change (63 provinces in 2024 -> 34 units from 1 July 2025), a unit's previous-year value is not
an average of its old provinces' published percentages: it is estimated again from the previous year's silver
citizens' forms, the old provinces' forms pooled with their design weights, so that the estimate represents the
merged population. Nothing else changes: the strata and PSUs of the old provinces stay the design's (each
stratum lies in one old province, so in one unit), the variance is the same Taylor linearisation over them
(`indicators.estimate_indicators`), the tree the same linear combination (`indicators.sipas_tree`), all with
the previous year's methodology (its indicator set and tree). The year-on-year change (`ranking.change`, basis
'reestimated') is paired where this year's PSUs re-survey last year's (`paired.py`: the PSU scores of both years
differenced within the matched PSU, so the covariance of the years counts), else a difference of two independent
estimates with se = sqrt(se1^2 + se2^2).

The PAR INDEX is not comparable across the merger (its appraisal points belong to the old provinces and are not
a sample): it gets no previous value (methodology `comparable.par: not_comparable`), never an average.
The national mean is the mean of the units, so its definition changes with their number: the series publishes
the previous year's nation both as published (mean of the old provinces) and as the mean of the re-estimated
units (`nations`).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from sipas_pipeline.errors import InputError, MethodologyError
from sipas_pipeline.methodology import Methodology, load_methodology

BASIS = "reestimated"  # change_basis of a change against the re-estimated previous year
SIPAS_MEASURES = {"sipas": "sipas", "policy": "sipas_policy", "service": "sipas_service"}


def previous_methodology(m: Methodology) -> Methodology | None:
    """The previous year's methodology when this year's units differ from it (a `comparable:` block), else None."""
    if not m.comparable:
        return None
    return load_methodology(int(m.comparable["previous_year"]), m.root.parent)


def on_units(mapping: pl.DataFrame, citizen: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """The previous year's citizens' forms with `province_code` replaced by the unit each province became
    (`mapping`: from_code, to_code). A form of a province the mapping does not know is an error, never dropped."""
    known = mapping["from_code"].to_list()
    lazy = citizen.lazy()
    unknown = lazy.filter(~pl.col("province_code").is_in(known)).select("province_code").unique().collect()
    if unknown.height:
        raise MethodologyError([f"unit_mapping: provinces {sorted(unknown['province_code'].to_list())} of the previous "
                                "year's forms map to no unit"])
    out = lazy.with_columns(pl.col("province_code").replace_strict(known, mapping["to_code"].to_list()))
    return out if isinstance(citizen, pl.LazyFrame) else out.collect()


# design weights may sum to the frame's adults within this factor: a Horvitz-Thompson total varies, and a small year
# leaves villages without forms; weights normalised within a province (summing to its forms, or to 1) are off by
# a factor of a thousand or more
WEIGHT_FACTOR = 5.0


def check_weight_scale(prev: Methodology, citizen: pl.DataFrame | pl.LazyFrame, factor: float) -> None:
    """Pooling old provinces into a unit needs weights on one population scale: per old province the design weights
    must sum to its frame population (adults) within a `factor` (1/factor <= sum / adults <= factor). Weights
    normalised within a province (summing to its forms, or to 1) would give every old province the same say
    whatever its size: refuse, in one line naming the provinces."""
    weight = prev.design.weight
    sums = (citizen.lazy().group_by("province_code").agg(pl.col(weight).cast(pl.Float64).sum().alias("w")).collect()
            .join(prev.population_frame.group_by("province_code").agg(pl.col("population").sum().alias("pop")),
                  on="province_code", how="left")
            .with_columns((pl.col("w") / pl.col("pop")).alias("ratio")).sort("province_code"))
    bad = sums.filter(pl.col("ratio").is_null() | (pl.col("ratio") < 1 / factor) | (pl.col("ratio") > factor))
    if bad.height:
        shown = ", ".join(f"{r['province_code']} ({r['w']:,.0f} vs {r['pop'] or 0:,.0f})"
                          for r in bad.head(5).iter_rows(named=True))
        where = f"{bad.height} province{'s' if bad.height > 1 else ''}"
        raise InputError(f"{prev.year} citizens' forms: design weights ({weight}) do not sum to the frame's adults within "
                         f"a factor {factor:g} in {where}, e.g. {shown}: they are not on one population scale, "
                         "so old provinces cannot be pooled into new units; export the design weights "
                         "(inverse inclusion probabilities), not weights normalised within a province")


def reestimate(prev: Methodology, m: Methodology, citizen: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The previous year's SIPAS and parts on this year's units: province_code (the unit), measure, value, se,
    df, n, rank_national (among the units) and basis 'reestimated', with the previous year's indicators, tree
    and design; below them its PSU scores (`paired.measure_scores`: rows with stratum, psu and z, `split` parts
    them) for the paired change."""
    from sipas_pipeline.indicators import estimate_indicators, sipas_tree
    from sipas_pipeline.paired import measure_scores
    from sipas_pipeline.ranking import ranks

    est = estimate_indicators(prev, on_units(m.unit_mapping, citizen))
    tree = sipas_tree(prev, est).filter(pl.col("level") != "element")
    values = tree.select("province_code",
                         pl.when(pl.col("level") == "sipas").then(pl.lit("sipas"))
                         .otherwise(pl.lit("sipas_") + pl.col("node")).alias("measure"),
                         "value", pl.col("var").sqrt().alias("se"), "df", "n")
    ranked = ranks(m, values).drop("rank_regional", "region_code").with_columns(pl.lit(BASIS).alias("basis"))
    return pl.concat([ranked, measure_scores(prev, est)], how="diagonal_relaxed")


def split(previous: pl.DataFrame | None) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """A previous year from `reestimate` -> (its values, its PSU scores: province_code, measure, stratum, psu, z);
    a previous year without PSU scores (own results, published figures) -> (itself, None)."""
    if previous is None or "psu" not in previous.columns:
        return previous, None
    values = previous.filter(pl.col("psu").is_null()).drop("stratum", "psu", "z")
    scores = previous.filter(pl.col("psu").is_not_null()).select("province_code", "measure", "stratum", "psu", "z")
    return values, scores


def nations(previous_units: pl.DataFrame, previous_published: pl.DataFrame | None) -> pl.DataFrame:
    """The previous year's national figure per measure in both definitions: the mean of the re-estimated units
    (comparable with this year's nation) and the nation as the previous year computed it (mean of its provinces)."""
    previous_units, _ = split(previous_units)
    k = previous_units["province_code"].n_unique()
    units = (previous_units.group_by("measure").agg(pl.col("value").mean(), ((pl.col("se") ** 2).sum().sqrt() / k).alias("se"))
             .with_columns(pl.lit(f"mean of {k} units (re-estimated)").alias("definition")))
    if previous_published is None or previous_published.height == 0:
        return units.sort("measure")
    own = previous_published.group_by("measure").agg(
        pl.col("value").mean(), ((pl.col("se") ** 2).sum().sqrt() / pl.len()).alias("se"),
        pl.len().alias("k")).with_columns(
        (pl.lit("mean of ") + pl.col("k").cast(pl.Utf8) + pl.lit(" provinces (as that year computed it)")).alias("definition"))
    own = own.drop("k")
    return pl.concat([units, own.filter(pl.col("measure").is_in(units["measure"].to_list()))]).sort("measure", "definition")


def previous_silver(db: Path, year: int) -> Path:
    """The silver citizens' forms of `year`'s current run in `db` (recorded in the run's parameters)."""
    from sipas_pipeline.duckdb_file import read_query

    db = Path(db)
    if not db.is_file():
        raise InputError(f"{db}: no database: run year {year} first (its silver data are re-estimated on the new units)")
    rows = read_query(db, "SELECT parameters FROM current_runs WHERE year = $year", {"year": year})
    silver = json.loads(rows[0][0]).get("silver") if rows else None
    path = Path(silver) / "citizen.parquet" if silver else None
    if path is None or not path.is_file():
        raise InputError(f"{db}: no current run of {year} with its silver citizens' forms on disk"
                         f"{f' ({path} is missing)' if path else ''}: run `sipas run --year {year}` again, "
                         "or pass --previous-silver")
    return path


def comparable_previous(m: Methodology, silver: Path) -> pl.DataFrame:
    """`reestimate` from a silver citizens' Parquet file of the previous year, once its design weights are found on
    one population scale (`check_weight_scale`)."""
    prev = previous_methodology(m)
    if prev is None:
        raise MethodologyError([f"{m.root / 'methodology.yaml'}: no comparable block: the units did not change"])
    citizen = pl.scan_parquet(silver)
    check_weight_scale(prev, citizen, float(m.comparable.get("weight_factor", WEIGHT_FACTOR)))
    return reestimate(prev, m, citizen)


def paired_with(m: Methodology, previous: pl.DataFrame, silver: Path) -> pl.DataFrame | None:
    """The paired change's variance of this year's silver citizens' forms (`silver`) against `previous` (from
    `reestimate`, with its PSU scores), as the run computes it (`stages.paired_change`)."""
    from sipas_pipeline.indicators import estimate_indicators
    from sipas_pipeline.stages import paired_change

    return paired_change(m, estimate_indicators(m, pl.scan_parquet(silver)), previous)


def series(current: pl.DataFrame, previous_units: pl.DataFrame, confidence: float,
           paired: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per unit and measure: this year's value and se, the previous year on these units, the change, its interval
    and significance (`ranking.change`, `paired` or independent: change_method). PAR rows get no previous value:
    'not comparable'."""
    from sipas_pipeline.ranking import change

    previous_units, _ = split(previous_units)
    cur = current.select("province_code", "measure", "value", "se", "df", "rank_national")
    out = change(cur, previous_units, confidence, paired).join(
        previous_units.select("province_code", "measure", pl.col("value").alias("previous_value"),
                              pl.col("rank_national").alias("previous_rank")),
        on=["province_code", "measure"], how="left")
    return out.with_columns(pl.when(pl.col("measure") == "par").then(pl.lit("not comparable"))
                            .otherwise(pl.col("change_basis")).alias("change_basis")).sort("measure", "province_code")
