"""Completeness: does every province have what the methodology's `completeness` block says it needs
(valid citizens' and officials' forms, appraised points for every appraisal sub-criterion) before
anything is published? `assess` says what is missing per province; `message` makes the one line a
stopped run prints; `mark_incomplete` puts incomplete provinces into the result tables with a null
value, a null rank and an `incomplete_reason` (never zeros), and says on region and nation rows how
many provinces their mean covers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.methodology import Methodology

SURVEYS = ("citizen", "official")
# what a quarantine rule means for a missing appraisal point, in words a province understands
RULE_WORDS = {"max_points": "above maximum", "range": "negative", "required": "blank", "not_a_number": "not a number",
              "duplicate_key": "duplicate", "province_known": "unknown province", "reference": "unknown sub-criterion"}
LISTED = 8  # ids listed per cause before "…"

Missing = dict[str, dict[str, str]]  # province_code -> {source: what is missing}


def _read(work: Path | StageFolder, part: Callable[[StageFolder, str], Path], source: str) -> pl.DataFrame:
    """A source's Parquet of one part of the stage folder (`StageFolder.silver` or `StageFolder.quarantine`)."""
    return pl.read_parquet(part(work if isinstance(work, StageFolder) else StageFolder(Path(work)), source))


def _rules(quarantine: pl.DataFrame) -> pl.DataFrame:
    """One row per quarantined row and rule (province_code, rule, plus the row's other key columns)."""
    if quarantine.height == 0:
        return pl.DataFrame(schema={"province_code": pl.Utf8, "rule": pl.Utf8, "subcriterion_id": pl.Utf8,
                                    "source_file": pl.Utf8})
    keys = [c for c in ("province_code", "subcriterion_id", "source_file") if c in quarantine.columns]
    out = quarantine.select(*keys, pl.col("reasons").list.eval(pl.element().struct.field("rule")).alias("rule"))
    out = out.explode("rule")
    for col in ("subcriterion_id", "source_file"):
        if col not in out.columns:
            out = out.with_columns(pl.lit(None, pl.Utf8).alias(col))
    return out


def _batch_notes(source: str, files: list[dict[str, Any]], batches: list[dict[str, Any]],
                 unreadable: list[dict[str, Any]], rules: pl.DataFrame) -> list[tuple[set[str] | None, str]]:
    """Batches of a source that gave no valid row, each with the provinces it names (None: unknown):
    header-only files, files whose every row was quarantined, unreadable files."""
    notes: list[tuple[set[str] | None, str]] = []
    for f in files:
        if f["rows"] == 0:
            notes.append((None, f"batch {f['file']} header-only"))
    for b in batches:
        if b.get("source", source) == source and b["read"] > 0 and b["valid"] == 0:
            mine = rules.filter(pl.col("source_file") == b["source_file"])
            top = ", ".join(f"{r} {n}" for r, n in Counter(mine["rule"].to_list()).most_common(3))
            named = {c for c in mine["province_code"].to_list() if c}
            notes.append((named or None, f"batch {b['source_file']}: all {b['read']} rows quarantined ({top})"))
    for u in unreadable:
        if u.get("source") == source:
            notes.append((None, f"batch {u['file']} unreadable: {u['reason']}"))
    return notes


def assess(m: Methodology, work_dir: Path | StageFolder, files: dict[str, list[dict[str, Any]]], batches: list[dict[str, Any]],
           unreadable: list[dict[str, Any]]) -> Missing:
    """What each province lacks, from the silver and quarantine Parquet under `work_dir`, the ingest
    report's files (`files`, per source), validate's batch accounting and the unreadable files.
    An empty dict: every province is complete."""
    missing: Missing = {}
    for source in SURVEYS:
        for code, why in _short_of_forms(m, work_dir, source, files, batches, unreadable).items():
            missing.setdefault(code, {})[source] = why
    if m.completeness["appraisal"]["every_subcriterion"]:
        for code, why in _missing_points(m, work_dir, files, batches, unreadable).items():
            missing.setdefault(code, {})["appraisal"] = why
    return missing


