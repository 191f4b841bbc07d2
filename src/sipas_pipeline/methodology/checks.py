"""The rules a year's methodology files must keep. Each problem names file, entry and rule."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import polars as pl

from sipas_pipeline.methodology.loader import LONELY_PSU_RULES, RANK_VARIANCES, SOURCES, Design, Methodology
from sipas_pipeline.methodology.skip_logic import parse_condition

FORM_DTYPES = {"str", "int", "float", "date", "province", "multi"}
PAR_KINDS = {"appraisal", "survey_official", "survey_citizen"}
TOLERANCE = 1e-9


def _name(m: Methodology, key: str) -> str:
    return str(m.root / m.meta["files"][key])


def _p(m: Methodology, key: str, entry: object, rule: str, detail: str) -> str:
    """One problem: file, entry, rule and what is wrong."""
    return f"{_name(m, key)}: entry {entry}: rule '{rule}': {detail}"


def _duplicates(frame: pl.DataFrame, column: str) -> list[str]:
    return frame.filter(pl.col(column).is_duplicated())[column].unique(maintain_order=True).to_list()


def _unique(m: Methodology, key: str, frame: pl.DataFrame, column: str) -> Iterable[str]:
    for dup in _duplicates(frame, column):
        yield _p(m, key, dup, f"unique {column}", "appears more than once")


def _check_counts(m: Methodology) -> Iterable[str]:
    exp = m.meta.get("expected_counts", {})
    got = m.summary()
    for t, n in exp.get("indicators", {}).items():
        if got["indicators"].get(t, 0) != n:
            yield (f"{_name(m, 'indicators')}: type {t}: rule 'count': expected {n} indicators, "
                   f"found {got['indicators'].get(t, 0)}")
    for key, n in exp.get("par", {}).items():
        if abs(float(got["par"][key]) - float(n)) > TOLERANCE:
            yield (f"{_name(m, 'par_subcriteria')}: par.{key}: rule 'count': expected {n}, "
                   f"found {got['par'][key]}")
    if "units" in exp and got["units"] != exp["units"]:
        yield f"{_name(m, 'provinces')}: rule 'count': expected {exp['units']} units, found {got['units']}"
    for key, n in exp.get("frame", {}).items():
        if got["frame"].get(key) != n:
            yield (f"{_name(m, key if key in m.meta['files'] else 'sampling_frame')}: frame {key}: rule 'count': "
                   f"expected {n}, found {got['frame'].get(key)}")
    for key, n in exp.get("sampling_frame", {}).items():
        if got["sampling_frame"].get(key) != n:
            yield (f"{_name(m, 'sampling_frame')}: {key}: rule 'count': expected {n}, "
                   f"found {got['sampling_frame'].get(key)}")


def _check_forms(m: Methodology) -> Iterable[str]:
    lists = set(m.code_lists["list_id"].unique().to_list())
    for source, form in m.forms.items():
        key = f"{source}_form"
        yield from _unique(m, key, form, "field_id")
        fields = set(form["field_id"].to_list())
        for row in form.iter_rows(named=True):
            fid = row["field_id"]
            if row["dtype"] not in FORM_DTYPES:
                yield _p(m, key, fid, "dtype", f"{row['dtype']!r} is not one of {sorted(FORM_DTYPES)}")
            if row["code_list"] and row["code_list"] not in lists:
                yield _p(m, key, fid, "code list exists", f"{row['code_list']!r} is not in code_lists.csv")
            if row["dont_know"] and row["code_list"] and int(row["dont_know"]) not in m.codes(row["code_list"]):
                yield _p(m, key, fid, "dont_know code exists", f"{row['dont_know']} is not a code of {row['code_list']}")
            for flag in ("required", "pii"):
                if row[flag] not in ("yes", "no"):
                    yield _p(m, key, fid, "{flag} is yes/no", f"found {row[flag]!r}")
            if row["ask_if"]:
                try:
                    terms = parse_condition(row["ask_if"])
                except ValueError as exc:
                    yield _p(m, key, fid, "ask_if readable", f"{exc}")
                    continue
                for ref, _, _ in terms:
                    if ref not in fields:
                        yield _p(m, key, fid, "ask_if names a field", f"{ref!r} is not a field of this form")


def _check_indicators(m: Methodology) -> Iterable[str]:
    key = "indicators"
    yield from _unique(m, key, m.indicators, "indicator_id")
    citizen = {r["field_id"]: r for r in m.forms["citizen"].iter_rows(named=True)}
    elements = set(m.tree["element"].to_list())
    parts = set(m.parts["part"].to_list())
    for row in m.indicators.iter_rows(named=True):
        iid, question = row["indicator_id"], citizen.get(row["question_id"])
        if row["type"] not in ("assessment", "satisfaction", "expectation"):
            yield _p(m, key, iid, "type", f"{row['type']!r} is not assessment, satisfaction or expectation")
        if question is None:
            yield _p(m, key, iid, "question exists", f"{row['question_id']!r} is not in citizen_form.csv")
            continue
        codes = set(m.codes(question["code_list"]))
        for code in (row["counting_codes"] or "").split("|"):
            if not code.isdigit() or int(code) not in codes:
                detail = f"{code!r} is not a code of question {row['question_id']} ({question['code_list']})"
                yield _p(m, key, iid, "counting codes exist", detail)
        if row["part"] and row["part"] not in parts:
            yield _p(m, key, iid, "part exists", f"{row['part']!r} is not a part of the tree")
        if row["in_index"] == "yes":
            if row["element"] not in elements:
                yield _p(m, key, iid, "element exists", f"{row['element']!r} is not in the aggregation tree")
            elif m.tree.filter(pl.col("element") == row["element"])["part"][0] != row["part"]:
                yield _p(m, key, iid, "element in part", f"{row['element']} is not in part {row['part']}")
    fed = set(m.indicators.filter(pl.col("in_index") == "yes")["element"].to_list())
    for element in sorted(elements - fed):
        yield f"{m.root / 'methodology.yaml'}: element {element}: rule 'element has indicators': no indicator feeds it"


def _check_par(m: Methodology) -> Iterable[str]:
    subs, crits, fields = m.par_subcriteria, m.par_criteria, m.par_fields
    yield from _unique(m, "par_subcriteria", subs, "subcriterion_id")
    yield from _unique(m, "par_criteria", crits, "criterion_id")
    crit_field = dict(zip(crits["criterion_id"], crits["field_id"], strict=True))
    field_ids = set(fields["field_id"].to_list())
    for row in crits.iter_rows(named=True):
        if row["field_id"] not in field_ids:
            detail = f"field {row['field_id']} is not in methodology.yaml"
            yield _p(m, "par_criteria", row["criterion_id"], "field exists", detail)
    yield from _check_par_subcriteria(m, crit_field)
    yield from _check_par_points(m)


def _check_par_subcriteria(m: Methodology, crit_field: dict[str, str]) -> Iterable[str]:
    """Each sub-criterion: in a known criterion of its field, of a known kind, a positive maximum, fed by a
    survey item or SIPAS result when it is a survey one; each officials' item feeds a survey sub-criterion."""
    subs = m.par_subcriteria
    official_refs = {r.removeprefix("par:") for r in m.forms["official"]["refs"].to_list() if r.startswith("par:")}
    sources = _citizen_sources(m)
    for row in subs.iter_rows(named=True):
        sid = row["subcriterion_id"]
        if row["criterion_id"] not in crit_field:
            yield _p(m, 'par_subcriteria', sid, "criterion exists", f"{row['criterion_id']} is not in par_criteria.csv")
        elif crit_field[row["criterion_id"]] != row["field_id"]:
            detail = (f"criterion {row['criterion_id']} is in field {crit_field[row['criterion_id']]}, "
                      f"the sub-criterion says field {row['field_id']}")
            yield _p(m, "par_subcriteria", sid, "one field", detail)
        if row["kind"] not in PAR_KINDS:
            yield _p(m, 'par_subcriteria', sid, "kind", f"{row['kind']!r} is not one of {sorted(PAR_KINDS)}")
        if not row["max_points"] or row["max_points"] <= 0:
            yield _p(m, 'par_subcriteria', sid, "positive maximum", f"max_points is {row['max_points']}")
        if row["kind"] == "survey_official" and sid not in official_refs:
            yield _p(m, 'par_subcriteria', sid, "survey item exists", "no item of official_form.csv feeds it")
        if row["kind"] == "survey_citizen" and row["source"] not in sources:
            yield _p(m, 'par_subcriteria', sid, "SIPAS source exists", f"{row['source']!r} is not a SIPAS result")
    kinds = dict(zip(subs["subcriterion_id"], subs["kind"], strict=True))
    for ref in sorted(official_refs):
        if kinds.get(ref) != "survey_official":
            detail = f"{ref} is not a survey_official sub-criterion"
            yield _p(m, "official_form", f"par:{ref}", "feeds a survey sub-criterion", detail)


