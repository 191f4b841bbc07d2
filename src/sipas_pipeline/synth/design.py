"""The synthetic year's sample design and random effects: one dataclass of parameters, and the
sample (the year's declared sample, or a fresh PPS draw from the frame) with inclusion probabilities.

Answers come from a threshold (probit) model on a latent scale whose total variance is 1:
latent = item mean + commune effect + village effect (each partly shared by all items, partly
item-specific) + respondent halo (satisfaction items only) + residual; "satisfied" (or "yes") when
latent > 0. The intra-class correlations and the inter-item correlation below are on that scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from sipas_pipeline.errors import InputError


@dataclass(frozen=True)
class DesignParams:
    """Design and effect parameters of a synthetic year; the defaults are realistic for household
    satisfaction surveys. `DesignParams.independent()` gives independent answers (version 1)."""

    commune_icc: float = 0.03  # share of latent variance between communes (the PSUs)
    village_icc: float = 0.02  # share between villages within a commune
    shared: float = 0.5  # part of the commune and village effects common to all items of a respondent's place
    item_correlation: float = 0.25  # latent correlation of two satisfaction answers of one respondent
    urban_shift: float = 0.15  # urban villages' satisfaction is this much higher (latent): weights must correct it
    villages_per_commune: int = 3  # villages drawn in a commune when a sample is drawn afresh
    persistence: float = 0.8  # share of each place effect's variance that is the place's own, the same every year

    def __post_init__(self) -> None:
        problems = [f"{k} = {v} is outside [0, 1]" for k, v in
                    (("commune_icc", self.commune_icc), ("village_icc", self.village_icc), ("shared", self.shared),
                     ("item_correlation", self.item_correlation), ("persistence", self.persistence)) if not 0 <= v <= 1]
        if self.halo < 0:
            problems.append(f"item_correlation {self.item_correlation} is below the shared place effects "
                            f"{self.shared * self.cluster:.4f}")
        if self.cluster + max(self.halo, 0) >= 1:
            problems.append("commune_icc + village_icc + halo leave no residual variance")
        if problems:
            raise InputError("design parameters: " + "; ".join(problems))

    @classmethod
    def independent(cls) -> DesignParams:
        """No commune, village or respondent effects: every answer an independent draw."""
        return cls(commune_icc=0.0, village_icc=0.0, item_correlation=0.0)

    def scaled(self, factor: float) -> DesignParams:
        """The same design with every effect (ICCs and inter-item correlation) multiplied by `factor`."""
        return DesignParams(self.commune_icc * factor, self.village_icc * factor, self.shared,
                            self.item_correlation * factor, self.urban_shift, self.villages_per_commune, self.persistence)

    @property
    def cluster(self) -> float:
        """Latent variance of commune + village effects."""
        return self.commune_icc + self.village_icc

    @property
    def halo(self) -> float:
        """Latent variance of the respondent's halo (satisfaction items): what the inter-item
        correlation needs beyond the shared place effects."""
        return self.item_correlation - self.shared * self.cluster

    @property
    def within_sd(self) -> float:
        """Latent standard deviation within a village (halo + residual): P(yes | village) = Phi(eta / within_sd)."""
        return float(np.sqrt(1.0 - self.cluster))

    def record(self) -> dict:
        """The parameters and the variance components they imply (for truth/design.json)."""
        return asdict(self) | {"halo_variance": round(self.halo, 10), "within_sd": round(self.within_sd, 10),
                               "scale": "latent probit, total variance 1"}


def psu_column(frame: pl.DataFrame) -> str:
    """The frame's primary sampling unit: its `psu` column when it has one (2025: the 2024 commune a village was
    drawn in, kept across the merger), else `commune_code`."""
    return "psu" if "psu" in frame.columns else "commune_code"


def _commune_sizes(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per frame PSU (column `commune_code`): stratum, adults M_c, villages V_c, stratum adults M_h."""
    return (frame.group_by("province_code", "stratum", pl.col(psu_column(frame)).alias("commune_code"))
            .agg(pl.col("population").sum().alias("m_c"), pl.len().alias("v_c"))
            .with_columns(pl.col("m_c").sum().over("stratum").alias("m_h"))
            .sort("commune_code"))


