"""Bad exports and workbooks (issue #12): each kind gives its exact outcome — the quarantine rule and
line, or the unreadable / ignored reason — with rows read = valid + quarantined and no personal data
in any output. Small files in tmp_path through the pure ingest and validate functions; a few cases
through the real `sipas validate` command."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from typer.testing import CliRunner

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.cli import app
from sipas_pipeline.ingest import ingest_source
from sipas_pipeline.synth.writers import encode_cp1258
from sipas_pipeline.validate import read_bronze, validate_source

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "2024" / "citizen" / "sipas2024_01_ha-noi.csv"
_rows = list(csv.reader(io.StringIO(SAMPLE.read_text(encoding="utf-8-sig"), newline="")))
HEADER = _rows[0]
CLEAN = _rows[1:3]  # the generator never spoils a batch's first two rows
NAME, PHONE, ID_NO, ADDRESS = (HEADER.index(h) for h in ("Họ và tên", "Số điện thoại", "Số CCCD", "Địa chỉ"))
OCCUPATION = HEADER.index("Nghề nghiệp")  # the column just before the name
PROVINCE, DATE = HEADER.index("Tỉnh/Thành phố"), HEADER.index("Ngày phỏng vấn")
SAT = HEADER.index("S_P_ECO_CONTENT")  # a satisfaction answer (codes 1-5, 9)
STRATUM, PSU, WEIGHT = (HEADER.index(h) for h in ("Tầng mẫu", "Đơn vị mẫu cấp 1", "Quyền số"))


def rows(n: int = 3) -> list[list[str]]:
    """n valid rows with their own form ids and planted personal data (names, phones, ID numbers, addresses)."""
    out = []
    for i in range(n):
        r = list(CLEAN[i % 2])
        r[0] = f"24-01-9{i:05d}"
        r[NAME], r[PHONE] = f"Phạm Thị Bí Mật {i}", f"09{i:02d}5550{i:02d}1"
        r[ID_NO], r[ADDRESS] = f"0019{i:02d}7777{i:02d}", f"Số {i} ngõ Riêng Tư"
        out.append(r)
    return out


def pii_of(table: list[list[str]]) -> set[str]:
    return {r[k] for r in table for k in (NAME, PHONE, ID_NO, ADDRESS) if k < len(r) and r[k]}


def text(header: list[str], body: list[list[str]], sep: str = ",", eol: str = "\r\n") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator=eol).writerows([header, *body])
    return buf.getvalue()


def xlsx(sheets: dict[str, list[list[str | None]]], merge: tuple[int, int, int, int, str] | None = None) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    for name, grid in sheets.items():
        ws = wb.add_worksheet(name)
        for r, row in enumerate(grid):
            for c, v in enumerate(row):
                if v is not None:
                    ws.write_string(r, c, v)
        if merge and name == list(sheets)[-1]:
            ws.merge_range(*merge[:4], merge[4])
    wb.close()
    return buf.getvalue()


@dataclass
class Outcome:
    report: object
    bronze: pl.DataFrame | None
    silver: pl.DataFrame
    quarantine: pl.DataFrame

    @property
    def unreadable(self) -> dict[str, str]:
        return {u["file"]: u["reason"] for u in self.report.unreadable}

    @property
    def ignored(self) -> dict[str, str]:
        return {u["file"]: u["reason"] for u in self.report.ignored}

    def rules(self) -> dict[tuple[str, int], set[str]]:
        """(file, line) -> the rules that quarantined the row."""
        q = self.quarantine.explode("reasons").unnest("reasons") if self.quarantine.height else self.quarantine
        out: dict[tuple[str, int], set[str]] = {}
        for r in q.iter_rows(named=True):
            out.setdefault((r["source_file"].split("/", 1)[1], r["source_row"]), set()).add(r["rule"])
        return out

    def messages(self, rule: str) -> list[str]:
        q = self.quarantine.explode("reasons").unnest("reasons")
        return q.filter(pl.col("rule") == rule)["message"].to_list()

    def text_blob(self) -> str:
        frames = [f for f in (self.bronze, self.silver, self.quarantine) if f is not None and f.height]
        parts = [json.dumps([self.report.files, self.report.unreadable, self.report.ignored], ensure_ascii=False, default=str)]
        for f in frames:
            parts += [str(v) for col in f.iter_columns() for v in col.to_list()]
        return "\n".join(parts)


def ingest_files(m, tmp_path: Path, files: dict[str, bytes]) -> Outcome:
    """Write files under raw/citizen/, ingest that source and validate it; check the accounting."""
    raw = tmp_path / "raw"
    for name, data in files.items():
        path = raw / "citizen" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    report = ingest_source(m, "citizen", raw, tmp_path / "bronze")
    bronze = read_bronze(StageFolder(tmp_path), "citizen")
    if bronze is None:
        empty = pl.DataFrame()
        return Outcome(report, None, empty, empty)
    result = validate_source(m, "citizen", bronze)
    assert bronze.height == report.rows == result.silver.height + result.quarantine.height
    assert int(result.accounting["read"].sum()) == bronze.height
    return Outcome(report, bronze, result.silver, result.quarantine)


def _drop(r: list[str], at: int) -> list[str]:
    return r[:at] + r[at + 1:]


def _set(r: list[str], at: int, value: str) -> list[str]:
    r = list(r)
    r[at] = value
    return r


def _utf8(t: str) -> bytes:
    return t.encode("utf-8")


R = rows()
COVER = [["BÁO CÁO KHẢO SÁT SIPAS 2024"], ["Sở Nội vụ Hà Nội"]]


def _mixed() -> bytes:
    lines = text(HEADER, R, eol="\n").split("\n")
    return "\r\n".join(lines[:2]).encode() + b"\n" + "\n".join(lines[2:]).encode()


def _merged_header() -> bytes:
    groups = ["Thông tin phiếu"] + [None] * 5 + ["Người trả lời"] + [None] * (len(HEADER) - 7)
    return xlsx({"Sheet1": [["PHIẾU KHẢO SÁT"], groups, *R]}, merge=(1, 0, 1, 5, "Thông tin phiếu"))


def _stray_cell(row: int, col: int) -> bytes:
    """A workbook of three good rows and one stray cell far away (xlsxwriter declares the extent it reaches)."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet("Dữ liệu")
    for r, cells in enumerate([HEADER, *R]):
        for c, v in enumerate(cells):
            ws.write_string(r, c, v)
    ws.write_string(row, col, "x")
    wb.close()
    return buf.getvalue()


