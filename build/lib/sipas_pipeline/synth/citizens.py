"""Citizens' SIPAS forms of one province, answered from the true indicator values."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from sipas_pipeline.methodology import Methodology
from sipas_pipeline.methodology.skip_logic import parse_condition
from sipas_pipeline.synth import people
from sipas_pipeline.synth.truth import EXPECTATION_BASE, URBAN_GAP

DONT_KNOW_RATE = {"satisfaction": 0.04, "assessment": 0.03}
FIELDWORK = (date(2024, 8, 1), 120)  # first day, number of days


def _sat_answers(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Codes 1-5 where P(4 or 5) = p."""
    n = p.size
    satisfied = rng.random(n) < p
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


def citizen_batch(m: Methodology, province_code: str, n_forms: int, truth: dict[str, float],
                  rng: np.random.Generator) -> pl.DataFrame:
    """`n_forms` clean forms of one province with canonical field ids; answers as text."""
    frame = m.sampling_frame.filter(pl.col("province_code") == province_code)
    v = frame.height
    per_village = np.full(v, n_forms // v)
    per_village[: n_forms % v] += 1
    idx = np.repeat(np.arange(v), per_village)
    pop = frame["population"].to_numpy()
    urban = (frame["urban"] == "yes").to_numpy()
    pi = pop[urban].sum() / pop.sum()
    is_urban = urban[idx]
    weight = (pop / np.maximum(per_village, 1))[idx]
    n = idx.size
    name = m.provinces.filter(pl.col("province_code") == province_code)["name_vi"][0]
    start, days = FIELDWORK
    day = rng.integers(0, days, n)
    cols: dict[str, list] = {
        "form_id": [f"{m.year % 100}-{province_code}-{i + 1:06d}" for i in range(n)],
        "province_code": [name] * n,
        "district_code": frame["district_code"].to_numpy()[idx].tolist(),
        "commune_code": frame["commune_code"].to_numpy()[idx].tolist(),
        "village_code": frame["village_code"].to_numpy()[idx].tolist(),
        "interview_date": [(start + timedelta(days=int(d))).isoformat() for d in day],
        "stratum": frame["stratum"].to_numpy()[idx].tolist(),
        "psu": frame["commune_code"].to_numpy()[idx].tolist(),
        "weight": [f"{w:.4f}" for w in weight],
        "full_name": people.names(rng, n),
        "phone": people.phones(rng, n),
        "id_number": people.id_numbers(rng, n, province_code),
        "address": people.addresses(rng, n),
    }
    for field, k in (("sex", 2), ("age_group", 5), ("ethnicity", 2), ("education", 4), ("occupation", 6)):
        cols[field] = (rng.integers(1, k + 1, n)).astype(str).tolist()
    answers: dict[str, np.ndarray] = {"svc_used": np.where(rng.random(n) < 0.85, 1, 2)}
    indicators = {r["question_id"]: r for r in m.indicators.iter_rows(named=True)}
    for q in m.forms["citizen"].iter_rows(named=True):
        qid = q["field_id"]
        if qid not in indicators or q["dtype"] == "multi":
            continue
        ind = indicators[qid]
        share = truth[ind["indicator_id"]] / 100
        if ind["type"] == "satisfaction":
            gap = URBAN_GAP / 100
            p = np.clip(np.where(is_urban, share + gap * (1 - pi), share - gap * pi), 0.005, 0.995)
            code = _sat_answers(rng, p)
        else:
            code = np.where(rng.random(n) < share, 1, 2)
        code = np.where(rng.random(n) < DONT_KNOW_RATE[ind["type"]], 9, code)
        asked = _asked(q["ask_if"], answers, n)
        answers[qid] = np.where(asked, code, 0)
    p = np.array(EXPECTATION_BASE)
    picks = rng.random((n, p.size)) < p
    picks[~picks.any(axis=1), 0] = True
    cols["expect"] = [" ".join(str(j + 1) for j in np.flatnonzero(row)) for row in picks]
    for qid, code in answers.items():
        cols[qid] = [str(c) if c else None for c in code.tolist()]
    order = [f for f in m.forms["citizen"]["field_id"].to_list() if f in cols]
    return pl.DataFrame({f: cols[f] for f in order}, schema={f: pl.Utf8 for f in order})
