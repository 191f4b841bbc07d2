"""Readers: every encoding, separator and header style, and every kind of unreadable file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl
import pytest

from sipas_pipeline.ingest import UnreadableFile, read_export, to_bronze
from sipas_pipeline.ingest.normalize import place_key, province_lookup
from sipas_pipeline.synth.writers import encode_cp1258, write_xlsx

HEADER = ["Mã phiếu", "Tỉnh/Thành phố", "Ghi chú"]
ROWS = [["24-01-000001", "Hà Nội", "Đường Lê Lợi; số 5"], ["24-79-000002", "TP. HCM", "ổn, tốt"]]


def _text(sep: str) -> str:
    def q(v: str) -> str:
        return f'"{v}"' if (sep in v or "," in v or ";" in v) else v
    return "\r\n".join(sep.join(q(v) for v in row) for row in [HEADER, *ROWS]) + "\r\n"


ENCODINGS = {
    "utf8": lambda t: t.encode("utf-8"),
    "utf8-bom": lambda t: b"\xef\xbb\xbf" + t.encode("utf-8"),
    "utf16": lambda t: t.encode("utf-16"),
    "cp1258": encode_cp1258,
    "utf8-nfd": lambda t: __import__("unicodedata").normalize("NFD", t).encode("utf-8"),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_text_exports(tmp_path, encoding, sep):
    path = tmp_path / "batch.csv"
    path.write_bytes(ENCODINGS[encoding](_text(sep)))
    frame, info = read_export(path)
    assert info["separator"] == sep
    assert frame.columns == HEADER  # NFC headers whatever the encoding
    assert frame.rows() == [tuple(r) for r in ROWS]


def test_xlsx_and_parquet(tmp_path):
    df = pl.DataFrame([dict(zip(HEADER, r, strict=True)) for r in ROWS])
    write_xlsx(df, tmp_path / "b.xlsx")
    df.write_parquet(tmp_path / "b.parquet")
    for name in ("b.xlsx", "b.parquet"):
        frame, _ = read_export(tmp_path / name)
        assert frame.columns == HEADER and frame.rows() == [tuple(r) for r in ROWS]


def _corrupt_xlsx(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "not a workbook")


@pytest.mark.parametrize(("name", "make", "message"), [
    ("empty.csv", lambda p: p.write_bytes(b""), "empty file"),
    ("junk.csv", lambda p: p.write_bytes(bytes(range(256)) * 20), "binary content"),
    ("broken.xlsx", lambda p: p.write_bytes(b"PK\x03\x04 this is not a zip"), "cannot open workbook"),
    ("other.xlsx", _corrupt_xlsx, "cannot open workbook"),
    ("notes.docx", lambda p: p.write_bytes(b"x"), "unsupported file type"),
    ("bad.parquet", lambda p: p.write_bytes(b"PAR1garbage"), "cannot read Parquet"),
])
def test_unreadable_files_say_why(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(UnreadableFile) as info:
        read_export(path)
    assert message in str(info.value) and name in str(info.value)


def test_forced_encoding_failure_names_it(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes("Mã phiếu\r\nĐà Nẵng\r\n".encode("utf-16-le"))
    with pytest.raises(UnreadableFile, match="cannot decode as utf-8"):
        read_export(path, encoding="utf-8")


def test_missing_required_columns_are_listed(methodology):
    frame = pl.DataFrame({"Mã phiếu": ["1"], "Giới tính": ["1"]})
    with pytest.raises(UnreadableFile) as info:
        to_bronze(frame, methodology, "citizen", "citizen/x.csv", "0" * 64)
    assert "citizen/x.csv" in str(info.value)
    assert "missing required columns" in str(info.value) and "province_code" in str(info.value)


def test_kobo_paths_and_labels_map_to_fields(methodology):
    form = methodology.forms["official"]
    items = form.filter(pl.col("refs").str.starts_with("par:"))["field_id"].to_list()
    cols = {"_uuid": ["a"], "_submission_time": ["2024-09-01T10:00:00"], "respondent/province": ["Sơn La"],
            "Đối tượng khảo sát": ["2"], "respondent/full_name": ["Nguyễn Văn An"], "_id": ["1"]}
    cols |= {f"group_x/{i}": ["4"] for i in items}  # other group names: the last path segment counts
    bronze, summary = to_bronze(pl.DataFrame(cols), methodology, "official", "official/k.csv", "0" * 64)
    assert bronze["province_code"][0] == "14" and bronze["respondent_type"][0] == "2"
    assert bronze["submitted_at"][0] == "2024-09-01"
    assert "full_name" not in bronze.columns and "Nguyễn Văn An" not in str(bronze.rows())
    assert summary["ignored_columns"] == ["_id"]


@pytest.mark.parametrize(("spelling", "code"), [
    ("Thành phố Hồ Chí Minh", "79"), ("TP. HCM", "79"), ("Tp Hồ Chí Minh", "79"), ("Thừa Thiên - Huế", "46"),
    ("Ha Noi", "01"), ("  Hà   Nội ", "01"), ("HẢI PHÒNG", "31"), ("Tỉnh sơn la", "14"), ("1", "01"), ("08", "08"),
    ("Bà Rịa Vũng Tàu", "77"), ("Đắk Lắk", "66"),
])
def test_province_spellings_resolve(methodology, spelling, code):
    assert province_lookup(methodology)[place_key(spelling)] == code


def test_unknown_province_does_not_resolve(methodology):
    assert place_key("Hà Tây") not in province_lookup(methodology)


def test_dates_and_whitespace_normalised(methodology):
    frame = pl.DataFrame({"Mã phiếu": [" a ", "b", "c", "d"], "Tỉnh/Thành phố": ["Sơn La"] * 4,
                          "Mã huyện": ["1"] * 4, "Mã xã": ["1"] * 4, "Mã thôn": ["1"] * 4,
                          "Ngày phỏng vấn": ["2024-08-15", "15/08/2024", "45519", "2024-08-15 00:00:00"]})
    for f in methodology.forms["citizen"].filter(pl.col("required") == "yes")["field_id"]:
        if f not in ("form_id", "province_code", "district_code", "commune_code", "village_code", "interview_date"):
            frame = frame.with_columns(pl.lit("1").alias(f))
    bronze, _ = to_bronze(frame, methodology, "citizen", "citizen/x.csv", "0" * 64)
    assert bronze["interview_date"].to_list() == ["2024-08-15"] * 4
    assert bronze["form_id"][0] == "a"
    assert bronze["source_row"].to_list() == [2, 3, 4, 5]