def _check_par_points(m: Methodology) -> Iterable[str]:
    """Points add up per field and to 100; group bounds descend."""
    subs, fields = m.par_subcriteria, m.par_fields
    sums = subs.group_by("field_id").agg(pl.col("max_points").sum())
    totals = dict(zip(sums["field_id"], sums["max_points"], strict=True))
    for row in fields.iter_rows(named=True):
        got = totals.get(row["field_id"], 0.0)
        if abs(got - row["max_points"]) > TOLERANCE:
            yield (f"{_name(m, 'par_subcriteria')}: field {row['field_id']}: rule 'field points': sub-criteria add up to "
                   f"{got:g}, methodology.yaml gives {row['max_points']:g}")
    total = float(subs["max_points"].sum())
    if abs(total - 100.0) > TOLERANCE:
        yield f"{_name(m, 'par_subcriteria')}: rule 'points sum to 100': sub-criteria add up to {total:g}"
    bounds = [b for _, b in m.group_bounds]
    if bounds != sorted(bounds, reverse=True):
        yield f"{m.root / 'methodology.yaml'}: par.groups: rule 'bounds descending': {bounds}"


def _citizen_sources(m: Methodology) -> set[str]:
    return ({"sipas"} | {f"part:{p}" for p in m.parts["part"]} | {f"element:{e}" for e in m.tree["element"]}
            | {f"indicator:{i}" for i in m.indicators["indicator_id"]})


