"""The 2024 and 2025 sampling frames built on the official unit lists (issue #22, item 6): counts, codes, names,
unit types, the 2025 communes' 2024 predecessors, and the re-surveyed sample."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import polars as pl
import pytest

from sipas_pipeline.methodology import load_methodology

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
REFERENCE = Path("/work/shared/reference")


def _csv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, comment_prefix="#", infer_schema=False)


@pytest.fixture(scope="module")
def lists() -> dict[str, pl.DataFrame]:
    return {"districts": _csv(SCHEMAS / "2024" / "districts.csv"), "communes24": _csv(SCHEMAS / "2024" / "communes.csv"),
            "communes25": _csv(SCHEMAS / "2025" / "communes.csv"), "mapping": _csv(SCHEMAS / "2025" / "commune_mapping.csv")}


def test_the_lists_hold_the_official_counts(lists):
    assert lists["districts"].height == 696 and lists["districts"]["district_code"].n_unique() == 696
    assert lists["communes24"].height == 10051 and lists["communes24"]["commune_code"].n_unique() == 10051
    assert lists["communes25"].height == 3321 and lists["communes25"]["province_code"].n_unique() == 34
    # the list's own per-district counts agree with its communes (5 island districts have none)
    per = lists["communes24"].group_by("district_code").len()
    both = lists["districts"].join(per, on="district_code", how="left").with_columns(pl.col("len").fill_null(0))
    assert (both["communes"].cast(pl.Int64) == both["len"]).all() and (both["len"] == 0).sum() == 5


def test_names_are_nfc_and_urban_follows_the_unit_type(lists):
    for key in ("districts", "communes24", "communes25"):
        assert all(unicodedata.is_normalized("NFC", n) for n in lists[key]["name_vi"])
    for key, urban in (("communes24", {"phường", "thị trấn"}), ("communes25", {"phường"})):
        t = lists[key]
        assert ((t["urban"] == "yes") == t["unit_type"].is_in(list(urban))).all()
        assert t["name_vi"].str.to_lowercase().str.starts_with(t["unit_type"] + " ").all()
    assert set(lists["communes25"]["unit_type"]) == {"phường", "xã", "đặc khu"}


def test_province_codes_agree_with_the_reference_and_the_methodology(lists):
    ref24 = set(_csv(REFERENCE / "provinces_2024.csv")["province_code"]) if REFERENCE.is_dir() else None
    units24 = set(load_methodology(2024).provinces["province_code"])
    units25 = set(load_methodology(2025).provinces["province_code"])
    assert set(lists["communes24"]["province_code"]) == set(lists["districts"]["province_code"]) == units24
    assert ref24 is None or ref24 == units24
    assert set(lists["communes25"]["province_code"]) == units25
    # each 2024 commune maps into the unit its province became
    unit_of = dict(load_methodology(2025).unit_mapping.select("from_code", "to_code").iter_rows())
    m = lists["mapping"]
    assert (m["from_province"].replace_strict(unit_of) == m["to_province"]).all()


def test_every_2024_commune_has_one_2025_commune(lists):
    m = lists["mapping"]
    assert m.height == 10051 and m["from_commune"].n_unique() == 10051
    assert set(m["from_commune"]) == set(lists["communes24"]["commune_code"])
    new = lists["communes25"].select(pl.col("commune_code").alias("to_commune"), pl.col("province_code").alias("p"))
    assert m.join(new, on="to_commune", how="anti").height == 0
    assert (m.join(new, on="to_commune")["p"] == m["to_province"]).all()
    # rule `code`: the 2025 commune kept the code of this predecessor (3,310 of 3,321 kept one)
    code = m.filter(pl.col("rule") == "code")
    assert code.height == 3310 and (code["from_commune"] == code["to_commune"]).all()
    assert set(m["rule"]) <= {"code", "nearest code in district", "nearest code in unit"}
    # a 2025 commune that kept a 2024 code contains its code predecessor, never another commune's
    kept = set(code["to_commune"])
    assert m.filter(pl.col("from_commune").is_in(list(kept)))["rule"].eq("code").all()
    without = lists["communes25"].join(m.select(pl.col("to_commune").alias("commune_code")).unique(),
                                       on="commune_code", how="anti")
    assert without.height == 7 and (without["unit_type"] == "đặc khu").sum() == 5


def test_the_2024_frame_puts_villages_in_every_official_commune(lists):
    m = load_methodology(2024)
    frame = m.population_frame
    assert frame.select("province_code", "district_code", "commune_code").unique().sort("commune_code").equals(
        lists["communes24"].select("province_code", "district_code", "commune_code").sort("commune_code"))
    urban = lists["communes24"].select("commune_code", pl.col("urban").alias("official"))
    assert (frame.join(urban, on="commune_code").select(pl.col("urban") == pl.col("official")).to_series()).all()
    assert (frame["stratum"] == frame["province_code"] + "-" + pl.Series(["U" if u == "yes" else "R"
                                                                           for u in frame["urban"]])).all()
    assert (frame["village_code"].str.slice(0, 5) == frame["commune_code"]).all()


def test_the_2025_frame_re_surveys_the_2024_sample(lists):
    f24 = load_methodology(2024).population_frame
    f25 = load_methodology(2025).population_frame
    both = f24.join(f25, on="village_code", suffix="_25")
    assert both.height == f24.height == f25.height
    assert (both["population"] == both["population_25"]).all()
    assert (both["psu"] == both["commune_code"]).all()  # the PSU keeps its 2024 commune code
    # the sample re-surveyed, 5% of the PSUs rotated (synth/rotation.py): within a kept PSU the same villages
    s24, s25 = (both.filter(pl.col(c) == "yes") for c in ("in_sample", "in_sample_25"))
    kept = set(s24["commune_code"]) & set(s25["psu"])
    assert s24.height == s25.height == 1170 and s24["commune_code"].n_unique() == s25["psu"].n_unique() == 385
    assert 360 <= len(kept) < 385
    assert (both.filter(pl.col("psu").is_in(list(kept))).select(pl.col("in_sample") == pl.col("in_sample_25"))
            .to_series().all())
    assert (s25.group_by("stratum_25").len().sort("stratum_25")["len"] == s24.group_by("stratum_25").len()
            .sort("stratum_25")["len"]).all()  # every stratum keeps its villages
    to = dict(lists["mapping"].select("from_commune", "to_commune").iter_rows())
    assert (both["commune_code"].replace_strict(to) == both["commune_code_25"]).all()
    assert (both["stratum_25"] == both["province_code_25"] + "-" + both["stratum"]).all()
    assert set(f25["commune_code"]) <= set(lists["communes25"]["commune_code"])