def _declared_extent(workbook: bytes | None = None, ref: bytes = b"A1:XFD1048576") -> bytes:
    """A workbook whose sheet declares the extent `ref` in its <dimension> (by default a small workbook declaring the
    whole grid; with a stray cell and a small `ref`, a cell the declaration does not admit)."""
    src = zipfile.ZipFile(io.BytesIO(workbook or xlsx({"Dữ liệu": [HEADER, *R]})))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]+"', b'<dimension ref="' + ref + b'"', data)
            out.writestr(item, data)
    return buf.getvalue()


def _design(at: int, value: str) -> bytes:
    return _utf8(text(HEADER, [R[0], _set(R[1], at, value), R[2]]))


TOO_LARGE = "too large to read (at most 500,000 rows and columns up to ZZ)"
# name, file name, bytes, expected: {"valid": n, "rules": {line: {rules}}, "unreadable": text, "info": {k: v}}
CASES: list[tuple[str, str, Callable[[], bytes], dict]] = [
    ("ragged_short", "a.csv", lambda: _utf8(text(HEADER, [R[0], _drop(R[1], OCCUPATION), R[2]])),
     {"valid": 2, "rules": {3: {"row_shape"}}, "message": f"line 3: {len(HEADER) - 1} fields where the header (line 1) "
                                                          f"has {len(HEADER)}"}),
    ("ragged_long", "a.csv", lambda: _utf8(text(HEADER, [R[0], R[1], [*R[2][:5], "x", *R[2][5:]]])),
     {"valid": 2, "rules": {4: {"row_shape"}}, "message": f"line 4: {len(HEADER) + 1} fields"}),
    ("shifted_pii_first_row", "a.csv", lambda: _utf8(text(HEADER, [_drop(R[0], OCCUPATION), R[1], R[2]])),
     {"valid": 2, "rules": {2: {"row_shape"}}}),
    ("ragged_tsv", "a.tsv", lambda: _utf8(text(HEADER, [R[0], R[1][:-3], R[2]], sep="\t")),
     {"valid": 2, "rules": {3: {"row_shape"}}, "info": {"separator": "\t"}}),
    ("cr_only", "a.csv", lambda: _utf8(text(HEADER, R, eol="\r")), {"valid": 3, "info": {"line_endings": "CR"}}),
    ("crlf", "a.csv", lambda: _utf8(text(HEADER, R)), {"valid": 3, "info": {"line_endings": "CRLF"}}),
    ("lf", "a.csv", lambda: _utf8(text(HEADER, R, eol="\n")), {"valid": 3, "info": {"line_endings": "LF"}}),
    ("mixed_endings", "a.csv", _mixed, {"valid": 3, "info": {"line_endings": "mixed (CRLF 1, LF 3)"}}),
    ("cp1258", "a.csv", lambda: encode_cp1258(text(HEADER, R)), {"valid": 3, "info": {"encoding": "cp1258"}}),
    ("cp1252_lost_letters", "a.csv", lambda: text(HEADER, R).encode("cp1252", errors="replace"),
     {"unreadable": "missing required columns: form_id, province_code", "unreadable_also": "cp1252"}),
    ("utf16_le_bom", "a.csv", lambda: b"\xff\xfe" + text(HEADER, R).encode("utf-16-le"),
     {"valid": 3, "info": {"encoding": "utf-16"}}),
    ("utf16_be_bom", "a.csv", lambda: b"\xfe\xff" + text(HEADER, R).encode("utf-16-be"),
     {"valid": 3, "info": {"encoding": "utf-16"}}),
    ("utf16_le_no_bom", "a.csv", lambda: text(HEADER, R).encode("utf-16-le"), {"valid": 3, "info": {"encoding": "utf-16-le"}}),
    ("utf8_bom", "a.csv", lambda: b"\xef\xbb\xbf" + _utf8(text(HEADER, R)), {"valid": 3, "info": {"encoding": "utf-8-sig"}}),
    ("bom_inside_key", "a.csv", lambda: _utf8(text(HEADER, [R[0], _set(R[0], 0, R[0][0][:3] + "\ufeff" + R[0][0][3:]),
                                                            R[2]])),
     {"valid": 2, "rules": {3: {"duplicate_key"}}, "message": "exact copy of the row first at citizen/a.csv:2"}),
    ("zero_width_in_key", "a.csv", lambda: _utf8(text(HEADER, [R[0], _set(R[0], 0, "\u200b" + R[0][0] + "\u2060"), R[2]])),
     {"valid": 2, "rules": {3: {"duplicate_key"}}}),
    ("zero_width_joiner_in_key", "a.csv", lambda: _utf8(text(HEADER, [R[0], _set(R[0], 0, R[0][0][:2] + "\u200d"
                                                                                    + R[0][0][2:]), R[2]])),
     {"valid": 2, "rules": {3: {"duplicate_key"}}}),
    ("zero_width_in_header", "a.csv", lambda: _utf8(text(_set(HEADER, 0, "Mã\u200b phiếu\ufeff"), R)),
     {"valid": 3, "info": {"header_row": 1}}),
    ("title_rows", "a.csv", lambda: _utf8("BÁO CÁO KHẢO SÁT SIPAS 2024\r\nSở Nội vụ Hà Nội\r\n"
                                          + text(HEADER, [R[0], R[1], _set(R[2], SAT, "7")])),
     {"valid": 2, "rules": {6: {"allowed_codes"}}, "info": {"header_row": 3}, "note": "header found on line 3 (the lines"}),
    ("title_row_same_width", "a.csv", lambda: _utf8(text(["BÁO CÁO SIPAS 2024"] + [""] * (len(HEADER) - 1),
                                                         [HEADER, _set(R[0], SAT, "0"), R[1]])),
     {"valid": 1, "read": 2, "rules": {3: {"allowed_codes"}}, "info": {"header_row": 2}, "note": "header found on line 2"}),
    ("blank_lines", "a.csv", lambda: _utf8(text(HEADER, [R[0]]) + "\r\n" + text(HEADER, [_set(R[1], SAT, "6")])
                                           .split("\r\n", 1)[1]),
     {"valid": 1, "read": 2, "rules": {4: {"allowed_codes"}}}),
    ("empty_fields_row", "a.csv", lambda: _utf8(text(HEADER, [R[0], [""] * len(HEADER), R[1]])), {"valid": 2, "read": 2}),
    ("multi_line_cell", "a.csv", lambda: _utf8(text(HEADER, [_set(R[0], ADDRESS, "Số 1\nngõ Riêng Tư"),
                                                            _set(R[1], SAT, "8")])),
     {"valid": 1, "read": 2, "rules": {4: {"allowed_codes"}}, "info": {"line_endings": "mixed (CRLF 3, LF 1)"}}),
    ("semicolon", "a.csv", lambda: _utf8(text(HEADER, R, sep=";")), {"valid": 3, "info": {"separator": ";"}}),
    ("tab_txt", "a.txt", lambda: _utf8(text(HEADER, R, sep="\t")), {"valid": 3, "info": {"separator": "\t"}}),
    ("pipe", "a.csv", lambda: _utf8(text(HEADER, R, sep="|")), {"valid": 3, "info": {"separator": "|"}}),
    ("semicolon_with_title", "a.csv", lambda: _utf8("Khảo sát SIPAS, năm 2024\r\n" + text(HEADER, R, sep=";")),
     {"valid": 3, "info": {"separator": ";", "header_row": 2}, "note": "header found on line 2"}),
    ("header_only", "a.csv", lambda: _utf8(text(HEADER, [])), {"valid": 0, "read": 0}),
    ("empty_file", "a.csv", lambda: b"", {"unreadable": "empty file"}),
    ("whitespace_only", "a.csv", lambda: b"  \r\n\t\r\n", {"unreadable": "empty file"}),
    ("binary_junk", "a.csv", lambda: bytes(range(256)) * 20, {"unreadable": "binary content"}),
    ("truncated_xlsx", "a.xlsx", lambda: xlsx({"Dữ liệu": [HEADER, *R]})[:3000], {"unreadable": "cannot open workbook"}),
    ("csv_named_xlsx", "a.xlsx", lambda: _utf8(text(HEADER, R)), {"unreadable": "cannot open workbook"}),
    ("xlsx_named_csv", "a.csv", lambda: xlsx({"Dữ liệu": [HEADER, *R]}), {"unreadable": "binary content (NUL bytes)"}),
    ("missing_key_column", "a.csv", lambda: _utf8(text(HEADER[1:], [r[1:] for r in R])),
     {"unreadable": "missing required columns: form_id (header taken from row 1"}),
    ("repeated_pii_header", "a.csv", lambda: _utf8(text([*HEADER, "Họ và tên"], [[*r, "Đỗ Văn Lặp Lại"] for r in R])),
     {"valid": 3, "pii": {"Đỗ Văn Lặp Lại"}}),
    ("nfd_text", "a.csv", lambda: _utf8(unicodedata.normalize("NFD", text(HEADER, R))), {"valid": 3, "province": "01"}),
    ("unknown_province", "a.csv", lambda: _utf8(text(HEADER, [R[0], _set(R[1], PROVINCE, "Hà Tây"), R[2]])),
     {"valid": 2, "rules": {3: {"province_known", "geography"}}}),
    ("out_of_range_code", "a.csv", lambda: _utf8(text(HEADER, [R[0], R[1], _set(R[2], SAT, "7")])),
     {"valid": 2, "rules": {4: {"allowed_codes"}}}),
    ("text_in_number", "a.csv", lambda: _utf8(text(HEADER, [_set(R[0], SAT, "bốn"), R[1], R[2]])),
     {"valid": 2, "rules": {2: {"not_a_number", "allowed_codes"}}}),
    ("date_outside_window", "a.csv", lambda: _utf8(text(HEADER, [R[0], _set(R[1], DATE, "2023-01-05"), R[2]])),
     {"valid": 2, "rules": {3: {"survey_window"}}}),
    ("xlsx_cover_sheet", "a.xlsx", lambda: xlsx({"Bìa": COVER, "Dữ liệu": [HEADER, *R]}),
     {"valid": 3, "info": {"sheet": "Dữ liệu", "header_row": 1}, "note": "header found on sheet 'Dữ liệu', row 1"}),
    ("xlsx_title_rows", "a.xlsx", lambda: xlsx({"Dữ liệu": [*COVER, HEADER, _set(R[0], SAT, "0"), R[1]]}),
     {"valid": 1, "read": 2, "rules": {4: {"allowed_codes"}}, "info": {"header_row": 3},
      "note": "header found on sheet 'Dữ liệu', row 3"}),
    ("xlsx_merged_header", "a.xlsx", _merged_header,
     {"unreadable": "missing required columns: form_id, province_code", "unreadable_also": "of sheet 'Sheet1'"}),
    ("xlsx_cells_beyond_header", "a.xlsx", lambda: xlsx({"Dữ liệu": [HEADER, R[0], [*R[1], "Nguyễn Thừa Ra"], R[2]]}),
     {"valid": 2, "rules": {3: {"row_shape"}}, "pii": {"Nguyễn Thừa Ra"}}),
    ("parquet", "a.parquet", lambda: _parquet(), {"valid": 3, "info": {"format": "parquet"}}),
    # issue #19: design columns against the frame and the weight rules; absurd workbook extents
    ("name_in_stratum", "a.csv", lambda: _design(STRATUM, "Nguyễn Văn Bí Mật"),
     {"valid": 2, "rules": {3: {"design_unknown"}}, "message": "not a stratum of the sampling frame"}),
    ("phone_in_psu", "a.csv", lambda: _design(PSU, "0912345678"),
     {"valid": 2, "rules": {3: {"design_unknown"}}, "message": "not a primary sampling unit (commune_code)"}),
    ("stratum_of_no_province", "a.csv", lambda: _design(STRATUM, "99-U"), {"valid": 2, "rules": {3: {"design_unknown"}}}),
    ("psu_not_a_commune", "a.csv", lambda: _design(PSU, "99999"), {"valid": 2, "rules": {3: {"design_unknown"}}}),
    ("weight_zero", "a.csv", lambda: _design(WEIGHT, "0"),
     {"valid": 2, "rules": {3: {"weight_invalid"}}, "message": "not a positive number (a design weight)"}),
    ("weight_negative", "a.csv", lambda: _design(WEIGHT, "-12.5"), {"valid": 2, "rules": {3: {"weight_invalid"}}}),
    ("weight_text", "a.csv", lambda: _design(WEIGHT, "nặng"), {"valid": 2, "rules": {3: {"weight_invalid"}}}),
    ("weight_infinite", "a.csv", lambda: _design(WEIGHT, "inf"), {"valid": 2, "rules": {3: {"weight_invalid"}}}),
    ("weight_comma_decimal", "a.csv", lambda: _design(WEIGHT, "1234,5"), {"valid": 3}),
    ("address_in_province", "a.csv", lambda: _design(PROVINCE, "Số 12 ngõ 34 phố Huế"),
     {"valid": 2, "rules": {3: {"province_known", "geography"}}}),
    ("xlsx_stray_cell_at_the_end", "a.xlsx", lambda: _stray_cell(1048575, 16383),
     {"unreadable": "sheet 'Dữ liệu' reaches cell XFD1048576 (its declared extent): " + TOO_LARGE}),
    ("xlsx_declared_extent", "a.xlsx", _declared_extent,
     {"unreadable": "sheet 'Dữ liệu' reaches cell XFD1048576 (its declared extent): " + TOO_LARGE}),
    ("xlsx_stray_row", "a.xlsx", lambda: _stray_cell(599999, 0),
     {"unreadable": "sheet 'Dữ liệu' reaches cell DI600000 (its declared extent): " + TOO_LARGE}),
    ("xlsx_stray_cell_undeclared", "a.xlsx", lambda: _declared_extent(_stray_cell(1048575, 16383), b"A1:DI4"),
     {"unreadable": "sheet 'Dữ liệu' reaches cell XFD1048576: " + TOO_LARGE}),
    ("xlsx_stray_row_undeclared", "a.xlsx", lambda: _declared_extent(_stray_cell(700000, 0), b"A1:DI4"),
     {"unreadable": "sheet 'Dữ liệu' reaches row 700,001: " + TOO_LARGE}),
]


