"""Citizens' SIPAS forms of one province: respondents of the sampled villages, answering through the
latent model of `population` (commune, village and respondent effects)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from sipas_pipeline.methodology import Methodology
from sipas_pipeline.methodology.skip_logic import parse_condition
from sipas_pipeline.synth import people
from sipas_pipeline.synth.design import psu_column, respondents
from sipas_pipeline.synth.population import DONT_KNOW_RATE, SERVICE_USED, Population
from sipas_pipeline.synth.truth import EXPECTATION_BASE

FIELDWORK = (31, 120)  # first day after the survey window opens, number of days


def _sat_codes(rng: np.random.Generator, satisfied: np.ndarray) -> np.ndarray:
    """Codes 1-5: 4 or 5 when satisfied."""
    n = satisfied.size
    high = np.where(rng.random(n) < 0.3, 5, 4)
    low = np.array([3, 3, 3, 3, 3, 3, 2, 2, 2, 1])[rng.integers(0, 10, n)]
    return np.where(satisfied, high, low)


def _asked(cond: str, answers: dict[str, np.ndarray], n: int) -> np.ndarray:
    ok = np.ones(n, dtype=bool)
    if cond:
        for field, op, code in parse_condition(cond):
            col = answers[field]
            ok &= (col == code) if op == "==" else (col != code)
    return ok


def answer_codes(population: Population, rows: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Answer codes of respondents living in frame villages `rows` (0 = not asked), in form order:
    latent = eta(village, item) + halo (satisfaction items) + residual; yes when latent > 0."""
    n = rows.size
    d = population.design
    answers: dict[str, np.ndarray] = {"svc_used": np.where(rng.random(n) < SERVICE_USED, 1, 2)}
    halo = rng.normal(0.0, np.sqrt(max(d.halo, 0.0)), n)
    residual_sd = {"satisfaction": np.sqrt(1.0 - d.cluster - max(d.halo, 0.0)), "assessment": d.within_sd}
    for j, it in enumerate(population.items):
        latent = population.eta[rows, j] + rng.normal(0.0, residual_sd[it.type], n)
        code = _sat_codes(rng, latent + halo > 0) if it.type == "satisfaction" else np.where(latent > 0, 1, 2)
        code = np.where(rng.random(n) < DONT_KNOW_RATE[it.type], 9, code)
        answers[it.question_id] = np.where(_asked(it.ask_if, answers, n), code, 0)
    return answers


def expectations(rng: np.random.Generator, n: int) -> list[str]:
    """The multi-select expectation answers ("1 4 7"): independent picks."""
    p = np.array(EXPECTATION_BASE)
    picks = rng.random((n, p.size)) < p
    picks[~picks.any(axis=1), 0] = True
    flags = pl.DataFrame(picks, schema=[str(j + 1) for j in range(p.size)])
    return flags.select(pl.concat_str([pl.when(pl.col(c)).then(pl.lit(c)) for c in flags.columns],
                                      separator=" ", ignore_nulls=True))[:, 0].to_list()


def frame_rows(population: Population, sample: pl.DataFrame) -> np.ndarray:
    """Row of each sampled village in the population's frame."""
    rows = np.searchsorted(population.frame["village_code"].to_numpy(), sample["village_code"].to_numpy())
    if not (population.frame["village_code"].gather(rows) == sample["village_code"]).all():
        raise ValueError("synthetic sample: a village is not in the population's frame")
    return rows


def citizen_batch(m: Methodology, province_code: str, n_forms: int, sample: pl.DataFrame, population: Population,
                  rng: np.random.Generator) -> pl.DataFrame:
    """`n_forms` clean forms of one province (its rows of `sample`) with canonical field ids; answers as text."""
    idx, weight = respondents(sample, n_forms)
    n = idx.size
    name = m.provinces.filter(pl.col("province_code") == province_code)["name_vi"][0]
    offset, days = FIELDWORK
    start = date.fromisoformat(str(m.meta["survey_window"]["start"])) + timedelta(days=offset)
    day = rng.integers(0, days, n)
    cols: dict[str, list] = {
        "form_id": [f"{m.year % 100}-{province_code}-{i + 1:06d}" for i in range(n)],
        "province_code": [name] * n,
        **{level: sample[level].to_numpy()[idx].tolist() for level in m.geography[1:]},
        "interview_date": [(start + timedelta(days=int(d))).isoformat() for d in day],
        "stratum": sample["stratum"].to_numpy()[idx].tolist(),
        "psu": sample[psu_column(sample)].to_numpy()[idx].tolist(),
        "weight": [f"{w:.4f}" for w in weight],
        "full_name": people.names(rng, n),
        "phone": people.phones(rng, n),
        "id_number": people.id_numbers(rng, n, province_code),
        "address": people.addresses(rng, n),
    }
    for field, k in (("sex", 2), ("age_group", 5), ("ethnicity", 2), ("education", 4), ("occupation", 6)):
        cols[field] = (rng.integers(1, k + 1, n)).astype(str).tolist()
    answers = answer_codes(population, frame_rows(population, sample)[idx], rng)
    cols["expect"] = expectations(rng, n)
    for qid, code in answers.items():
        cols[qid] = [str(c) if c else None for c in code.tolist()]
    order = [f for f in m.forms["citizen"]["field_id"].to_list() if f in cols]
    return pl.DataFrame({f: cols[f] for f in order}, schema={f: pl.Utf8 for f in order})
