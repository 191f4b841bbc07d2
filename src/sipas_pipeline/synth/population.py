"""The synthetic population: commune and village effects for every village of the frame, item means
calibrated so that each province's finite-population value equals its target, and that value (the
truth the design-based estimator targets).

For a yes/no item j (a satisfaction answer 4-5, or an assessment "yes") in village v,
P(yes | v) = Phi(eta_vj / s), eta_vj = mu_pj + effects_vj (+ urban shift), s = `DesignParams.within_sd`.
The province's true value is the population-weighted mean over ALL its frame villages of P(yes | v),
among those asked the question: weights N_v * P(asked | v) (skip logic: an item asked only if an
assessment answer is "yes" is asked more where that answer is common). mu_pj is solved (Newton) so
that this value equals the calibrated target, so the truth is exact, not an expectation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import ndtr as norm_cdf

from sipas_pipeline.methodology import Methodology
from sipas_pipeline.methodology.skip_logic import parse_condition
from sipas_pipeline.synth.design import DesignParams, psu_column

SERVICE_USED = 0.85  # P(svc_used = 1): independent of everything else
DONT_KNOW_RATE = {"satisfaction": 0.04, "assessment": 0.03}


@dataclass(frozen=True)
class Item:
    """A yes/no question the latent model answers."""

    question_id: str
    indicator_id: str
    type: str  # satisfaction | assessment
    direction: int
    ask_if: str


@dataclass
class Population:
    """Calibrated latent indices of every frame village (rows of `frame`) for every item."""

    frame: pl.DataFrame
    items: list[Item]
    eta: np.ndarray  # (villages, items)
    truth: pl.DataFrame  # province_code, indicator_id, value (%): finite-population values
    design: DesignParams
    asked: np.ndarray | None = None  # (villages, items): adults asked the item, the finite-population weights

    def domain_truth(self, unit_of: dict[str, str]) -> pl.DataFrame:
        """Finite-population values (%) of the modelled items on other domains: `unit_of` maps each province
        to its domain (a merged unit); the same weights as `truth`, pooled over the domain's villages."""
        units, u_idx = np.unique(np.array([unit_of[c] for c in self.frame["province_code"].to_list()]), return_inverse=True)
        p_v = norm_cdf(self.eta / self.design.within_sd)
        values = {it.indicator_id: 100 * np.bincount(u_idx, self.asked[:, j] * p_v[:, j]) / np.bincount(u_idx, self.asked[:, j])
                  for j, it in enumerate(self.items)}
        return (pl.DataFrame({"province_code": units.tolist()} | values)
                .unpivot(index="province_code", variable_name="indicator_id", value_name="value")
                .sort("province_code", "indicator_id"))

    def column(self, question_id: str) -> int:
        return next(j for j, it in enumerate(self.items) if it.question_id == question_id)


def binary_items(m: Methodology) -> list[Item]:
    """The single-choice questions behind satisfaction and assessment indicators, in form order."""
    indicators = {r["question_id"]: r for r in m.indicators.iter_rows(named=True)}
    items = []
    for q in m.forms["citizen"].iter_rows(named=True):
        ind = indicators.get(q["field_id"])
        if ind is None or q["dtype"] == "multi" or ind["type"] not in DONT_KNOW_RATE:
            continue
        items.append(Item(q["field_id"], ind["indicator_id"], ind["type"], int(ind["direction"]), q["ask_if"]))
    return items


def _asked_probability(item: Item, p_code: dict[tuple[str, int], np.ndarray], closure: dict[str, set],
                       n: int) -> np.ndarray:
    """P(the item is asked | village): the product over every earlier answer its skip logic needs,
    directly or through the questions those depend on, each counted once (independent given the village).
    Records the item's closure of conditions in `closure`."""
    needs: set[tuple[str, int]] = set()
    for field, op, code in parse_condition(item.ask_if) if item.ask_if else []:
        if op != "==" or (field, code) not in p_code:
            raise ValueError(f"synthetic truth: cannot model condition {field} {op} {code} of {item.question_id}")
        needs |= {(field, code)} | closure.get(field, set())
    closure[item.question_id] = needs
    q = np.ones(n)
    for key in sorted(needs):
        q = q * p_code[key]
    return q


