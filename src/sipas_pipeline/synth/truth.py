"""The generator's ground truth: every province's true indicator values and PAR inputs."""

from __future__ import annotations

import numpy as np
import polars as pl

from sipas_pipeline.methodology import Methodology

# Element / policy-group offsets (points) around the part value: realistic spread between them.
ELEMENT_OFFSET = {"ECO": -2.5, "HEA": -1.5, "EDU": 2.0, "WAT": 1.0, "ELE": 3.5, "SEC": 2.0,
                  "TRA": -3.0, "SOC": 0.5, "ADM": -2.0, "ACC": 1.0, "PRO": 0.0, "STA": 1.5,
                  "RES": 1.0, "FBK": -3.5}
# Assessment indicators: national base share (%) and how strongly it follows the province's SIPAS.
ASSESSMENT_BASE = {"KNOW": 62, "SEEN": 71, "INTEREST": 58, "COMMENTED": 9, "KNOWWHERE": 35,
                   "ANSWERED": 55, "INPERSON": 78, "ONLINE": 19, "POSTAL": 4, "POSTED": 93,
                   "EXTRADOCS": 5, "EXTRAFEES": 2.5, "TRIPS2": 8, "ONTIME": 94, "APOLOGY": 30,
                   "HARASS": 2, "INFASK": 2.5, "INFPAID": 60, "GUIDE": 91, "WAIT30": 14,
                   "SLIP": 88, "RIGHT1ST": 92, "FBFILED": 24, "FBANS": 70, "FBDEADLINE": 80,
                   "PAIDONLINE": 12}
EXPECTATION_BASE = [0.34, 0.30, 0.12, 0.22, 0.09, 0.16, 0.10, 0.18, 0.07, 0.11]
CLIP = (2.0, 99.0)


def _centered(rng: np.random.Generator, sd: float, shape: tuple[int, ...], axis: int) -> np.ndarray:
    noise = rng.normal(0, sd, shape)
    return noise - noise.mean(axis=axis, keepdims=True)


def indicator_truth(m: Methodology, targets: pl.DataFrame, seed: int) -> pl.DataFrame:
    """True value (%) of every indicator in every province: satisfaction indicators add up through
    the aggregation tree to the province's targeted parts; the rest follow the province's SIPAS."""
    rng = np.random.default_rng([seed, 20241])
    codes = targets["province_code"].to_list()
    n = len(codes)
    part_value = {"policy": targets["policy"].to_numpy(), "service": targets["service"].to_numpy()}
    rows: list[dict] = []
    elements = m.tree.to_dicts()
    ind = m.indicators
    for part in ("policy", "service"):
        els = [e for e in elements if e["part"] == part]
        offs = np.array([ELEMENT_OFFSET.get(e["element"], 0.0) for e in els])
        offs -= offs.mean()
        el_vals = part_value[part][:, None] + offs[None, :] + _centered(rng, 1.5, (n, len(els)), 1)
        for j, e in enumerate(els):
            members = ind.filter((pl.col("element") == e["element"]) & (pl.col("in_index") == "yes"))
            k = members.height
            spread = rng.normal(0, 2.5, k)
            spread -= spread.mean()
            vals = el_vals[:, j][:, None] + spread[None, :] + _centered(rng, 1.0, (n, k), 1)
            for i, iid in enumerate(members["indicator_id"]):
                rows += [{"province_code": c, "indicator_id": iid, "value": float(v)}
                         for c, v in zip(codes, vals[:, i], strict=True)]
    sipas_dev = targets["sipas"].to_numpy() - targets["sipas"].mean()
    service = part_value["service"]
    for row in ind.filter(pl.col("in_index") != "yes").iter_rows(named=True):
        iid = row["indicator_id"]
        if row["type"] == "satisfaction":  # overall satisfaction: close to the service part
            vals = service + 1.0 + rng.normal(0, 1.0, n)
        elif row["type"] == "assessment":
            base = ASSESSMENT_BASE[iid.rsplit("_", 1)[-1]]
            slope = 0.6 if base > 15 else 0.15
            vals = base + row["direction"] * slope * sipas_dev + rng.normal(0, base * 0.06, n)
        else:
            p = np.array(EXPECTATION_BASE)
            j = int(row["counting_codes"]) - 1
            none = np.prod(1 - p)  # when nothing is picked, the generator ticks the first option
            vals = np.full(n, 100 * (p[j] + (none if j == 0 else 0.0)))
        rows += [{"province_code": c, "indicator_id": iid, "value": float(v)}
                 for c, v in zip(codes, vals, strict=True)]
    out = pl.DataFrame(rows).with_columns(pl.col("value").clip(*CLIP))
    return out.sort("province_code", "indicator_id")


def tree_truth(m: Methodology, truth: pl.DataFrame) -> pl.DataFrame:
    """The true element, part and SIPAS values implied by the true indicator values."""
    members = m.indicators.filter(pl.col("in_index") == "yes").select(
        "indicator_id", "element", pl.col("weight").alias("w"))
    el = (truth.join(members, on="indicator_id")
          .group_by("province_code", "element")
          .agg(((pl.col("value") * pl.col("w")).sum() / pl.col("w").sum()).alias("value")))
    parts = (el.join(m.tree.select("element", "part", pl.col("weight").alias("w")), on="element")
             .group_by("province_code", "part")
             .agg(((pl.col("value") * pl.col("w")).sum() / pl.col("w").sum()).alias("value")))
    pw = m.parts.select("part", pl.col("weight").alias("w"))
    sipas = (parts.join(pw, on="part").group_by("province_code")
             .agg(((pl.col("value") * pl.col("w")).sum() / pl.col("w").sum()).alias("value"))
             .with_columns(pl.lit("SIPAS").alias("node")))
    return pl.concat([
        el.rename({"element": "node"}).select("province_code", "node", "value"),
        parts.rename({"part": "node"}).select("province_code", "node", "value"),
        sipas.select("province_code", "node", "value"),
    ]).sort("province_code", "node")