def _parquet() -> bytes:
    buf = io.BytesIO()
    pl.DataFrame([pl.Series(h if i == HEADER.index(h) else f"{h}_{i}", [r[i] for r in R]) for i, h in enumerate(HEADER)]
                 ).write_parquet(buf)
    return buf.getvalue()


def test_the_suite_has_enough_kinds():
    assert len({c[0] for c in CASES}) == len(CASES) >= 54


@pytest.mark.parametrize(("case", "name", "make", "expect"), CASES, ids=[c[0] for c in CASES])
def test_bad_export(methodology, tmp_path, case, name, make, expect):
    out = ingest_files(methodology, tmp_path, {name: make()})
    rel = f"citizen/{name}"
    if "unreadable" in expect:
        assert list(out.unreadable) == [rel] and out.bronze is None
        assert expect["unreadable"] in out.unreadable[rel]
        assert expect.get("unreadable_also", "") in out.unreadable[rel]
    else:
        assert out.unreadable == {} and len(out.report.files) == 1
        info = out.report.files[0]
        for k, v in expect.get("info", {}).items():
            assert info[k] == v, (k, info[k])
        assert any(expect["note"] in n for n in info["notes"]) if "note" in expect else info.get("notes", []) == []
        read = expect.get("read", len(R))
        assert out.report.rows == read and out.silver.height == expect["valid"]
        assert out.quarantine.height == read - expect["valid"]
        assert out.rules() == {(name, line): rules for line, rules in expect.get("rules", {}).items()}
        if "message" in expect:
            rule = next(iter(next(iter(expect["rules"].values()))))
            assert any(expect["message"] in msg for msg in out.messages(rule)), out.messages(rule)
        if "province" in expect:
            assert out.silver["province_code"].unique().to_list() == [expect["province"]]
        if info.get("row_shape"):
            assert info["row_shape"] == sum("row_shape" in r for r in out.rules().values())
    blob = out.text_blob()
    leaked = [p for p in pii_of(R) | expect.get("pii", set()) if p in blob]
    assert leaked == []