def _check_units(m: Methodology) -> Iterable[str]:
    yield from _unique(m, "provinces", m.provinces, "province_code")
    regions = set(m.regions["region_code"].to_list())
    codes = set(m.provinces["province_code"].to_list())
    for row in m.provinces.iter_rows(named=True):
        if row["region_code"] not in regions:
            detail = f"{row['region_code']!r} is not a region of methodology.yaml"
            yield _p(m, "provinces", row["province_code"], "one region", detail)
    for row in m.province_aliases.iter_rows(named=True):
        if row["province_code"] not in codes:
            yield _p(m, 'province_aliases', row['alias'], "province exists", f"{row['province_code']} is not in provinces.csv")
    frame = m.population_frame
    yield from _unique(m, "sampling_frame", frame, "village_code")
    if "in_sample" in frame.columns:
        for code in frame.filter(~pl.col("in_sample").is_in(["yes", "no"]))["village_code"].to_list():
            yield _p(m, "sampling_frame", code, "in_sample", "in_sample must be yes or no")
    levels = m.geography
    if not levels or levels[0] != "province_code" or any(c not in frame.columns for c in levels):
        yield (f"{m.root / 'methodology.yaml'}: geography.levels: rule 'levels in the frame': {levels!r} must start "
               f"with province_code and name columns of {_name(m, 'sampling_frame')} ({', '.join(frame.columns)})")
        return
    citizen_fields = set(m.forms["citizen"]["field_id"].to_list())
    for level in levels:
        if level not in citizen_fields:
            yield _p(m, "citizen_form", level, "geography level is a field", "named in geography.levels, not in the form")
    pairs = [(levels[i + 1], levels[i]) for i in range(len(levels) - 1)]
    psu = str((m.meta.get("design") or {}).get("psu", "psu"))
    psu = psu if psu in frame.columns else "commune_code"
    for level, parent in [*pairs[::-1], (psu, "stratum")]:
        if level not in frame.columns:
            continue
        bad = frame.group_by(level).agg(pl.col(parent).n_unique()).filter(pl.col(parent) > 1)
        for code in bad[level].to_list():
            yield _p(m, 'sampling_frame', code, "nests", f"{level} {code} lies in more than one {parent}")
    for code in sorted(set(frame["province_code"].to_list()) - codes):
        yield _p(m, 'sampling_frame', code, "province exists", "not in provinces.csv")
    yield from _check_mapping(m, codes)
    yield from _check_official(m, frame)