def _short_of_forms(m: Methodology, work_dir: Path | StageFolder, source: str, files: dict[str, list[dict[str, Any]]],
                    batches: list[dict[str, Any]], unreadable: list[dict[str, Any]]) -> dict[str, str]:
    """Provinces with fewer valid forms of a survey than the minimum, each with why."""
    minimum = int(m.completeness[source]["min_valid_forms"])
    counts = dict(_read(work_dir, StageFolder.silver, source).group_by("province_code").len().iter_rows())
    rules = _rules(_read(work_dir, StageFolder.quarantine, source))
    notes = _batch_notes(source, files.get(source, []), batches, unreadable, rules)
    out = {}
    for code in (c for c in m.provinces["province_code"].sort().to_list() if counts.get(c, 0) < minimum):
        why = [text for named, text in notes if named is None or code in named]
        quarantined = rules.filter(pl.col("province_code") == code)
        if quarantined.height and not any("rows quarantined" in w for w in why):
            top = ", ".join(f"{r} {k}" for r, k in Counter(quarantined["rule"].to_list()).most_common(3))
            why.append(f"quarantined: {top}")
        detail = f" ({'; '.join(why)})" if why else ""
        out[code] = f"{source}: {counts.get(code, 0)} valid forms, minimum {minimum}{detail}"
    return out


def _missing_points(m: Methodology, work_dir: Path | StageFolder, files: dict[str, list[dict[str, Any]]],
                    batches: list[dict[str, Any]], unreadable: list[dict[str, Any]]) -> dict[str, str]:
    """Provinces without appraised points for every appraisal sub-criterion, each with which and why."""
    required = m.par_subcriteria.filter(pl.col("kind") == "appraisal")["subcriterion_id"].sort().to_list()
    silver = _read(work_dir, StageFolder.silver, "appraisal")
    have = {(p, s) for p, s, v in silver.select("province_code", "subcriterion_id", "appraised_points").iter_rows()
            if v is not None}
    rules = _rules(_read(work_dir, StageFolder.quarantine, "appraisal"))
    why_q: dict[tuple[str, str], set[str]] = {
        (p, s): {"blank"} for p, s, v in silver.select("province_code", "subcriterion_id", "appraised_points").iter_rows()
        if v is None}
    for p, s, r in rules.select("province_code", "subcriterion_id", "rule").iter_rows():
        why_q.setdefault((p, s), set()).add(RULE_WORDS.get(r, r))
    notes = [text for _, text in _batch_notes("appraisal", files.get("appraisal", []), batches, unreadable, rules)]
    out = {}
    for code in m.provinces["province_code"].sort().to_list():
        gone = [s for s in required if (code, s) not in have]
        if gone:
            out[code] = _points_reason(gone, required, why_q, code, notes)
    return out


def _points_reason(gone: list[str], required: list[str], why_q: dict[tuple[str, str], set[str]], code: str,
                   notes: list[str]) -> str:
    """One province's missing sub-criteria grouped by cause (blank, quarantined for a rule, no row)."""
    causes: dict[str, list[str]] = {}
    for s in gone:
        words = why_q.get((code, s))
        causes.setdefault(("blank" if words == {"blank"} else f"quarantined: {', '.join(sorted(words))}")
                          if words else "no row in the export",
                          []).append(s)
    parts = ([f"({next(iter(causes))})"] if len(gone) == len(required) and len(causes) == 1 else
             [f"{_ids(ids)} ({cause})" for cause, ids in sorted(causes.items())])
    extra = f"; {'; '.join(notes)}" if notes and len(gone) == len(required) else ""
    what = "all" if len(gone) == len(required) else f"{len(gone)} of"
    return (f"appraisal: {what} {len(required)} sub-criteria missing{' ' if parts[0][0] == '(' else ': '}"
            f"{'; '.join(parts)}{extra}")


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:LISTED]) + (f", … ({len(ids)})" if len(ids) > LISTED else "")


def reasons(missing: Missing) -> dict[str, str]:
    """Each incomplete province's reason as one string (the `incomplete_reason` of its rows)."""
    return {code: "; ".join(why[s] for s in sorted(why)) for code, why in missing.items()}


ALLOW_FLAG = "--allow-incomplete"  # the command line's way; a deployment's run: the parameter (ALLOW_PARAMETER)
ALLOW_PARAMETER = "the parameter allow_incomplete=true"