def place_effects(frame: pl.DataFrame, n_items: int, design: DesignParams, rng: np.random.Generator,
                  place_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Commune and village effects of every frame village (rows of `frame`): (shared by the items of a place,
    (villages,); item-specific, (villages, items)). Each is a persistent part keyed by the place's code
    (`places.keyed_normal` with `place_seed`: the same commune or village gets it in every year) with
    `design.persistence` of the variance, plus a year-specific part from `rng`."""
    from sipas_pipeline.synth.places import keyed_normal, place_keys

    psu = psu_column(frame)  # the commune a village was drawn in (2025: the 2024 commune, kept across the merger)
    communes, c_idx = np.unique(frame[psu].to_numpy(), return_inverse=True)
    first = np.unique(c_idx, return_index=True)[1]  # a village of each commune: its commune's key
    commune_key, village_key = place_keys(frame, psu)
    commune_key = commune_key[first]
    n_v, n_c = frame.height, communes.size
    keep, fresh = math.sqrt(design.persistence), math.sqrt(1 - design.persistence)

    def part(stream: int, keys: np.ndarray, shape: tuple[int, ...], variance: float) -> np.ndarray:
        cols = shape[1] if len(shape) > 1 else 1
        persistent = keyed_normal(place_seed, stream, keys, cols).reshape(shape)
        return math.sqrt(variance) * (keep * persistent + fresh * rng.standard_normal(shape))

    sh = design.shared
    shared = (part(1, commune_key, (n_c,), sh * design.commune_icc)[c_idx]
              + part(2, village_key, (n_v,), sh * design.village_icc))
    specific = (part(3, commune_key, (n_c, n_items), (1 - sh) * design.commune_icc)[c_idx]
                + part(4, village_key, (n_v, n_items), (1 - sh) * design.village_icc))
    return shared, specific


def build_population(m: Methodology, targets: pl.DataFrame, design: DesignParams,
                     rng: np.random.Generator, place_seed: int = 0) -> Population:
    """Draw commune and village effects for the whole frame (`place_effects`: persistent by code across years,
    keyed by `place_seed`, plus a year-specific part from `rng`) and calibrate item means to `targets`
    (province_code, indicator_id, value %): the returned truth equals the targets (to 1e-9)."""
    frame = m.population_frame.sort("village_code")  # unique codes: rows found by binary search
    items = binary_items(m)
    n_j = len(items)
    provinces, p_idx = np.unique(frame["province_code"].to_numpy(), return_inverse=True)
    n_v = frame.height
    sign = np.array([1.0 if it.type == "satisfaction" else float(it.direction) for it in items])
    shared, specific = place_effects(frame, n_j, design, rng, place_seed)
    effects = shared[:, None] * sign[None, :] + specific
    adults = frame["population"].to_numpy().astype(float)
    urban = (frame["urban"] == "yes").to_numpy().astype(float)
    urban_share = np.bincount(p_idx, adults * urban) / np.bincount(p_idx, adults)
    shift = design.urban_shift * (urban - urban_share[p_idx])
    target = (targets.pivot(on="indicator_id", index="province_code", values="value")
              .sort("province_code").filter(pl.col("province_code").is_in(provinces.tolist())))
    if target["province_code"].to_list() != provinces.tolist():
        raise ValueError("synthetic truth: targets and frame name different provinces")
    s = design.within_sd
    eta = np.empty((n_v, n_j))
    # P(answer = code | asked, village) of the answers skip logic reads
    p_code: dict[tuple[str, int], np.ndarray] = {("svc_used", 1): np.full(n_v, SERVICE_USED),
                                                 ("svc_used", 2): np.full(n_v, 1 - SERVICE_USED)}
    closure: dict[str, set] = {}
    truth = {}
    asked = np.empty((n_v, n_j))
    for j, it in enumerate(items):
        offset = effects[:, j] + (shift if it.type == "satisfaction" else 0.0)
        w = adults * _asked_probability(it, p_code, closure, n_v)
        w_p = np.bincount(p_idx, w)
        asked[:, j] = w
        t = target[it.indicator_id].to_numpy() / 100
        mu = s * np.log(t / (1 - t)) / 1.702  # logistic start
        for _ in range(50):
            x = (mu[p_idx] + offset) / s
            value = np.bincount(p_idx, w * norm_cdf(x)) / w_p
            slope = np.bincount(p_idx, w * np.exp(-x * x / 2)) / w_p / (s * math.sqrt(2 * math.pi))
            step = (value - t) / slope
            mu -= np.clip(step, -1, 1)
            if np.abs(value - t).max() < 1e-12:
                break
        else:
            raise ValueError(f"synthetic truth: the mean of {it.indicator_id} did not converge to its targets")
        eta[:, j] = mu[p_idx] + offset
        p_v = norm_cdf(eta[:, j] / s)
        if it.type == "assessment":  # codes 1 (yes) and 2 (no)
            p_code[(it.question_id, 1)] = (1 - DONT_KNOW_RATE[it.type]) * p_v
            p_code[(it.question_id, 2)] = (1 - DONT_KNOW_RATE[it.type]) * (1 - p_v)
        truth[it.indicator_id] = 100 * np.bincount(p_idx, w * p_v) / w_p
    long = pl.DataFrame({"province_code": provinces.tolist()} | truth).unpivot(
        index="province_code", variable_name="indicator_id", value_name="value")
    return Population(frame, items, eta, long, design, asked)


def with_truth(targets: pl.DataFrame, population: Population) -> pl.DataFrame:
    """`targets` with the modelled items' values replaced by their finite-population values."""
    return (targets.join(population.truth, on=["province_code", "indicator_id"], how="left", suffix="_fp")
            .select("province_code", "indicator_id", pl.coalesce("value_fp", "value").alias("value"))
            .sort("province_code", "indicator_id"))
