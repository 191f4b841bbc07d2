"""Defects a real year brings, injected into clean batches and recorded for the manifest.

Each defect touches one row and says what the pipeline should do: `repair` (normalise it into a
valid row) or `quarantine` (reject the row, with the validation rule that catches it).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

Rows = dict[str, list]


@dataclass(frozen=True)
class Defect:
    kind: str
    action: str  # repair | quarantine
    rule: str  # the validation rule that must catch it (quarantine), else ""


@dataclass
class Batch:
    """A batch being spoiled: its columns as lists, and what is known about the province."""

    cols: Rows
    province_code: str
    province_name: str
    name_en: str
    rng: np.random.Generator
    other_batch_ids: list[str]
    sibling_communes: dict[str, list[str]]  # district (or commune, with two tiers) -> communes of the province


def _cell_choice(b: Batch, i: int, prefix: str) -> str | None:
    cands = [c for c in b.cols if c.startswith(prefix) and b.cols[c][i] is not None]
    return cands[int(b.rng.integers(0, len(cands)))] if cands else None


def _set(b: Batch, i: int, col: str, value: str | None) -> tuple[str, str | None]:
    b.cols[col][i] = value
    return col, value


def _answer_column(b: Batch) -> str:
    return "s_p_" if "s_p_eco_content" in b.cols else "q"


# --- quarantine kinds
def out_of_range(b: Batch, i: int):
    col = _cell_choice(b, i, _answer_column(b))
    return _set(b, i, col, str(b.rng.choice(["0", "6", "7"])))


def text_in_numeric(b: Batch, i: int):
    col = _cell_choice(b, i, _answer_column(b))
    return _set(b, i, col, str(b.rng.choice(["bốn", "4a", "ba", "x"])))


def missing_required(b: Batch, i: int):
    col = _cell_choice(b, i, _answer_column(b)) if b.rng.random() < 0.6 else "sex"
    return _set(b, i, col, None)


def unknown_province(b: Batch, i: int):
    return _set(b, i, "province_code", str(b.rng.choice(["Hà Tây", "Tỉnh Mới", "99"])))


def outside_window(b: Batch, i: int):
    col = "interview_date" if "interview_date" in b.cols else "submitted_at"
    value = "2023-11-20" if col == "interview_date" else "2025-03-02T09:15:00"
    return _set(b, i, col, value)


def geography_mismatch(b: Batch, i: int):
    commune = b.cols["commune_code"][i]
    district = b.cols["district_code"][i] if "district_code" in b.cols else commune  # two tiers: any other commune
    others = [c for d, cs in b.sibling_communes.items() if d != district for c in cs if c != commune]
    return _set(b, i, "commune_code", others[int(b.rng.integers(0, len(others)))])


def skip_violation(b: Batch, i: int):
    if b.cols["svc_used"][i] == "2":
        return _set(b, i, "s_s_acc_location", "4")
    if b.cols["a_s_fbfiled"][i] != "1":
        return _set(b, i, "a_s_fbans", "1")
    return _set(b, i, "svc_used", "2")  # answered service questions after saying no service


def duplicate_same_batch(b: Batch, i: int, j: int):
    for col in b.cols:
        b.cols[col][i] = b.cols[col][j]
    return "form_id", b.cols["form_id"][i]


def duplicate_other_batch(b: Batch, i: int):
    return _set(b, i, "form_id", b.other_batch_ids[int(b.rng.integers(0, len(b.other_batch_ids)))])


def duplicate_uuid(b: Batch, i: int, j: int):
    return _set(b, i, "form_id", b.cols["form_id"][j])


def unknown_respondent_type(b: Batch, i: int):
    return _set(b, i, "respondent_type", str(b.rng.choice(["7", "9"])))


def missing_province(b: Batch, i: int):
    return _set(b, i, "province_code", None)


# --- repair kinds
def decomposed(b: Batch, i: int):
    return _set(b, i, "province_code", unicodedata.normalize("NFD", b.province_name))


VARIANTS = {"79": ["TP. HCM", "Tp Hồ Chí Minh", "TP.HCM"], "46": ["Thừa Thiên - Huế", "Thừa Thiên-Huế"],
            "01": ["TP. Hà Nội", "Ha Noi"]}


def name_variant(b: Batch, i: int):
    spaced = "  " + b.province_name.replace(" ", "  ") + " "
    options = [*VARIANTS.get(b.province_code, []), b.name_en, b.province_name.upper(), spaced,
               "Tỉnh " + b.province_name.lower()]
    return _set(b, i, "province_code", options[int(b.rng.integers(0, len(options)))])


def date_ddmmyyyy(b: Batch, i: int):
    d = date.fromisoformat(b.cols["interview_date"][i])
    return _set(b, i, "interview_date", d.strftime("%d/%m/%Y"))


def date_serial(b: Batch, i: int):
    d = date.fromisoformat(b.cols["interview_date"][i])
    return _set(b, i, "interview_date", str((d - date(1899, 12, 30)).days))


def stray_whitespace(b: Batch, i: int):
    if b.rng.random() < 0.5:
        return _set(b, i, "form_id", f"  {b.cols['form_id'][i]} ")
    col = _cell_choice(b, i, _answer_column(b))
    return _set(b, i, col, f" {b.cols[col][i]}  ")


SameBatchCopy = Callable[[Batch, int, int], tuple[str, str | None]]
RowDefect = Callable[[Batch, int], tuple[str, str | None]]

CITIZEN: list[tuple[Defect, RowDefect | SameBatchCopy, bool]] = [
    (Defect("out_of_range_code", "quarantine", "allowed_codes"), out_of_range, False),
    (Defect("decomposed_unicode", "repair", ""), decomposed, False),
    (Defect("unknown_province", "quarantine", "province_known"), unknown_province, False),
    (Defect("province_name_variant", "repair", ""), name_variant, False),
    (Defect("duplicate_form_id", "quarantine", "duplicate_key"), duplicate_same_batch, True),
    (Defect("date_dd_mm_yyyy", "repair", ""), date_ddmmyyyy, False),
    (Defect("missing_required_answer", "quarantine", "required"), missing_required, False),
    (Defect("stray_whitespace", "repair", ""), stray_whitespace, False),
    (Defect("text_in_numeric_field", "quarantine", "not_a_number"), text_in_numeric, False),
    (Defect("date_excel_serial", "repair", ""), date_serial, False),
    (Defect("skip_logic_violation", "quarantine", "skip_logic"), skip_violation, False),
    (Defect("date_outside_window", "quarantine", "survey_window"), outside_window, False),
    (Defect("geography_mismatch", "quarantine", "geography"), geography_mismatch, False),
    (Defect("duplicate_form_id_other_batch", "quarantine", "conflicting_duplicate"), duplicate_other_batch, False),
]
OFFICIAL: list[tuple[Defect, RowDefect | SameBatchCopy, bool]] = [
    (Defect("rating_out_of_range", "quarantine", "allowed_codes"), out_of_range, False),
    (Defect("province_name_variant", "repair", ""), name_variant, False),
    (Defect("unknown_respondent_type", "quarantine", "allowed_codes"), unknown_respondent_type, False),
    (Defect("duplicate_uuid", "quarantine", "conflicting_duplicate"), duplicate_uuid, True),
    (Defect("stray_whitespace", "repair", ""), stray_whitespace, False),
    (Defect("submission_outside_window", "quarantine", "survey_window"), outside_window, False),
    (Defect("missing_province", "quarantine", "required"), missing_province, False),
    (Defect("text_in_numeric_field", "quarantine", "not_a_number"), text_in_numeric, False),
]


def inject(batch: pl.DataFrame, b_info: dict, kinds: list, rate: float, offset: int,
           rng: np.random.Generator) -> tuple[pl.DataFrame, list[dict]]:
    """Spoil about `rate` of the rows (never the first), cycling through `kinds` from `offset`."""
    n = batch.height
    b = Batch(cols={c: batch[c].to_list() for c in batch.columns}, rng=rng, **b_info)
    count = min(max(1, round(rate * n)), max(n - 2, 0))
    rows = sorted(rng.choice(np.arange(2, n), size=count, replace=False).tolist()) if count else []
    spoiled, clean = set(rows), [r for r in range(n) if r not in rows]
    records = []
    for k, i in enumerate(rows):
        defect, fn, copies = kinds[(offset + k) % len(kinds)]
        if copies:
            earlier = [r for r in clean if r < i]
            j = earlier[int(rng.integers(0, len(earlier)))]
            col, value = fn(b, i, j)
        else:
            j = None
            col, value = fn(b, i)
        records.append({"batch_row": i, "kind": defect.kind, "action": defect.action, "rule": defect.rule,
                        "column": col, "value": value, "copy_of": j})
    assert not (spoiled & {0, 1})
    return pl.DataFrame(b.cols, schema={c: pl.Utf8 for c in b.cols}), records