def _check_official(m: Methodology, frame: pl.DataFrame) -> Iterable[str]:
    """The `frame:` lists: every frame commune is an official one, in the same province (and district)."""
    communes = m.official_units.get("communes")
    block = m.meta.get("frame") or {}
    for name, key in block.items():
        if name != "source" and key not in m.meta.get("files", {}):
            yield f"{m.root / 'methodology.yaml'}: frame.{name}: rule 'file named in files': {key!r}"
    if communes is None:
        return
    key = str(block["communes"])
    yield from _unique(m, key, communes, "commune_code")
    cols = [c for c in ("province_code", "district_code", "commune_code") if c in frame.columns and c in communes.columns]
    units = frame.select(cols).unique()
    for row in units.join(communes.select(cols), on=cols, how="anti").head(20).iter_rows(named=True):
        yield _p(m, "sampling_frame", row["commune_code"], "official commune",
                 f"{', '.join(f'{c} {row[c]}' for c in cols)} is not a commune of {_name(m, key)}")

def _check_mapping(m: Methodology, codes: set[str]) -> Iterable[str]:
    """The `comparable` block: a previous year, and a mapping whose every target is a unit of this year."""
    block = m.comparable
    if not block:
        return
    where = f"{m.root / 'methodology.yaml'}: comparable"
    if not isinstance(block.get("previous_year"), int) or block["previous_year"] >= m.year:
        yield f"{where}.previous_year: rule 'an earlier year': {block.get('previous_year')!r}"
    if block.get("par", "not_comparable") != "not_comparable":
        yield f"{where}.par: rule 'known rule': {block.get('par')!r} is not one of ['not_comparable']"
    mapping = m.unit_mapping
    if mapping is None:
        yield f"{where}.mapping: rule 'file named in files': {block.get('mapping', 'unit_mapping')!r}"
        return
    key = str(block.get("mapping", "unit_mapping"))
    yield from _unique(m, key, mapping, "from_code")
    for row in mapping.iter_rows(named=True):
        if row["to_code"] not in codes:
            yield _p(m, key, row["from_code"], "unit exists", f"{row['to_code']} is not in provinces.csv")
    for code in sorted(codes - set(mapping["to_code"].to_list())):
        yield _p(m, key, code, "every unit mapped", "no previous-year province maps to it")