def message(m: Methodology, missing: Missing, allow: str = ALLOW_FLAG) -> str:
    """The one line a run stopped by incomplete inputs prints: each province (code and Vietnamese
    name) and what it lacks; `allow` names how to publish them anyway (the flag, or a deployment's parameter)."""
    names = dict(zip(m.provinces["province_code"], m.provinces["name_vi"], strict=True))
    listed = " | ".join(f"{code} {names.get(code, '?')}: {why}" for code, why in sorted(reasons(missing).items()))
    n = len(missing)
    return (f"incomplete inputs for {n} province{'s' if n > 1 else ''}, nothing published "
            f"({allow} publishes them marked incomplete): {listed}")


def mark_incomplete(m: Methodology, tables: dict[str, pl.DataFrame], missing: Missing) -> dict[str, pl.DataFrame]:
    """The result tables with an `incomplete_reason` column: incomplete provinces get rows with null
    values and null ranks (SIPAS tables: provinces lacking citizens' forms; PAR INDEX: lacking
    anything); region and nation rows say how many provinces their mean covers when some are missing."""
    par_why = reasons(missing)
    sipas_why = {c: why["citizen"] for c, why in missing.items() if "citizen" in why}
    regions = dict(zip(m.provinces["province_code"], m.provinces["region_code"], strict=True))
    reason = pl.lit(None, pl.Utf8).alias("incomplete_reason")
    out = dict(tables)

    def units_note(frame: pl.DataFrame) -> pl.DataFrame:
        """`incomplete_reason` of region and nation rows: the provinces their mean leaves out."""
        notes = {}
        for level, code in frame.filter(pl.col("unit_level") != "province").select("unit_level", "unit_code").unique().rows():
            members = sorted(p for p, r in regions.items() if level == "nation" or r == code)
            left_out = [p for p in members if p in sipas_why]
            if left_out:
                notes[(level, code)] = (f"mean of {len(members) - len(left_out)} of {len(members)} provinces; "
                                        f"incomplete: {', '.join(left_out)}")
        if not notes:
            return frame.with_columns(reason)
        keyed = pl.DataFrame([{"unit_level": lv, "unit_code": c, "incomplete_reason": t} for (lv, c), t in notes.items()])
        return frame.join(keyed, on=["unit_level", "unit_code"], how="left")

    def add_provinces(frame: pl.DataFrame, keys: list[str], sort: list[str]) -> pl.DataFrame:
        """Rows of the SIPAS-side provinces lacking citizens' forms: every key of the table, value null."""
        frame = units_note(frame)
        if not sipas_why:
            return frame
        combos = frame.filter(pl.col("unit_level") == "province").select(keys).unique()
        if combos.height == 0:
            combos = frame.select(keys).unique()
        rows = pl.DataFrame({"unit_level": "province", "unit_code": list(sipas_why),
                             "incomplete_reason": list(sipas_why.values())}).join(combos, how="cross")
        return pl.concat([frame, rows], how="diagonal_relaxed").sort("unit_level", "unit_code", *sort)

    out["indicator_values"] = add_provinces(tables["indicator_values"], ["indicator_id"], ["indicator_id"])
    out["sipas_indices"] = add_provinces(tables["sipas_indices"], ["level", "node"], ["level", "node"])
    totals = tables["par_totals"].with_columns(reason)
    if par_why:
        totals = pl.concat([totals, pl.DataFrame({"province_code": list(par_why), "incomplete_reason": list(par_why.values())})],
                           how="diagonal_relaxed").sort("province_code")
    out["par_totals"] = totals
    ranks = tables["ranks"].with_columns(reason)
    extra = [{"province_code": c, "measure": measure, "region_code": regions[c], "incomplete_reason": why}
             for measure in ranks["measure"].unique().sort().to_list()
             for c, why in (par_why if measure == "par" else sipas_why).items()]
    if extra:
        ranks = pl.concat([ranks, pl.DataFrame(extra)], how="diagonal_relaxed")
    out["ranks"] = ranks.sort("measure", "rank_national", "province_code", nulls_last=True)
    return out