def test_cp1252_export_gets_a_hint(methodology, tmp_path):
    """A Western (cp1252) export read as cp1258: the report says so and why."""
    form = methodology.forms["citizen"]
    ids = {h: fid for fid, hs in form.select("field_id", "headers").iter_rows() for h in (hs or "").split("|")}
    header = [ids.get(h, h) for h in HEADER]  # a header of field ids (ASCII), Vietnamese data
    data = text(header, R).encode("cp1252", errors="replace")
    out = ingest_files(methodology, tmp_path, {"a.csv": data})
    info = out.report.files[0]
    assert info["encoding"] == "cp1258" and info["encodings_tried"][0].startswith("utf-8 (failed")
    assert any("cp1252" in n for n in info["notes"])
    assert out.rules() == {("a.csv", line): {"province_known", "geography"} for line in (2, 3, 4)}


def test_subfolder_copy_is_ignored_and_the_batch_counts(methodology, tmp_path):
    stale = [_set(r, SAT, "1") for r in R]
    out = ingest_files(methodology, tmp_path, {"a.csv": _utf8(text(HEADER, R)),
                                               "old/a.csv": _utf8(text(HEADER, stale))})
    assert out.ignored == {"citizen/old/a.csv": "in a subfolder: only files directly in citizen/ are read"}
    assert out.silver.height == 3 and out.quarantine.height == 0
    assert out.silver["source_file"].unique().to_list() == ["citizen/a.csv"]