def _check_completeness(m: Methodology) -> Iterable[str]:
    """The `completeness` block: a minimum of valid forms per province for each survey source, and
    whether the appraisal needs every sub-criterion."""
    where = f"{m.root / 'methodology.yaml'}: completeness"
    block = m.meta.get("completeness")
    if not isinstance(block, dict):
        yield f"{where}: rule 'present': every year says what a province needs (citizen, official, appraisal)"
        return
    for source in SOURCES:
        spec = block.get(source)
        if not isinstance(spec, dict):
            yield f"{where}.{source}: rule 'present': missing"
            continue
        known = {"min_valid_forms"} if source != "appraisal" else {"every_subcriterion"}
        for key in sorted(set(spec) - known):
            yield f"{where}.{source}.{key}: rule 'known key': not one of {', '.join(sorted(known))}"
        if source == "appraisal":
            if not isinstance(spec.get("every_subcriterion"), bool):
                yield f"{where}.appraisal.every_subcriterion: rule 'boolean': {spec.get('every_subcriterion')!r}"
        elif not isinstance(spec.get("min_valid_forms"), int) or isinstance(spec.get("min_valid_forms"), bool) \
                or spec["min_valid_forms"] < 1:
            yield f"{where}.{source}.min_valid_forms: rule 'positive integer': {spec.get('min_valid_forms')!r}"
    for key in sorted(set(block) - set(SOURCES)):
        yield f"{where}.{key}: rule 'known source': not one of {', '.join(SOURCES)}"


def _check_design(m: Methodology) -> Iterable[str]:
    where = f"{m.root / 'methodology.yaml'}: design"
    block = m.meta.get("design")
    if not isinstance(block, dict):
        yield f"{where}: rule 'design block': missing (strata, psu, weight columns and the uncertainty settings)"
        return
    fields = set(m.forms["citizen"]["field_id"].to_list())
    for key in ("strata", "psu", "weight"):
        if block.get(key) not in fields:
            yield f"{where}.{key}: rule 'column exists': {block.get(key)!r} is not a field of citizen_form.csv"
    try:
        d = Design.from_meta(block)
    except (KeyError, TypeError, ValueError) as exc:
        yield f"{where}: rule 'design values': {exc}"
        return
    if d.lonely_psu not in LONELY_PSU_RULES:
        yield f"{where}.lonely_psu: rule 'known rule': {d.lonely_psu!r} is not one of {list(LONELY_PSU_RULES)}"
    if d.rank_variance not in RANK_VARIANCES:
        yield f"{where}.rank_variance: rule 'known rule': {d.rank_variance!r} is not one of {list(RANK_VARIANCES)}"
    for key, value in (("confidence", d.confidence), ("rank_interval", d.rank_interval)):
        if not 0 < value < 1:
            yield f"{where}.{key}: rule 'probability': {value} is not between 0 and 1"
    for key, value in (("rank_draws", d.rank_draws), ("rank_set_draws", d.rank_set_draws)):
        if value < 100:
            yield f"{where}.{key}: rule 'enough draws': {value} < 100"
    if d.small_sample < 1:
        yield f"{where}.small_sample: rule 'positive': {d.small_sample}"


def _check_window(m: Methodology) -> Iterable[str]:
    """The survey window: two ISO dates, start before end, in the year's calendar year or after it."""
    where = f"{m.root / 'methodology.yaml'}: survey_window"
    window = m.meta.get("survey_window")
    try:
        start, end = (date.fromisoformat(str(window[k])) for k in ("start", "end"))
    except (TypeError, KeyError, ValueError):
        yield f"{where}: rule 'two dates': start and end as YYYY-MM-DD, found {window!r}"
        return
    if start > end or start.year != m.year:
        yield f"{where}: rule 'in the survey year': {start} to {end} for year {m.year}"


def check_methodology(m: Methodology) -> list[str]:
    """Every broken rule of the year's files, as messages (empty when all hold)."""
    problems: list[str] = []
    for check in (_check_forms, _check_indicators, _check_par, _check_units, _check_completeness, _check_design,
                  _check_window):
        problems.extend(check(m))
    if not problems:  # counts read best once the entries themselves are sound
        problems.extend(_check_counts(m))
    return problems
