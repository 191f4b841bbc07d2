"""The synthetic year: sizes, determinism, defects, and calibration to the published figures."""

from __future__ import annotations

import filecmp
import io
import json
import subprocess
import sys

import polars as pl
import pytest

from sipas_pipeline.synth.writers import encode_cp1258


def _count_rows(path) -> int:
    """Rows of a raw export counted independently of the pipeline's readers."""
    if path.suffix == ".xlsx":
        return pl.read_excel(path).height
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1258")
    return len(text.strip("\r\n").split("\r\n")) - 1


def test_full_year_sizes(full_year):
    manifest = json.loads((full_year / "truth" / "manifest.json").read_text(encoding="utf-8"))
    citizen = sorted((full_year / "citizen").iterdir())
    assert len(citizen) == 63
    assert sum(_count_rows(p) for p in citizen) == 36_525
    assert _count_rows(next((full_year / "official").iterdir())) == 49_159
    assert _count_rows(next((full_year / "appraisal").iterdir())) == 63 * 88
    assert manifest["rows"] == {"citizen": 36_525, "official": 49_159, "appraisal": 63 * 88}
    formats = {f["format"] for f in manifest["files"] if f["source"] == "citizen"}
    assert {"csv-utf8", "csv-utf8-bom", "csv-cp1258-semicolon", "xlsx"} <= formats


def test_defects_are_many_and_varied(full_year):
    defects = pl.read_csv(full_year / "truth" / "defects.csv")
    assert defects.height >= 0.01 * (36_525 + 49_159)
    assert defects["kind"].n_unique() >= 10
    assert set(defects["action"]) == {"repair", "quarantine"}
    assert defects.filter(pl.col("action") == "quarantine")["rule"].null_count() == 0
    assert defects.select("file", "row").is_duplicated().sum() == 0  # one defect per row


def test_personal_data_is_in_the_raw_files(full_year):
    manifest = json.loads((full_year / "truth" / "manifest.json").read_text(encoding="utf-8"))
    utf8 = next(f["path"] for f in manifest["files"] if f["format"] == "csv-utf8" and f["source"] == "citizen")
    header = (full_year / utf8).read_text(encoding="utf-8").splitlines()[0].split(",")
    assert {"Họ và tên", "Số điện thoại", "Số CCCD", "Địa chỉ"} <= set(header)  # keyed from paper


def test_same_seed_same_bytes(tmp_path):
    for name in ("A", "B"):
        subprocess.run([sys.executable, "-m", "sipas_pipeline.cli", "sample", "--year", "2024", "--out",
                        str(tmp_path / name), "--seed", "7"], check=True, capture_output=True)
    cmp = filecmp.dircmp(tmp_path / "A", tmp_path / "B")

    def same(c) -> bool:
        if c.left_only or c.right_only or c.diff_files or c.funny_files:
            return False
        return all(same(sub) for sub in c.subdirs.values())

    assert same(cmp)
    a = {p.relative_to(tmp_path / "A") for p in (tmp_path / "A").rglob("*") if p.is_file()}
    assert len(a) >= 63 + 1 + 1 + 4
    assert all(filecmp.cmp(tmp_path / "A" / p, tmp_path / "B" / p, shallow=False) for p in a)


def test_other_seed_other_bytes(tmp_path):
    from sipas_pipeline.synth import generate_year

    generate_year(2024, tmp_path / "a", seed=1, scale=0.02)
    generate_year(2024, tmp_path / "b", seed=2, scale=0.02)
    assert not filecmp.cmp(tmp_path / "a/official/kobo_par_officials_2024.csv",
                           tmp_path / "b/official/kobo_par_officials_2024.csv", shallow=False)


@pytest.fixture(scope="module")
def truth(full_year) -> pl.DataFrame:
    return pl.read_csv(full_year / "truth" / "provinces.csv", schema_overrides={"province_code": pl.Utf8})


def test_sipas_calibration(truth):
    assert truth.height == 63
    assert truth["sipas"].mean() == pytest.approx(83.94, abs=0.05)
    assert truth["sipas_policy"].mean() < truth["sipas_service"].mean()
    ranked = truth.sort("sipas", descending=True)["province_code"].to_list()
    assert ranked[:2] == ["31", "19"]  # Hải Phòng, Thái Nguyên
    assert set(ranked[2:5]) == {"30", "22", "77"}
    assert set(ranked[-5:]) == {"06", "20", "49", "89", "51"}
    son_la = truth.filter(pl.col("province_code") == "14")["sipas"][0]
    assert son_la == pytest.approx(84.05, abs=0.05)
    assert ranked.index("14") + 1 == 26
    assert truth.filter(pl.col("province_code") == "31")["sipas"][0] == pytest.approx(90.59, abs=0.05)
    assert truth["sipas"].std() > 2  # realistic spread between provinces


def test_par_calibration(truth):
    assert truth["par"].mean() == pytest.approx(88.37, abs=0.05)
    assert (truth["par"] >= 90).sum() == 13
    assert truth["par"].min() > 80
    ranked = truth.sort("par", descending=True)
    assert ranked["province_code"][0] == "31" and ranked["par"][0] == pytest.approx(96.17, abs=0.05)
    assert ranked["province_code"][-1] == "04"  # Cao Bằng last
    assert ranked["province_code"].to_list()[1:5] == ["77", "01", "22", "19"]
    by_region = dict(truth.group_by("region_code").agg(pl.col("par").mean()).iter_rows())
    published = {"DBSH": 90.17, "DNB": 89.44, "BTBDHMT": 88.51, "TDMNPB": 88.20, "DBSCL": 87.37, "TN": 85.63}
    for region, value in published.items():
        assert by_region[region] == pytest.approx(value, abs=0.15), region


def test_element_spread(full_year):
    tree = pl.read_csv(full_year / "truth" / "tree.csv", schema_overrides={"province_code": pl.Utf8})
    means = tree.group_by("node").agg(pl.col("value").mean())
    elements = means.filter(pl.col("node").is_in(["ECO", "ELE", "TRA", "FBK", "STA"]))
    assert elements["value"].max() - elements["value"].min() > 3


def test_cp1258_round_trip():
    text = "Thừa Thiên Huế; Nghệ An; Quảng Ngãi; Đắk Lắk; Bạc Liêu"
    import unicodedata
    assert unicodedata.normalize("NFC", encode_cp1258(text).decode("cp1258")) == text
    assert io.BytesIO(encode_cp1258(text)).read().decode("cp1258") != text  # tone marks are decomposed