def test_resent_v2_with_changed_answers_is_a_conflict(methodology, tmp_path):
    v2 = [R[0], _set(R[1], SAT, "1" if R[1][SAT] != "1" else "2"), R[2]]
    out = ingest_files(methodology, tmp_path, {"a.csv": _utf8(text(HEADER, R)), "a_v2.csv": _utf8(text(HEADER, v2))})
    assert out.rules() == {("a.csv", 3): {"conflicting_duplicate"}, ("a_v2.csv", 3): {"conflicting_duplicate"},
                           ("a_v2.csv", 2): {"duplicate_key"}, ("a_v2.csv", 4): {"duplicate_key"}}
    conflict = out.messages("conflicting_duplicate")
    assert len(conflict) == 2 and all("copies at citizen/a.csv:3, citizen/a_v2.csv:3" in m for m in conflict)
    assert sorted(out.messages("duplicate_key")) == [f"exact copy of the row first at citizen/a.csv:{n} (that copy stays valid)"
                                                      for n in (2, 4)]
    assert out.silver.height == 2 and set(out.silver["source_file"]) == {"citizen/a.csv"}


def test_exact_duplicate_file_keeps_the_first(methodology, tmp_path):
    data = _utf8(text(HEADER, R))
    out = ingest_files(methodology, tmp_path, {"a.csv": data, "b.csv": data})
    assert out.rules() == {("b.csv", n): {"duplicate_key"} for n in (2, 3, 4)}
    assert out.silver.height == 3 and set(out.silver["source_file"]) == {"citizen/a.csv"}