def declared_sample(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame's villages with in_sample = yes, with P(commune) = n_h M_c / M_h (PPS within the
    stratum, n_h its sampled PSUs) and P(village | commune) = k_c / V_c."""
    psu = psu_column(frame)
    communes = _commune_sizes(frame)
    sampled = frame.filter(pl.col("in_sample") == "yes")
    n_h = sampled.group_by("stratum").agg(pl.col(psu).n_unique().alias("n_h"))
    k_c = sampled.group_by(pl.col(psu).alias("commune_code")).agg(pl.len().alias("k_c"))
    return _with_probabilities(sampled, communes.join(n_h, on="stratum").join(k_c, on="commune_code"), psu)


def pps_communes(frame: pl.DataFrame, n_h: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """In each stratum, `n_h` PSUs by systematic PPS (adults, frame order of codes): their rows of `_commune_sizes`."""
    communes = _commune_sizes(frame).join(n_h, on="stratum")
    start = pl.DataFrame({"stratum": communes["stratum"].unique().sort()})
    start = start.with_columns(pl.Series("u", rng.random(start.height)))
    cum = pl.col("m_c").cum_sum().over("stratum") / pl.col("m_h") * pl.col("n_h")
    hi = cum - pl.col("u")
    lo = cum - pl.col("m_c") / pl.col("m_h") * pl.col("n_h") - pl.col("u")
    return communes.join(start, on="stratum").filter(hi.ceil() > lo.ceil()).drop("u")


def draw_sample(frame: pl.DataFrame, n_h: pl.DataFrame, villages_per_commune: int,
                rng: np.random.Generator) -> pl.DataFrame:
    """A fresh sample: in each stratum, `n_h` PSUs by systematic PPS (adults), then
    `villages_per_commune` villages by simple random sampling in each (all when it has fewer)."""
    picked = pps_communes(frame, n_h, rng).with_columns(pl.lit(villages_per_commune).alias("k"))
    return sample_villages(frame, picked, rng)


def sample_villages(frame: pl.DataFrame, picked: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """`k` villages by simple random sampling in each picked PSU (rows of `pps_communes` with a column `k`),
    with their probabilities."""
    psu = psu_column(frame)
    villages = (frame.join(picked.select(pl.col("commune_code").alias(psu), "k"), on=psu)
                .sort("village_code"))
    keys = rng.random(villages.height)
    villages = (villages.with_columns(pl.Series("key", keys))
                .filter(pl.col("key").rank("ordinal").over(psu) <= pl.col("k")).drop("key", "k"))
    k_c = villages.group_by(pl.col(psu).alias("commune_code")).agg(pl.len().alias("k_c"))
    return _with_probabilities(villages, picked.drop("k").join(k_c, on="commune_code"), psu)


def _with_probabilities(villages: pl.DataFrame, communes: pl.DataFrame, psu: str = "commune_code") -> pl.DataFrame:
    probs = communes.select(pl.col("commune_code").alias(psu),
                            (pl.col("n_h") * pl.col("m_c") / pl.col("m_h")).alias("p_commune"),
                            (pl.col("k_c") / pl.col("v_c")).alias("p_village"))
    out = villages.join(probs, on=psu).sort("province_code", "village_code")
    if out["p_commune"].max() > 1:
        raise InputError("sampling frame: a commune is larger than its stratum's sampling interval (P > 1)")
    return out


def sample_strata(sample: pl.DataFrame) -> pl.DataFrame:
    """PSUs taken per stratum (`n_h`) in a sample."""
    return sample.group_by("stratum").agg(pl.col(psu_column(sample)).n_unique().alias("n_h"))


def respondents(sample: pl.DataFrame, n_forms: int) -> tuple[np.ndarray, np.ndarray]:
    """Spread `n_forms` evenly over a province's sampled villages: (village row of each form,
    design weight of each form = 1 / (P(commune) P(village | commune) m_v / N_v))."""
    v = sample.height
    per_village = np.full(v, n_forms // v)
    per_village[: n_forms % v] += 1
    idx = np.repeat(np.arange(v), per_village)
    p = sample["p_commune"].to_numpy() * sample["p_village"].to_numpy()
    weight = sample["population"].to_numpy() / (p * np.maximum(per_village, 1))
    return idx, weight[idx]
