"""A third, deliberately different survey year, built by the test in a temporary schemas folder, runs end to end
with no code change: 6 units (the 2024 provinces merged by region), an indicator and a policy group added
(digital government, on a new question), an indicator removed (with its question), other weights (the service
part counts twice, economic development twice), its own survey window. Everything the code needs comes from the
year's files."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from sipas_pipeline.paths import schemas_root

YEAR = 2030


def _csv(path: Path) -> tuple[str, pl.DataFrame]:
    text = path.read_text(encoding="utf-8")
    comments = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    return comments, pl.read_csv(path, comment_prefix="#", infer_schema=False)


def _write(path: Path, comments: str, frame: pl.DataFrame) -> None:
    path.write_text(comments + frame.write_csv(), encoding="utf-8")


def build_year(root: Path) -> Path:
    """schemas/2030 in `root` (beside copies of 2024 and the DuckDB SQL), from 2024's files."""
    for part in ("2024", "duckdb"):
        shutil.copytree(schemas_root() / part, root / part)
    src, dst = root / "2024", root / str(YEAR)
    shutil.copytree(src, dst)
    (dst / "published.csv").unlink()
    _, provinces = _csv(src / "provinces.csv")
    meta = yaml.safe_load((src / "methodology.yaml").read_text(encoding="utf-8"))
    # six units: each region's provinces merged into one unit named after the region, coded by its first province
    first = provinces.group_by("region_code").agg(pl.col("province_code").min().alias("unit"))
    names = {r["region_code"]: r for r in meta["regions"]}
    units = first.select(pl.col("unit").alias("province_code"),
                         pl.col("region_code").replace_strict({k: v["name_vi"] for k, v in names.items()}).alias("name_vi"),
                         pl.col("region_code").replace_strict({k: v["name_en"] for k, v in names.items()}).alias("name_en"),
                         "region_code").sort("province_code")
    _write(dst / "provinces.csv", "# Six units: the 2024 provinces of each region merged.\n", units)
    to_unit = provinces.join(first, on="region_code").select("province_code", "unit")
    mapping = provinces.join(first, on="region_code").join(units.select(pl.col("province_code").alias("unit"),
                                                                        pl.col("name_vi").alias("to_name")), on="unit")
    _write(dst / "unit_mapping.csv", "", mapping.select(pl.lit("2024").alias("from_year"),
                                                         pl.col("province_code").alias("from_code"),
                                                         pl.col("name_vi").alias("from_name"),
                                                         pl.col("unit").alias("to_code"), "to_name"))
    unit_of = dict(zip(to_unit["province_code"], to_unit["unit"], strict=True))
    comments, aliases = _csv(src / "province_aliases.csv")
    _write(dst / "province_aliases.csv", comments,
           pl.concat([aliases.with_columns(pl.col("province_code").replace_strict(unit_of)),
                      provinces.select(pl.col("name_vi").alias("alias"), pl.col("province_code").replace_strict(unit_of))])
           .unique("alias", keep="first", maintain_order=True))
    for official in ("districts.csv", "communes.csv"):  # the official lists, in the new units
        comments, units_list = _csv(src / official)
        _write(dst / official, comments, units_list.with_columns(pl.col("province_code").replace_strict(unit_of)))
    comments, frame = _csv(src / "sampling_frame.csv")
    _write(dst / "sampling_frame.csv", comments, frame.with_columns(
        (pl.col("province_code").replace_strict(unit_of) + "-" + pl.col("stratum")).alias("stratum"),
        pl.col("province_code").replace_strict(unit_of)))
    # forms and indicators: + digital government (new question, new policy group), - S_P_ECO_RESULT (and its question)
    comments, form = _csv(src / "citizen_form.csv")
    row = form.filter(pl.col("field_id") == "s_p_eco_content").with_columns(
        pl.lit("s_p_dig_content").alias("field_id"), pl.lit("S_P_DIG_CONTENT").alias("headers"),
        pl.lit("Chuyển đổi số: dịch vụ công trực tuyến dễ dùng").alias("label_vi"),
        pl.lit("Digital government: online public services are easy to use").alias("label_en"))
    _write(dst / "citizen_form.csv", comments, pl.concat([form.filter(pl.col("field_id") != "s_p_eco_result"), row]))
    comments, ind = _csv(src / "indicators.csv")
    new = ind.filter(pl.col("indicator_id") == "S_P_ECO_CONTENT").with_columns(
        pl.lit("S_P_DIG_CONTENT").alias("indicator_id"), pl.lit("DIG").alias("element"),
        pl.lit("s_p_dig_content").alias("question_id"), pl.lit("Hài lòng — Chuyển đổi số").alias("label_vi"),
        pl.lit("Satisfied — Digital government").alias("label_en"))
    _write(dst / "indicators.csv", comments, pl.concat([ind.filter(pl.col("indicator_id") != "S_P_ECO_RESULT"), new]))
    meta["year"] = YEAR
    meta["version"] = f"{YEAR}.test"
    meta["files"]["unit_mapping"] = "unit_mapping.csv"
    meta["comparable"] = {"previous_year": 2024, "mapping": "unit_mapping", "par": "not_comparable"}
    meta["survey_window"] = {"start": f"{YEAR}-06-01", "end": f"{YEAR}-12-31"}
    meta["expected_counts"]["units"] = 6
    meta["design"]["rank_seed"] = YEAR
    policy, service = meta["sipas"]["parts"]
    service["weight"] = 2
    policy["children"][0]["weight"] = 2  # ECO
    policy["children"].append({"id": "DIG", "label_vi": "Chuyển đổi số", "label_en": "Digital government", "weight": 1})
    (dst / "methodology.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def third(tmp_path_factory) -> Path:
    return build_year(tmp_path_factory.mktemp("schemas"))


def test_third_year_methodology(third, monkeypatch):
    from sipas_pipeline.methodology import load_methodology

    monkeypatch.setenv("SIPAS_SCHEMAS", str(third))
    m = load_methodology(YEAR)
    s = m.summary()
    assert s["units"] == 6 and s["indicators"]["satisfaction"] == 51
    assert "S_P_DIG_CONTENT" in m.indicators["indicator_id"].to_list()
    assert "S_P_ECO_RESULT" not in m.indicators["indicator_id"].to_list()
    assert m.parts.filter(pl.col("part") == "service")["weight"][0] == 2.0


@pytest.mark.integration
def test_third_year_runs_end_to_end(third, prefect_harness, tmp_path, monkeypatch):
    from sipas_pipeline.orchestration import annual_run
    from sipas_pipeline.publish import read_query as query
    from sipas_pipeline.synth import generate_year

    monkeypatch.setenv("SIPAS_SCHEMAS", str(third))
    raw = tmp_path / "raw"
    manifest = generate_year(YEAR, raw, seed=3, scale=0.1)
    assert manifest["year"] == YEAR
    db = tmp_path / "sipas.duckdb"
    result = annual_run(year=YEAR, raw=str(raw), db=str(db), work=str(tmp_path / "work"))
    assert result["status"] == "published" and result["year"] == YEAR
    assert query(db, "SELECT count(DISTINCT unit_code) FROM current_ranks WHERE year = ?", [YEAR]) == [(6,)]
    nodes = {r[0] for r in query(db, "SELECT DISTINCT node FROM current_sipas_indices WHERE year = ?", [YEAR])}
    assert "DIG" in nodes
    assert query(db, "SELECT count(*) FROM current_indicator_values WHERE year = ? AND indicator_id = 'S_P_ECO_RESULT'",
                 [YEAR]) == [(0,)]
    # the weights of the year's tree: SIPAS = (policy + 2 service) / 3
    parts = dict(query(db, """SELECT node, value FROM current_sipas_indices WHERE year = ? AND unit_level = 'province'
                              AND unit_code = '01' AND level IN ('part', 'sipas')""", [YEAR]))
    assert parts["SIPAS"] == pytest.approx((parts["policy"] + 2 * parts["service"]) / 3, rel=1e-9)
    truth = pl.read_csv(raw / "truth" / "provinces.csv", schema_overrides={"province_code": pl.Utf8})
    assert truth.height == 6
    # the analyst release of a year the code has never seen: the report names its six units, a workbook beside
    names = [n for (n,) in query(db, "SELECT DISTINCT unit_name_vi FROM current_ranks WHERE year = ?", [YEAR])]
    html = Path(result["release"]["html"]).read_text(encoding="utf-8")
    assert len(names) == 6 and all(n in html for n in names) and Path(result["release"]["workbook"]).is_file()