def test_unsupported_hidden_and_lock_files_are_ignored(methodology, tmp_path):
    out = ingest_files(methodology, tmp_path, {"a.csv": _utf8(text(HEADER, R)), "notes.docx": b"x",
                                               "~$a.xlsx": b"lock", ".DS_Store": b"\x00"})
    assert out.ignored == {"citizen/.DS_Store": "hidden or Office lock file", "citizen/~$a.xlsx": "hidden or Office lock file",
                           "citizen/notes.docx": "unsupported file type '.docx' (expected one of "
                                                 "['.csv', '.parquet', '.tsv', '.txt', '.xlsm', '.xlsx'])"}
    assert out.unreadable == {} and out.silver.height == 3


def test_keep_correction_resolves_a_conflict(methodology, tmp_path):
    from sipas_pipeline.corrections import Correction, correct_source

    v2 = [R[0], _set(R[1], SAT, "1" if R[1][SAT] != "1" else "2"), R[2]]
    out = ingest_files(methodology, tmp_path, {"a.csv": _utf8(text(HEADER, R)), "a_v2.csv": _utf8(text(HEADER, v2))})
    form = R[1][0]
    keep = Correction("fix.csv", 2, "keep", "citizen", form, "citizen/a_v2.csv", "", "", "bản gửi lại đúng",
                      "Sở Nội vụ Hà Nội", "2025-01-20")
    forms = out.bronze.filter(pl.col("form_id") == form)
    problems: list[str] = []
    silver, quarantine, audit = correct_source(methodology, "citizen", forms, out.silver, out.quarantine, [keep], problems)
    assert problems == []
    assert silver.filter(pl.col("form_id") == form).select("source_file", "source_row").rows() == [("citizen/a_v2.csv", 3)]
    mine = quarantine.filter(pl.col("form_id") == form).explode("reasons").unnest("reasons")
    assert mine.select("source_file", "rule").rows() == [("citizen/a.csv", "not_kept")]
    assert audit[0]["outcome"] == "kept" and silver.height + quarantine.height == 6
    bad = Correction("fix.csv", 3, "keep", "citizen", form, "citizen/zz.csv", "", "", "x", "y", "2025-01-20")
    correct_source(methodology, "citizen", forms, out.silver, out.quarantine, [bad], problems)
    assert problems == [f"fix.csv:3: keep 'citizen/zz.csv' names 0 of the copies of form {form} "
                        f"(citizen/a.csv:3, citizen/a_v2.csv:3); name one (file, or file:row)"]


