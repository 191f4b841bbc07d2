"""PAR INDEX inputs of a synthetic year: appraisal points and officials' ratings per province,
solved so that each province's expected total lands on its target."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from sipas_pipeline.methodology import Methodology
from sipas_pipeline.synth import people

RESPONDENT_TYPE_SHARE = [0.03, 0.17, 0.15, 0.40, 0.15, 0.10]
SUBMISSIONS = (timedelta(days=45, hours=7), 90)  # first moment after the survey window opens, days


def citizen_points(m: Methodology, tree: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Points of the survey_citizen sub-criteria from true SIPAS results, per province."""
    nodes = tree.select("province_code", pl.col("node").alias("key"), "value")
    nodes = pl.concat([
        nodes.with_columns(
            pl.when(pl.col("key") == "SIPAS").then(pl.lit("sipas"))
            .when(pl.col("key").is_in(["policy", "service"])).then(pl.lit("part:") + pl.col("key"))
            .otherwise(pl.lit("element:") + pl.col("key")).alias("key")),
        truth.select("province_code", (pl.lit("indicator:") + pl.col("indicator_id")).alias("key"), "value"),
    ])
    subs = m.par_subcriteria.filter(pl.col("kind") == "survey_citizen")
    return (subs.join(nodes, left_on="source", right_on="key")
            .select("province_code", "subcriterion_id",
                    (pl.col("max_points") * pl.col("value") / 100).alias("points")))


def par_levels(m: Methodology, targets: pl.DataFrame, cit_points: pl.DataFrame,
               seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per province and sub-criterion: appraised and self-assessed points (appraisal) and the
    share of the rating scale officials give (survey_official); and the expected PAR total."""
    rng = np.random.default_rng([seed, 20242])
    subs = m.par_subcriteria
    appr = subs.filter(pl.col("kind") == "appraisal")
    off = subs.filter(pl.col("kind") == "survey_official")
    a_max, o_max = appr["max_points"].to_numpy(), off["max_points"].to_numpy()
    cit = cit_points.group_by("province_code").agg(pl.col("points").sum())
    cit_by = dict(zip(cit["province_code"], cit["points"], strict=True))
    rows, totals = [], []
    for code, target in zip(targets["province_code"], targets["par"], strict=True):
        eta = rng.normal(0, 0.04, a_max.size)
        eps = rng.normal(0, 0.03, o_max.size)
        inflate = rng.uniform(0, 0.12, a_max.size)

        def total(alpha: float, eta=eta, eps=eps, code=code) -> tuple[float, np.ndarray, np.ndarray]:
            a_pts = np.round(a_max * np.clip(alpha + eta, 0, 1), 2)
            phi = np.clip(alpha + eps, 0.02, 0.995)
            return a_pts.sum() + (o_max * phi).sum() + cit_by[code], a_pts, phi

        lo, hi = 0.0, 1.2
        for _ in range(60):
            mid = (lo + hi) / 2
            if total(mid)[0] > target:
                hi = mid
            else:
                lo = mid
        expected, a_pts, phi = total((lo + hi) / 2)
        self_pts = np.minimum(a_max, np.round(a_pts + a_max * inflate, 2))
        rows += [{"province_code": code, "subcriterion_id": s, "appraised": float(p), "self": float(q),
                  "phi": None} for s, p, q in zip(appr["subcriterion_id"], a_pts, self_pts, strict=True)]
        rows += [{"province_code": code, "subcriterion_id": s, "appraised": None, "self": None,
                  "phi": float(f)} for s, f in zip(off["subcriterion_id"], phi, strict=True)]
        totals.append({"province_code": code, "par": float(expected)})
    return pl.DataFrame(rows), pl.DataFrame(totals)


AGENCY_SD = (0.03, 0.02)  # agency effect on the rating share: common to its sub-criteria, and per sub-criterion
OFFICIALS_PER_AGENCY = 30


def agencies(province_code: str, n_forms: int, rng: np.random.Generator):
    """Each official's agency (code `<province>.<NN>`: the province's departments and people's committees that
    answered, uneven in size) and a function giving, per sub-criterion, each official's agency shift of the rating
    share (mean zero over the province's officials, so the province's expected points stay the truth)."""
    k = int(np.clip(n_forms // OFFICIALS_PER_AGENCY, 3, 60))
    which = rng.choice(k, size=n_forms, p=rng.dirichlet(np.full(k, 2.0)))
    common = rng.normal(0, AGENCY_SD[0], k)
    codes = [f"{province_code}.{j + 1:02d}" for j in which]
    specific: dict[str, np.ndarray] = {}

    def shift(sub: str) -> np.ndarray:
        if sub not in specific:
            e = (common + rng.normal(0, AGENCY_SD[1], k))[which]
            specific[sub] = e - e.mean() if n_forms else e
        return specific[sub]
    return codes, shift


def official_batch(m: Methodology, province_code: str, n_forms: int, phi: dict[str, float],
                   rng: np.random.Generator) -> pl.DataFrame:
    """`n_forms` officials' forms of one province with canonical field ids; answers as text."""
    form = m.forms["official"]
    after, days = SUBMISSIONS
    first = datetime.fromisoformat(str(m.meta["survey_window"]["start"])) + after
    seconds = rng.integers(0, days * 86400, n_forms)
    types = rng.choice(np.arange(1, 7), size=n_forms, p=RESPONDENT_TYPE_SHARE)
    ids = rng.integers(0, 2**63, size=(n_forms, 2), dtype=np.int64)
    cols: dict[str, list] = {
        "form_id": [str(uuid.UUID(int=(int(a) << 64 | int(b)) & (2**128 - 1), version=4)) for a, b in ids],
        "submitted_at": [(first + timedelta(seconds=int(s))).isoformat() for s in seconds],
        "form_version": ["vR3pTq8Lw2024"] * n_forms,
        "province_code": [province_code] * n_forms,
        "respondent_type": types.astype(str).tolist(),
        "full_name": people.names(rng, n_forms),
        "phone": people.phones(rng, n_forms),
        "email": people.emails(rng, n_forms),
    }
    agency, shift = agencies(province_code, n_forms, np.random.default_rng(rng.integers(2**63)))
    if "agency_code" in form["field_id"].to_list():
        cols["agency_code"] = agency
    for row in form.filter(pl.col("refs").str.starts_with("par:")).iter_rows(named=True):
        sub = row["refs"].removeprefix("par:")
        share = np.clip(phi[sub] + shift(sub), 0.01, 0.99)
        cols[row["field_id"]] = (1 + rng.binomial(4, share, n_forms)).astype(str).tolist()
    order = [f for f in form["field_id"].to_list() if f in cols]
    return pl.DataFrame({f: cols[f] for f in order}, schema={f: pl.Utf8 for f in order})
