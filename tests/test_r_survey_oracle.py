"""Oracle: every indicator's standard error per province equals R's `survey` package (Debian r-cran-survey, which
`make test` installs when missing) to 1e-9 relative, on the committed sample year (about 1,000 forms; R takes ~3 s CPU)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.indicators import answer_flags, estimate_indicators, with_code_masks

pytestmark = [pytest.mark.r, pytest.mark.integration]
SCRIPT = Path(__file__).with_name("oracle_survey.R")
REL = 1e-9


def test_every_indicator_se_equals_r_survey(methodology, sample_work, tmp_path):
    rscript = shutil.which("Rscript")
    assert rscript, "Rscript not found: apt-get install --no-install-recommends r-cran-survey (make test does)"
    citizen = pl.read_parquet(StageFolder(sample_work["work"]).silver("citizen"))
    flags = answer_flags(methodology, methodology.indicators)
    forms = with_code_masks(methodology, citizen).select(
        "province_code", "stratum", "psu", "weight", *[h.cast(pl.Int8).alias(f"y_{i}") for i, (_, h) in flags.items()],
        *[a.cast(pl.Int8).alias(f"a_{i}") for i, (a, _) in flags.items()])
    forms.write_csv(tmp_path / "forms.csv", float_precision=17)
    done = subprocess.run([rscript, str(SCRIPT), str(tmp_path / "forms.csv"), str(tmp_path / "out.csv")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    route = float(done.stdout.split()[-1])
    assert route <= REL  # the covariance route equals R's own svyratio on the first indicator
    theirs = pl.read_csv(tmp_path / "out.csv", schema_overrides={"province_code": pl.Utf8},
                         null_values=["NA", "NaN", "Inf", "-Inf"])
    ours = estimate_indicators(methodology, citizen).values.select(
        "province_code", "indicator_id", (pl.col("value") / 100).alias("ours_ratio"), pl.col("var").sqrt().alias("ours_se"))
    both = ours.join(theirs, on=["province_code", "indicator_id"], how="inner")
    assert both.height == ours.height == methodology.indicators.height * 63  # every indicator of every province
    valid = both.filter(pl.col("ours_se").is_not_null())
    assert valid.height > 0.7 * both.height and valid["se"].null_count() == 0
    r, se, their_se = valid["ours_ratio"].to_numpy(), valid["ours_se"].to_numpy(), valid["se"].to_numpy()
    assert np.allclose(r, valid["ratio"].to_numpy(), rtol=1e-12, atol=0)
    # a variance that is exactly 0 (e.g. two respondents of one PSU answering alike) comes out of R's
    # (V_YY - 2 R V_YA + R^2 V_AA) / A^2 as rounding noise (se ~1e-9 on the 0-1 scale): compared as below 1e-6
    big = their_se > 1e-6
    assert big.sum() > 0.7 * valid.height
    assert np.all(np.abs(se[big] - their_se[big]) <= REL * their_se[big])
    assert np.all(se[~big] < 1e-6)
    # where we give no se (no answer in the province), R has no finite ratio either
    assert both.filter(pl.col("ours_se").is_null())["se"].null_count() == both.filter(pl.col("ours_se").is_null()).height
