"""Oracle: the design-based standard errors equal those of an independent survey package (`svy`, Taylor
linearisation, with-replacement design, domains by province) on the committed sample year."""

from __future__ import annotations

import warnings

import polars as pl
import pytest

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.indicators import answer_flags, estimate_indicators, sipas_tree, with_code_masks

svy = pytest.importorskip("svy", reason="svy is a dev dependency (pip install -e '.[dev]')")

REL = 1e-9


@pytest.fixture(scope="module")
def sample(methodology, sample_work):
    """The sample year's silver citizens with one 0/1 column per indicator for hits (y_) and answers (a_)."""
    citizen = pl.read_parquet(StageFolder(sample_work["work"]).silver("citizen"))
    flags = answer_flags(methodology, methodology.indicators)
    frame = with_code_masks(methodology, citizen).select("form_id", "province_code", "stratum", "psu", "weight",
                           *[h.cast(pl.Float64).alias(f"y_{i}") for i, (_, h) in flags.items()],
                           *[a.cast(pl.Float64).alias(f"a_{i}") for i, (a, _) in flags.items()])
    return citizen, frame


def _design(frame: pl.DataFrame):
    return svy.Sample(frame, svy.Design(stratum="stratum", psu="psu", wgt="weight", wr=True))


def _close(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= REL * abs(theirs) + 1e-15


def test_every_indicator_se_equals_svy(methodology, sample):
    citizen, frame = sample
    ours = estimate_indicators(methodology, citizen).values
    design = _design(frame)
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in methodology.indicators["indicator_id"]:
            theirs = design.estimation.ratio(y=f"y_{i}", x=f"a_{i}", by="province_code").to_polars()
            j = ours.filter(pl.col("indicator_id") == i).join(theirs, on="province_code")
            assert j.height == ours["province_code"].n_unique(), i
            for r in j.iter_rows(named=True):
                if r["value"] is None:  # nobody in the province answered: no estimate on either side
                    assert r["est"] is None or r["est"] != r["est"], (i, r["province_code"])
                    continue
                assert r["value"] / 100 == pytest.approx(r["est"], rel=1e-12), (i, r["province_code"])
                assert _close(r["var"] ** 0.5, r["se"]), (i, r["province_code"], r["var"] ** 0.5, r["se"])
                assert r["df"] == r["df_right"], (i, r["province_code"])
                checked += 1
    assert checked == ours["value"].count() > 6000


def test_sipas_se_equals_svy_on_the_linearised_respondent_score(methodology, sample):
    """The tree through the package: each respondent's linearised SIPAS score, built here from the methodology's
    weights (every element the mean of its indicators, every part of its elements, SIPAS of its parts) and the
    ratios' own totals, passed to svy as a variable; the standard error of its weighted total per province is
    the SIPAS standard error."""
    m = methodology
    citizen, frame = sample
    members = m.indicators.filter(pl.col("in_index") == "yes").select("indicator_id", "element", pl.col("weight").alias("wi"))
    tree = m.tree.select("element", "part", pl.col("weight").alias("we"))
    long = (frame.select("form_id", "province_code", "weight", *[f"{x}_{i}" for i in members["indicator_id"] for x in "ya"])
            .unpivot(index=["form_id", "province_code", "weight"]).with_columns(
                pl.col("variable").str.slice(0, 1).alias("kind"), pl.col("variable").str.slice(2).alias("indicator_id"))
            .pivot(on="kind", index=["form_id", "province_code", "weight", "indicator_id"], values="value"))
    totals = long.group_by("province_code", "indicator_id").agg(
        (pl.col("weight") * pl.col("y")).sum().alias("Y"), (pl.col("weight") * pl.col("a")).sum().alias("A"))
    # the tree's weights over what the province has: indicators with answers, elements with such indicators
    present = totals.filter(pl.col("A") > 0).join(members, on="indicator_id").join(tree, on="element")
    ci = pl.col("wi") / pl.col("wi").sum().over("province_code", "element")
    el = present.select("province_code", "element", "part", "we").unique()
    el = el.with_columns((pl.col("we") / pl.col("we").sum().over("province_code", "part")).alias("ce"))
    pt = el.select("province_code", "part").unique().join(m.parts.select("part", pl.col("weight").alias("wp")), on="part")
    pt = pt.with_columns((pl.col("wp") / pl.col("wp").sum().over("province_code")).alias("cp"))
    coef = (present.with_columns(ci.alias("ci"))
            .join(el.select("province_code", "element", "ce"), on=["province_code", "element"])
            .join(pt.select("province_code", "part", "cp"), on=["province_code", "part"])
            .select("province_code", "indicator_id", (pl.col("ci") * pl.col("ce") * pl.col("cp")).alias("c")))
    assert coef.group_by("province_code").agg(pl.col("c").sum())["c"].to_list() == pytest.approx([1.0] * 63)
    # u = sum_k c_k (y_k - R_k a_k) / A_k, so that sum of w u is the linearised SIPAS (0-1 scale)
    score = (long.join(totals, on=["province_code", "indicator_id"]).join(coef, on=["province_code", "indicator_id"])
             .group_by("form_id").agg((pl.col("c") * (pl.col("y") - pl.col("Y") / pl.col("A") * pl.col("a")) / pl.col("A"))
                                      .sum().alias("u")))
    data = frame.select("form_id", "province_code", "stratum", "psu", "weight").join(score, on="form_id")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _design(data).estimation.total(y="u", by="province_code").to_polars()
    ours = sipas_tree(m, estimate_indicators(m, citizen)).filter(pl.col("level") == "sipas")
    j = ours.join(theirs, on="province_code")
    assert j.height == 63
    for r in j.iter_rows(named=True):
        assert _close(r["var"] ** 0.5 / 100, r["se"]), (r["province_code"], r["var"] ** 0.5 / 100, r["se"])
