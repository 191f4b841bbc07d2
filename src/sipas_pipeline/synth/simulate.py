"""Simulated survey years in memory (no files): a silver-like citizens' frame and its truth, for
coverage studies. Each call redraws the population's effects and, by default, the sample (PPS from
the frame), so the sampling distribution of an estimator can be observed over many calls. The place effects'
persistent part is keyed by `seed` and the place codes: two years simulated with the same seed re-survey places
with the same effects (plus each year's own part), as the real design re-surveys its communes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sipas_pipeline.methodology import Methodology
from sipas_pipeline.synth.citizens import answer_codes, expectations, frame_rows
from sipas_pipeline.synth.design import DesignParams, declared_sample, draw_sample, psu_column, respondents, sample_strata
from sipas_pipeline.synth.population import Population
from sipas_pipeline.synth.truth import tree_truth
from sipas_pipeline.synth.year import FULL_SIZE, citizen_sizes, population_truth


@dataclass
class SimulatedYear:
    """One simulated year: `citizen` has the silver columns compute reads (codes as Int64, null when not
    asked; design columns stratum, psu, weight); `truth` the true indicator values, `tree` the true
    element, part and SIPAS values per province (finite-population values)."""

    citizen: pl.DataFrame
    truth: pl.DataFrame
    tree: pl.DataFrame
    population: Population | None = None


def simulate_citizens(m: Methodology, seed: int, design: DesignParams | None = None, scale: float = 1.0,
                      provinces: list[str] | None = None, redraw_sample: bool = True,
                      calibration_seed: int = 7, occasion: int | None = None) -> SimulatedYear:
    """A simulated year's citizens' forms (clean, as validated) and truth, in memory. The targets stay
    those of `calibration_seed` (the published 2024 figures); `seed` draws effects, sample and answers.
    `provinces` limits the year to some provinces (each at its full sample size). `occasion` (default the
    methodology's year) keys the year's own draws: the same methodology on two occasions is a re-survey of the
    same places with the same truth."""
    design = design or DesignParams()
    rng = np.random.default_rng([seed, 7001, occasion or m.year])  # the year's own draws; places keep their effects
    _, population, truth = population_truth(m, calibration_seed, design, rng, place_seed=seed)
    sizes = dict(zip(m.provinces.sort("province_code")["province_code"].to_list(),
                     citizen_sizes(m, round(FULL_SIZE["citizen"] * scale), np.random.default_rng([seed, 7002])),
                     strict=True))
    declared = declared_sample(m.population_frame)
    if redraw_sample:
        sample = draw_sample(m.population_frame, sample_strata(declared), design.villages_per_commune, rng)
    else:
        sample = declared
    chosen = sorted(provinces) if provinces else sorted(sizes)
    sample = sample.filter(pl.col("province_code").is_in(chosen)).sort("province_code", "village_code")
    rows, weights, offset = [], [], 0
    for (code,), group in sorted(sample.partition_by("province_code", as_dict=True).items()):
        idx, weight = respondents(group, int(sizes[code]))
        rows.append(idx + offset)
        weights.append(weight)
        offset += group.height
    idx = np.concatenate(rows)
    answers = answer_codes(population, frame_rows(population, sample)[idx], rng)
    forms = sample.select(*m.geography, "stratum",
                          pl.col(psu_column(sample)).alias("psu"))[idx]
    citizen = forms.with_columns(pl.Series("weight", np.concatenate(weights)),
                                 *[pl.Series(q, a, pl.Int64) for q, a in answers.items()],
                                 pl.Series("expect", expectations(rng, idx.size)))
    order = [f for f in m.forms["citizen"]["field_id"].to_list() if f in citizen.columns]
    citizen = citizen.select(order).with_columns(pl.when(pl.col(q) != 0).then(pl.col(q)).alias(q) for q in answers)
    truth = truth.filter(pl.col("province_code").is_in(chosen))
    return SimulatedYear(citizen, truth, tree_truth(m, truth), population)
