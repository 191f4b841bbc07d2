"""One reduction, two paths: the sufficient statistics of two sets of forms add to those of their union, and the
estimator on summed statistics gives the annual estimates bit for bit; progress against a hand-made target."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from sipas_pipeline.fieldwork.progress import add_tallies, progress, tally, targets, window_share
from sipas_pipeline.fieldwork.sufficient import provisional
from sipas_pipeline.indicators import add_cells, all_units, estimate_indicators, estimates_from_cells, indicator_cells, sipas_tree
from sipas_pipeline.par_index import official_moments, official_points, official_points_from_moments


@pytest.fixture(scope="module")
def silver(sample_work) -> dict[str, pl.DataFrame]:
    work = sample_work["work"]
    return {s: pl.read_parquet(work / "silver" / f"{s}.parquet") for s in ("citizen", "official")}


def halves(frame: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two disjoint random parts of the forms (not aligned with any design unit)."""
    pick = np.random.default_rng(seed).random(frame.height) < 0.4
    return frame.filter(pl.Series(pick)), frame.filter(~pl.Series(pick))


def test_cells_of_two_batches_add_to_the_cells_of_their_union(methodology, silver):
    a, b = halves(silver["citizen"], 1)
    union = indicator_cells(methodology, silver["citizen"])
    summed = add_cells(indicator_cells(methodology, a), indicator_cells(methodology, b))
    assert summed.equals(union)
    # and a batch taken out again leaves exactly the other (cells left with no form dropped)
    assert add_cells(union, indicator_cells(methodology, b), sign=[1, -1]).equals(indicator_cells(methodology, a))


def test_estimates_from_summed_cells_are_the_annual_estimates_bit_for_bit(methodology, silver):
    a, b = halves(silver["citizen"], 2)
    annual = estimate_indicators(methodology, silver["citizen"])
    live = estimates_from_cells(methodology, add_cells(indicator_cells(methodology, b), indicator_cells(methodology, a)))
    assert live.values.equals(annual.values) and live.scores.equals(annual.scores)
    tree_a, tree_l = sipas_tree(methodology, annual), sipas_tree(methodology, live)
    assert tree_l.equals(tree_a)
    assert all_units(methodology, tree_l, ["level", "node"], ["n"], False).equals(
        all_units(methodology, tree_a, ["level", "node"], ["n"], False))


def test_official_moments_add_and_give_the_annual_points(methodology, silver):
    a, b = halves(silver["official"], 3)
    whole = official_moments(methodology, silver["official"])
    summed = official_moments(methodology, a) + official_moments(methodology, b)
    assert np.array_equal(summed.m, whole.m) and np.array_equal(summed.n, whole.n) and np.array_equal(summed.s, whole.s)
    assert np.array_equal((summed - official_moments(methodology, b)).c, official_moments(methodology, a).c)
    for live, annual in zip(official_points_from_moments(methodology, summed), official_points(methodology, silver["official"]),
                            strict=True):
        assert live.equals(annual)


def test_provisional_figures_of_no_forms_yet_are_empty_not_an_error(methodology):
    from sipas_pipeline.fieldwork.season import empty_cells, empty_moments

    out = provisional(methodology, empty_cells(methodology), empty_moments(methodology))
    assert out["sipas"].filter(pl.col("unit_level") == "province").height == 0
    assert out["par_survey"].height == 0


def test_window_share_and_the_behind_schedule_flag(methodology):
    # 2024 window: 1 July - 31 December (184 days); on 31 July 31 days have passed
    assert window_share(methodology, date(2024, 7, 31)) == pytest.approx(31 / 184)
    assert window_share(methodology, date(2024, 6, 1)) == 0.0 and window_share(methodology, date(2025, 1, 5)) == 1.0
    t = targets(methodology, scale=0.01)["citizen"]
    assert t["target"].sum() == round(36525 * 0.01) and set(t["target"].unique()) <= {0, 1}
    # province 01 at 31 July: it sent 3 valid forms out of 4 read; province 02 sent nothing
    rows = pl.DataFrame({"source_row": [2, 3, 4, 5], "province_code": ["01"] * 4, "commune_code": ["00008"] * 4,
                         "village_code": ["0000803"] * 4})
    tallies = add_tallies(tally("citizen", rows, rows.head(3)))
    ledger = [{"status": "taken", "source": "citizen", "fieldwork_date": "2024-07-31", "provinces": ["01"]}]
    prog = progress(methodology, tallies, ledger, scale=1.0)
    p01 = prog.filter((pl.col("level") == "province") & (pl.col("unit_code") == "01") & (pl.col("source") == "citizen")).row(
        0, named=True)
    target01 = int(targets(methodology)["citizen"].filter(pl.col("province_code") == "01")["target"].sum())
    assert (p01["received"], p01["valid"], p01["quarantined"], p01["target"]) == (4, 3, 1, target01)
    assert p01["expected"] == pytest.approx(target01 * 31 / 184)
    assert p01["behind_schedule"] is (0.8 * target01 * 31 / 184 > 3)
    assert p01["last_batch_date"] == "2024-07-31" and p01["batches"] == 1
    village = prog.filter((pl.col("level") == "village") & (pl.col("unit_code") == "0000803")).row(0, named=True)
    assert (village["valid"], village["quarantined"]) == (3, 1)
    p02 = prog.filter((pl.col("level") == "province") & (pl.col("unit_code") == "02") & (pl.col("source") == "citizen")).row(
        0, named=True)
    assert p02["valid"] == 0 and p02["behind_schedule"] is True