@pytest.mark.integration
def test_sipas_validate_on_bad_exports(sample_year, tmp_path):
    """The real command (its JSON in its own process, its text for people in this one): ignored files,
    unreadable files, ragged and conflicting rows; one line each, no traceback, no personal data in its output,
    rows read = valid + quarantined."""
    raw = tmp_path / "raw"
    shutil.copytree(sample_year, raw)
    batch = raw / "citizen" / "sipas2024_01_ha-noi.csv"
    (raw / "citizen" / "old").mkdir()
    shutil.copyfile(batch, raw / "citizen" / "old" / batch.name)
    lines = batch.read_bytes().decode("utf-8-sig").split("\r\n")
    planted = "Lê Thị Lộ Ra"
    cells = next(csv.reader([lines[3]]))
    cells[NAME] = planted
    shifted = _drop(cells, OCCUPATION)
    lines[3] = text(shifted, []).rstrip("\r\n")
    batch.write_bytes("\r\n".join(lines).encode("utf-8"))
    (raw / "citizen" / "readme.docx").write_bytes(b"x")
    (raw / "citizen" / "zz_empty.csv").write_bytes(b"")
    cmd = [sys.executable, "-m", "sipas_pipeline.cli", "validate", "--year", "2024", "--raw", str(raw), "--work",
           str(tmp_path / "work")]
    done = subprocess.run([*cmd, "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {i["file"]: i["reason"][:12] for i in data["ignored_files"]} == {
        "citizen/old/sipas2024_01_ha-noi.csv": "in a subfold", "citizen/readme.docx": "unsupported "}
    assert data["unreadable_files"] == [{"file": "citizen/zz_empty.csv", "source": "citizen", "reason": "empty file"}]
    assert data["top_reasons"]["citizen"]["row_shape"] == 1
    for c in data["sources"].values():
        assert c["read"] == c["valid"] + c["quarantined"]
    assert data["sources"]["citizen"]["read"] == 1096
    q = pl.read_parquet(StageFolder(tmp_path / "work").quarantine("citizen")).explode("reasons").unnest("reasons")
    shape = q.filter(pl.col("rule") == "row_shape")
    assert shape.select("source_file", "source_row").rows() == [("citizen/sipas2024_01_ha-noi.csv", 4)]
    assert shape["form_id"].to_list() == [None] and shape["message"][0].startswith(f"line 4: {len(HEADER) - 1} fields")
    shown = CliRunner().invoke(app, cmd[3:])
    assert shown.exit_code == 0 and shown.exception is None and "Traceback" not in shown.stderr + shown.stdout
    assert "ignored: citizen/old/sipas2024_01_ha-noi.csv: in a subfolder" in shown.stderr
    assert "note: citizen/sipas2024_01_ha-noi.csv: 1 rows quarantined for their shape" in shown.stderr.replace("\n", " ")
    outputs = done.stdout + done.stderr + shown.stdout + shown.stderr
    blobs = [outputs] + [str(pl.read_parquet(p).rows()) for p in (tmp_path / "work").rglob("*.parquet")]
    assert not any(planted in b or cells[PHONE] in b for b in blobs)


def test_a_source_with_files_only_in_subfolders_says_so(methodology, sample_year, tmp_path):
    from sipas_pipeline.errors import InputError
    from sipas_pipeline.stages import check_raw

    raw = tmp_path / "raw"
    shutil.copytree(sample_year, raw)
    (raw / "official" / "2024").mkdir()
    for p in (raw / "official").glob("*.csv"):
        p.rename(raw / "official" / "2024" / p.name)
    with pytest.raises(InputError) as info:
        check_raw(methodology, raw)
    assert str(info.value) == (f"source 'official': no export files in {raw / 'official'} (1 ignored: "
                               "official/2024/kobo_par_officials_2024.csv: in a subfolder: only files directly in "
                               "official/ are read)")


def test_read_export_lists_ragged_lines(tmp_path):
    """The plain reader (used beyond exports) blanks a ragged row and says its line."""
    from sipas_pipeline.ingest import read_export

    path = tmp_path / "x.csv"
    path.write_bytes(_utf8(text(HEADER, [R[0], _drop(R[1], OCCUPATION), R[2]], eol="\r")))
    frame, info = read_export(path)
    assert info["ragged_lines"] == [3] and info["line_endings"] == "CR" and frame.height == 3
    assert frame.row(1) == (None,) * len(HEADER) and frame.row(0)[0] == R[0][0]
