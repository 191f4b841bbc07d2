"""The run's Prefect artifacts: the validation summary (markdown), the SIPAS and PAR INDEX rankings (tables)
and the link to the analyst release."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from sipas_pipeline.methodology import Methodology
from sipas_pipeline.paths import data_root
from sipas_pipeline.stages import TOP_REASONS, ValidationReport


def interval(row: dict[str, Any], confidence: float) -> str | None:
    """A ranked value's confidence interval as text, value -+ t(df) se (None without se)."""
    if row.get("se") is None or row.get("df") is None:
        return None
    from sipas_pipeline.variance import t_interval

    low, high = t_interval(row["value"], row["se"], row["df"], confidence)
    return f"{float(low):.2f}–{float(high):.2f}"


def ranking_rows(m: Methodology, ranks: pl.DataFrame, measure: str) -> list[dict[str, Any]]:
    """One measure's ranking as the rows of its table artifact (bilingual headers)."""
    names = dict(zip(m.provinces["province_code"], m.provinces["name_vi"], strict=True))
    ranked = ranks.filter(ranks["measure"] == measure).sort("rank_national", "province_code", nulls_last=True)
    return [{"rank (hạng)": r["rank_national"], "province (tỉnh)": names[r["province_code"]],
             "value (giá trị)": None if r["value"] is None else round(r["value"], 2),
             "CI (khoảng tin cậy)": interval(r, m.design.confidence),
             "rank interval (khoảng xếp hạng)": None if r["rank_low"] is None else f"{r['rank_low']}–{r['rank_high']}",
             "regional rank (hạng trong vùng)": r["rank_regional"],
             "change (thay đổi)": None if r["change_value"] is None else round(r["change_value"], 2),
             "incomplete (thiếu dữ liệu)": r.get("incomplete_reason")}
            for r in ranked.iter_rows(named=True)]


def run_artifacts(m: Methodology, report: ValidationReport, run_id: str, ranks: pl.DataFrame,
                  corrections: list[dict[str, Any]] | None = None) -> list[str]:
    """Create the validation summary (with the corrections applied) and the two rankings; return their keys."""
    year = m.year
    keys = [create_markdown_artifact(validation_markdown(report, run_id, corrections or []), key=f"sipas-{year}-validation",
                                     description=f"Validation summary {year} (kiểm tra dữ liệu)")]
    for measure, title in (("sipas", "SIPAS"), ("par", "PAR INDEX")):
        keys.append(create_table_artifact(ranking_rows(m, ranks, measure), key=f"{measure}-{year}-ranking",
                                          description=f"{title} {year} ranking (xếp hạng), run {run_id}"))
    return [str(k) for k in keys]


def under_data_root(path: Path) -> str:
    """A file as the people reading the UI find it: its path under the data root (`<root>/2024/work/…`), not a
    file:// link of the worker's machine; a file elsewhere by its absolute path."""
    root, path = data_root(), Path(path).absolute()
    return f"`{path.relative_to(root)}` under the data root `{root}`" if path.is_relative_to(root) else f"`{path}`"


def release_artifact(year: int, html: Any, workbook: Any) -> None:
    """Name the analyst release's report and workbook (paths under the data root) as the artifact `sipas-<year>-release`."""
    create_markdown_artifact(f"# Báo cáo / Report {year}\n\n- report: {under_data_root(html)}\n"
                             f"- workbook: {under_data_root(workbook)}\n",
                             key=f"sipas-{year}-release", description=f"Analyst release {year} (báo cáo)")


def validation_markdown(report: ValidationReport, run_id: str, corrections: list[dict[str, Any]] | None = None) -> str:
    """The validation summary as a markdown document, with the corrections the run applied."""
    lines = [f"# Validation {report.year} — run `{run_id}`", "",
             "| source (nguồn) | read (đọc) | valid (hợp lệ) | quarantined (cách ly) | unreadable files |",
             "|---|---:|---:|---:|---:|"]
    for source, c in report.sources.items():
        lines.append(f"| {source} | {c['read']:,} | {c['valid']:,} | {c['quarantined']:,} | {c['unreadable_files']} |")
    lines += ["", "## Top reasons (lý do)", ""]
    for source, rules in report.top_reasons.items():
        if rules:
            lines.append(f"- **{source}**: " + ", ".join(f"{r} {n:,}" for r, n in list(rules.items())[:TOP_REASONS]))
    if report.unreadable_files:
        lines += ["", "## Unreadable files", ""] + [f"- `{u['file']}`: {u['reason']}" for u in report.unreadable_files]
    notes = [f"- `{f['file']}`: {n}" for files in report.files.values() for f in files for n in f.get("notes", [])]
    if notes:
        lines += ["", "## Notes on files (ghi chú)", "", *notes]
    if report.ignored_files:
        lines += ["", "## Ignored files (tệp bỏ qua)", ""] + [f"- `{u['file']}`: {u['reason']}" for u in report.ignored_files]
    lines += ["", "## Corrections (đính chính)", ""]
    lines += [f"- `{Path(c['file']).name}` line {c['line']}: {c['action']} {c['source']} {c['form_id']}"
              + (f" {c['field']} {c['old_value']} → {c['new_value']}" if c.get("field") else "") + f": {c['outcome']}"
              for c in corrections or []] or ["- none applied"]
    return "\n".join(lines)
