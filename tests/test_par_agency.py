"""Officials clustered by agency where the export carries one (issue #22): the agency is the officials' PSU."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.par_index import official_points, official_subcriteria


@pytest.fixture(scope="module")
def m():
    return load_methodology(2024)


def _officials(m, agencies: list[str | None], seed: int = 5) -> pl.DataFrame:
    """Officials of province 01 with random 1-5 ratings on every item, agency as given (None: no agency)."""
    _, per_sub = official_subcriteria(m)
    rng = np.random.default_rng(seed)
    n = len(agencies)
    items = [i for cols in per_sub.values() for i in cols]
    return pl.DataFrame({"form_id": [f"f{i}" for i in range(n)], "province_code": ["01"] * n,
                         "agency_code": agencies, **{i: rng.integers(1, 6, n) for i in items}},
                        schema_overrides={"agency_code": pl.Utf8})


def test_agency_clusters_by_hand(m):
    """Eight officials in three agencies (3, 3, 2). For sub-criterion k: R_k = S_k / C_k over all ratings, per agency
    z_ak = (S_ak - R_k C_ak) / C_k, var(points_k) = b_k^2 x 3/2 x sum_a z_ak^2 (b_k = max / 4); the officials' points
    together: u_a = sum_k b_k z_ak, var = 3/2 sum_a u_a^2, df = 3 agencies - 1 = 2. Computed here from the forms
    directly; the points themselves are the same as without agencies."""
    forms = _officials(m, ["A", "A", "A", "B", "B", "B", "C", "C"])
    subs, per_sub = official_subcriteria(m)
    b = dict(zip(subs["subcriterion_id"], subs["max_points"].to_numpy() / 4, strict=True))
    u = np.zeros(3)
    for sid, cols in per_sub.items():
        per = forms.group_by("agency_code").agg(pl.sum_horizontal(cols.to_list()).sum().alias("S"),
                                                pl.lit(len(cols)).mul(pl.len()).alias("C")).sort("agency_code")
        r = per["S"].sum() / per["C"].sum()
        z = ((per["S"] - r * per["C"]) / per["C"].sum()).to_numpy()
        u += b[sid] * z
        got = official_points(m, forms)[0].filter(pl.col("subcriterion_id") == sid)["se"].item()
        assert got == pytest.approx(b[sid] * np.sqrt(1.5 * (z ** 2).sum()), rel=1e-12)
    points, total = official_points(m, forms)
    t = total.row(0, named=True)
    assert t["var"] == pytest.approx(1.5 * (u ** 2).sum(), rel=1e-12) and t["df"] == 2.0
    assert t["official_cluster"] == "agency"
    srs_points, srs_total = official_points(m, forms.drop("agency_code"))
    assert points["points"].to_list() == srs_points["points"].to_list()
    assert srs_total["official_cluster"].item() == "official" and srs_total["df"].item() == 7.0


def test_exports_without_agency_stay_a_simple_random_sample(m):
    """An old export (no agency column, or the column empty) keeps each official as its own cluster; an official
    without an agency among others with one is an agency of one."""
    forms = _officials(m, [None] * 6)
    with_empty, plain = official_points(m, forms)[1], official_points(m, forms.drop("agency_code"))[1]
    assert with_empty["official_cluster"].item() == "official"
    assert with_empty["var"].item() == pytest.approx(plain["var"].item(), rel=1e-12)
    mixed = _officials(m, ["A", "A", None, None, "B", "B"])
    total = official_points(m, mixed)[1].row(0, named=True)
    assert total["official_cluster"] == "agency" and total["df"] == 3.0  # A, B and two agencies of one


def test_synthetic_officials_carry_an_agency_per_province(m):
    """The generator's officials' export has an agency code per official, of the official's province
    (`<province>.<NN>`), several agencies per province."""
    from sipas_pipeline.synth.par import official_batch

    subs, _ = official_subcriteria(m)
    batch = official_batch(m, "01", 300, {s: 0.7 for s in subs["subcriterion_id"]}, np.random.default_rng(3))
    codes = batch["agency_code"]
    assert codes.null_count() == 0 and codes.str.starts_with("01.").all() and codes.n_unique() >= 5
