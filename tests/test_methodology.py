"""The 2024 methodology files, and the loader's checks on broken copies of them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from sipas_pipeline.methodology import MethodologyError, load_methodology

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def test_summary_counts_come_from_the_files(methodology):
    s = methodology.summary()
    assert s["indicators"] == {"assessment": 42, "satisfaction": 51, "expectation": 10}
    assert s["par"] == {"fields": 8, "criteria": 38, "subcriteria": 88, "appraisal_points": 68.0, "survey_points": 32.0}
    assert s["units"] == 63
    frame = pl.read_csv(SCHEMAS / "2024" / "sampling_frame.csv", comment_prefix="#", infer_schema=False)
    sample = frame.filter(pl.col("in_sample") == "yes")
    assert s["sampling_frame"] == {"districts": sample["district_code"].n_unique(), "communes": 385, "villages": 1170}
    # the population frame: the official list (vietnam-provinces 0.6.0) as committed, every commune with villages
    official = {name: pl.read_csv(SCHEMAS / "2024" / f"{name}.csv", comment_prefix="#", infer_schema=False)
                for name in ("districts", "communes")}
    assert s["frame"]["districts"] == official["districts"].height == 696
    assert s["frame"]["communes"] == official["communes"].height == frame["commune_code"].n_unique() == 10051
    assert s["frame"]["villages"] == frame.height and s["frame"]["source"]["version"] == "0.6.0"


@pytest.mark.integration
def test_cli_json(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sipas_pipeline.cli", "methodology", "--year", "2024", "--json"],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["year"] == 2024
    assert data["indicators"] == {"assessment": 42, "satisfaction": 51, "expectation": 10}
    assert data["par"]["subcriteria"] == 88 and data["units"] == 63
    assert data["frame"]["districts"] == 696 and data["frame"]["communes"] == 10051
    assert data["frame"]["source"]["package"] == "vietnam-provinces" and data["frame"]["source"]["version"] == "0.6.0"
    assert len(data["frame"]["source"]["file_sha256"]) == 64


def _broken_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS / "2024", root / "2024")
    path = root / "2024" / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture text not found in {file}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return root


BREAKS = [
    # (file, old text, new text, what the message must name)
    ("indicators.csv", "A_P_HEA_KNOW,", "A_P_ECO_KNOW,", ["indicators.csv", "A_P_ECO_KNOW", "unique indicator_id"]),
    ("indicators.csv", "S_P_ECO_CONTENT,satisfaction,policy,ECO,s_p_eco_content",
     "S_P_ECO_CONTENT,satisfaction,policy,ECO,s_p_eco_missing", ["indicators.csv", "S_P_ECO_CONTENT", "question exists"]),
    ("indicators.csv", "s_p_eco_content,4|5", "s_p_eco_content,4|7", ["S_P_ECO_CONTENT", "counting codes exist", "'7'"]),
    ("indicators.csv", "E_10,expectation", "X_10,expectation_x", ["X_10", "rule 'type'"]),
    ("par_subcriteria.csv", "1.1.1,1.1,1,appraisal,1.25", "1.1.1,1.1,1,appraisal,1.5",
     ["par_subcriteria.csv", "field 1", "field points", "points sum to 100"]),
    ("par_subcriteria.csv", "1.1.1,1.1,1,", "1.1.1,1.9,1,", ["1.1.1", "criterion exists"]),
    ("par_subcriteria.csv", "1.1.1,1.1,1,", "1.1.1,1.1,2,", ["1.1.1", "one field", "criterion 1.1 is in field 1"]),
    ("provinces.csv", "02,Hà Giang,Ha Giang,TDMNPB", "02,Hà Giang,Ha Giang,NOWHERE", ["provinces.csv", "entry 02", "one region"]),
    ("citizen_form.csv", "a_p_gen_commented == 1", "a_p_gen_commentedx == 1",
     ["citizen_form.csv", "a_p_gen_answered", "ask_if names a field"]),
    ("citizen_form.csv", "sex,Giới tính|gioi_tinh|sex,int,sex,", "sex,Giới tính|gioi_tinh|sex,int,gender,",
     ["entry sex", "code list exists"]),
    ("official_form.csv", "refs", "refs", ["official_form.csv"]),  # replaced below: item pointing at appraisal
    ("sampling_frame.csv", "02,024,00688,0068802", "02,026,00688,0068802", ["sampling_frame.csv", "00688", "nests"]),
]
BREAKS += [
    ("methodology.yaml", "  psu: psu ", "  psu: commune ", ["methodology.yaml: design.psu", "column exists", "'commune'"]),
    ("methodology.yaml", "lonely_psu: adjust", "lonely_psu: drop", ["design.lonely_psu", "known rule", "'drop'"]),
    ("methodology.yaml", "confidence: 0.95", "confidence: 95", ["design.confidence", "probability"]),
    ("sampling_frame.csv", "0000803,01-U,yes,1958,yes", "0000803,01-U,yes,1958,maybe",
     ["sampling_frame.csv", "entry 0000803", "in_sample"]),
    ("sampling_frame.csv", "0000804,01-U,yes", "0000804,01-R,no", ["entry 00008", "lies in more than one stratum"]),
    ("sampling_frame.csv", "0000805,01-U,yes,1461,yes", "0000805,01-U,yes,1461,no",
     ["sampling_frame.csv", "villages", "expected 1170, found 1169"]),
    # the official list (issue #22): a frame commune it does not hold, a district fewer than the list's 696
    ("communes.csv", "01,001,00008,Phường Liễu Giai", "01,001,00009,Phường Liễu Giai",
     ["sampling_frame.csv", "entry 00008", "official commune", "communes.csv"]),
    ("districts.csv", "01,001,Quận Ba Đình,quận,13", "01,001,Quận Ba Đình,quận,13\n01,999,Quận Mới,quận,0",
     ["districts.csv", "frame districts", "expected 696, found 697"]),
]
BREAKS[10] = ("official_form.csv", "par:1.5.2", "par:1.1.1", ["official_form.csv", "par:1.1.1", "feeds a survey sub-criterion"])
BREAKS += [  # the completeness block (issue #12)
    ("methodology.yaml", "citizen: {min_valid_forms: 10}", "citizen: {min_valid_forms: 0}",
     ["methodology.yaml: completeness.citizen.min_valid_forms", "positive integer", "0"]),
    ("methodology.yaml", "official: {min_valid_forms: 10}", "official: {min_forms: 10}",
     ["completeness.official.min_forms", "rule 'known key'", "completeness.official.min_valid_forms"]),
    ("methodology.yaml", "appraisal: {every_subcriterion: true}", "appraisal: {every_subcriterion: maybe}",
     ["completeness.appraisal.every_subcriterion", "rule 'boolean'", "'maybe'"]),
    ("methodology.yaml", "completeness:\n", "completeness_off:\n", ["methodology.yaml: completeness", "rule 'present'"]),
]


@pytest.mark.parametrize(("file", "old", "new", "expect"), BREAKS, ids=[f"{b[0]}:{b[3][-1]}" for b in BREAKS])
def test_each_broken_rule_is_named(tmp_path, file, old, new, expect):
    root = _broken_copy(tmp_path, file, old, new)
    with pytest.raises(MethodologyError) as info:
        load_methodology(2024, root=root)
    message = str(info.value)
    for part in expect:
        assert part in message, f"{part!r} not in:\n{message}"


def test_counts_are_checked(tmp_path):
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS / "2024", root / "2024")
    path = root / "2024" / "indicators.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(ln for ln in lines if not ln.startswith("E_10,")), encoding="utf-8")
    with pytest.raises(MethodologyError, match=r"type expectation: rule 'count': expected 10 indicators, found 9"):
        load_methodology(2024, root=root)


def test_missing_file_and_year(tmp_path):
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS / "2024", root / "2024")
    (root / "2024" / "code_lists.csv").unlink()
    with pytest.raises(MethodologyError, match=r"code_lists.csv: missing"):
        load_methodology(2024, root=root)
    with pytest.raises(MethodologyError, match=r"no methodology folder for year 2031"):
        load_methodology(2031, root=root)
