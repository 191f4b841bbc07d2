"""Validate: bronze -> silver + quarantine, with Pandera schemas built from the year's forms.

Every check runs on the bronze text columns (so a value that is not a number is caught with the
value as keyed), all failures are collected (`lazy=True`) and joined back to their rows: valid
rows go to silver (typed), the others to quarantine with every reason (column, rule, value).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.ingest import LINEAGE
from sipas_pipeline.ingest.bronze import ROW_SHAPE, empty_bronze
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.methodology.skip_logic import condition_expr

if TYPE_CHECKING:  # pandera (and pandas under it) is imported when a schema is built: commands that only check
    import pandera.polars as pa  # their arguments start half a second sooner

INT_RE = r"^-?\d+$"
FLOAT_RE = r"^-?\d+([.,]\d+)?$"


COPIES = "_copies"  # while validating: "exact" (a later exact copy of a row), "conflict" (a key with different answers)


class AccountingError(AssertionError):
    """Rows read != rows valid + rows quarantined: a bug, never a user mistake."""


def _num(field: str, dtype: str) -> pl.Expr:
    """A text column as a number: a decimal comma read as a point (an int with a comma is no int either way)."""
    if dtype != "float":
        return pl.col(field).cast(pl.Int64, strict=False)
    return pl.col(field).str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)


@dataclass(frozen=True)
class Rule:
    """One rule of the form on one column: `passes` is true on the rows that keep it."""

    column: str
    name: str
    message: str
    passes: pl.Expr


def _rule(column: str, name: str, message: str, passes: pl.Expr) -> Rule:
    """One rule on one column; a null result counts as broken."""
    return Rule(column, name, message, passes.fill_null(False))


def answer_rules(m: Methodology, row: dict) -> list[Rule]:
    """The rules of one field's answer: required, skip logic, number, codes, minimum."""
    f, dtype, col = row["field_id"], row["dtype"], pl.col(row["field_id"])
    rules = []
    asked = condition_expr(row["ask_if"]) if row["ask_if"] else pl.lit(True)
    if row["required"] == "yes":
        rules.append(_rule(f, "required", "answer required", ~asked | col.is_not_null()))
    if row["ask_if"]:
        rules.append(_rule(f, "skip_logic", f"answered although not asked ({row['ask_if']} is false)",
                           asked | col.is_null()))
    if dtype in ("int", "float"):
        pattern = INT_RE if dtype == "int" else FLOAT_RE
        rules.append(_rule(f, "not_a_number", f"not a number ({dtype})", col.is_null() | col.str.contains(pattern)))
    if row["code_list"] and dtype == "int":
        codes = m.codes(row["code_list"])
        rules.append(_rule(f, "allowed_codes", f"not a code of {row['code_list']} {codes}",
                           col.is_null() | _num(f, "int").is_in(codes).fill_null(False)))
    if row["code_list"] and dtype == "multi":
        codes = [str(c) for c in m.codes(row["code_list"])]
        rules.append(_rule(f, "allowed_codes", f"an option is not a code of {row['code_list']}",
                           col.is_null() | col.str.split(" ").list.eval(pl.element().is_in(codes)).list.all()))
    if row["min"]:
        lo = float(row["min"])
        rules.append(_rule(f, "range", f"below the minimum {lo:g}", _num(f, dtype).is_null() | (_num(f, dtype) >= lo)))
    return rules


def reference_rules(m: Methodology, spec: dict, row: dict) -> list[Rule]:
    """The rules that check one field against the methodology: PAR maxima and sub-criteria, provinces, dates
    and the survey window, the geography of the sampling frame."""
    f, dtype, col = row["field_id"], row["dtype"], pl.col(row["field_id"])
    subs = m.par_subcriteria
    max_points = dict(zip(subs["subcriterion_id"], subs["max_points"], strict=True))
    rules = []
    if row["refs"] == "max_points":
        maxima = pl.col("subcriterion_id").replace_strict(max_points, default=None, return_dtype=pl.Float64)
        rules.append(_rule(f, "max_points", "above the sub-criterion's maximum points",
                           _num(f, dtype).is_null() | maxima.is_null() | (_num(f, dtype) <= maxima + 1e-9)))
    if row["refs"] == "par_subcriteria":
        rules.append(_rule(f, "reference", "not a sub-criterion of par_subcriteria.csv",
                           col.is_null() | col.is_in(list(max_points))))
    if dtype == "province":
        rules.append(_rule(f, "province_known", "not a province code, name or known alias",
                           col.is_null() | col.is_in(m.provinces["province_code"].to_list())))
    if dtype == "date":
        day = col.str.to_date("%Y-%m-%d", strict=False)
        rules.append(_rule(f, "not_a_date", "not a date (ISO, dd/mm/yyyy or an Excel serial)", col.is_null() | day.is_not_null()))
        window = m.meta.get("survey_window")
        if window and f == spec.get("date_field"):
            start, end = (date.fromisoformat(str(window[k])) for k in ("start", "end"))  # YAML date or quoted text
            rules.append(_rule(f, "survey_window", f"outside the survey window {start} to {end}",
                               day.is_null() | day.is_between(start, end)))
    if row["refs"] == "sampling_frame":
        geo = m.geography  # the year's levels, top down (methodology.yaml geography)
        valid = m.sampling_frame.select(pl.concat_str(geo, separator="/").alias("k"))["k"].to_list()
        rules.append(_rule(f, "geography",
                           f"{', '.join(g.removesuffix('_code') for g in reversed(geo))} do not nest in the sampling frame",
                           pl.concat_str(geo, separator="/").is_in(valid).fill_null(False)))
    return rules


def design_rules(m: Methodology, fields: list[str]) -> tuple[list[Rule], set[str]]:
    """The rules of the design columns (methodology.yaml `design:`) present in a form, and those columns: the stratum
    and the PSU must be ones of the sampling frame (read through the methodology: `population_frame`; the PSU is
    the frame's column of that name, else its commune), the weight a positive finite number (`weight_invalid`
    replaces the generic number and range rules there)."""
    d, frame = m.design, m.population_frame
    rules, columns = [], set()
    if d.strata in fields and d.strata in frame.columns:
        strata = frame[d.strata].drop_nulls().unique().to_list()
        rules.append(_rule(d.strata, "design_unknown", "not a stratum of the sampling frame",
                           pl.col(d.strata).is_null() | pl.col(d.strata).is_in(strata)))
    psu_col = d.psu if d.psu in frame.columns else next((g for g in m.geography if g.startswith("commune")), None)
    if d.psu in fields and psu_col in frame.columns:
        psus = frame[psu_col].drop_nulls().unique().to_list()
        rules.append(_rule(d.psu, "design_unknown", f"not a primary sampling unit ({psu_col}) of the sampling frame",
                           pl.col(d.psu).is_null() | pl.col(d.psu).is_in(psus)))
    if d.weight in fields:
        w = pl.col(d.weight).str.replace(",", ".").cast(pl.Float64, strict=False)
        rules.append(_rule(d.weight, "weight_invalid", "not a positive number (a design weight)",
                           pl.col(d.weight).is_null() | (pl.col(d.weight).str.contains(FLOAT_RE) & w.is_finite()
                                                         & (w > 0))))
        columns.add(d.weight)
    return rules, columns


def form_rules(m: Methodology, source: str) -> list[Rule]:
    """Every rule of a source, generated from its form definition (types, codes, required answers,
    skip logic, ranges, references, geography, survey window, design columns, unique key)."""
    spec = m.meta["sources"][source]
    rules: list[Rule] = []
    form = m.forms[source].filter(pl.col("pii") == "no")
    design, own = design_rules(m, form["field_id"].to_list()) if source == "citizen" else ([], set())
    for row in form.iter_rows(named=True):
        answer = answer_rules(m, row)
        if row["field_id"] in own:  # the weight: its own rule instead of the generic number and range rules
            answer = [r for r in answer if r.name not in ("not_a_number", "range")]
        rules += answer + reference_rules(m, spec, row)
    rules += design
    key = spec["key"]
    copies = pl.col(COPIES)
    rules.append(_rule(key[-1], "duplicate_key", "exact copy of an earlier row with the same " + "+".join(key),
                       copies.is_null() | (copies != "exact")))
    rules.append(_rule(key[-1], "conflicting_duplicate",
                       "the same " + "+".join(key) + " delivered with different answers: every copy is quarantined until a "
                       "correction keeps one (action keep)", copies.is_null() | (copies != "conflict")))
    return rules


def build_schema(m: Methodology, source: str, rules: list[Rule] | None = None) -> pa.DataFrameSchema:
    """The Pandera schema of a source: lineage and form columns with their types (strict: no other
    column), and one check that holds on the rows where every rule of the form holds (`explain`
    then names the broken rules). One frame-level check instead of one per rule and column keeps
    validation to a single pass over the data."""
    import pandera.polars as pa

    rules = rules if rules is not None else form_rules(m, source)
    fields = m.forms[source].filter(pl.col("pii") == "no")["field_id"].to_list()
    columns = {c: pa.Column(pl.Int64 if c == "source_row" else pl.Utf8) for c in LINEAGE}
    columns |= {f: pa.Column(pl.Utf8, nullable=True) for f in [ROW_SHAPE, COPIES, *fields]}
    holds = pl.all_horizontal([r.passes for r in rules]).alias("form_rules")
    check = pa.Check(lambda data: data.lazyframe.select(holds), name="form_rules")
    return pa.DataFrameSchema(columns, checks=[check], name=f"{m.year}:{source}", strict=True, ordered=False)


@dataclass
class ValidationResult:
    """Silver (typed valid rows), quarantine (bad rows with reasons) and the row accounting."""

    source: str
    silver: pl.DataFrame
    quarantine: pl.DataFrame
    accounting: pl.DataFrame  # per batch: read, valid, quarantined


def failures(bronze: pl.DataFrame, schema: pa.DataFrameSchema, rules: list[Rule]) -> pl.DataFrame:
    """Every broken rule as (row index, column, rule, value, message). Pandera validates the frame
    (`lazy=True`, all failures); the rules are then evaluated on the failing rows to say which broke."""
    from pandera.errors import SchemaErrors

    try:
        schema.validate(bronze, lazy=True)
    except SchemaErrors as exc:
        fc = exc.failure_cases
        schema_level = fc.filter(pl.col("index").is_null())
        if schema_level.height:
            raise ValueError(f"schema errors: {schema_level.to_dicts()[:5]}") from exc
        return explain(bronze, fc["index"].cast(pl.Int64).unique(), rules)
    return pl.DataFrame(schema={"index": pl.Int64, "column": pl.Utf8, "rule": pl.Utf8, "value": pl.Utf8,
                                "message": pl.Utf8})


def explain(bronze: pl.DataFrame, rows: pl.Series, rules: list[Rule]) -> pl.DataFrame:
    """For the failing rows (positions): each broken rule with the column, value and message.
    The rows with a broken rule must be exactly the rows Pandera failed."""
    numbered = {str(i): r for i, r in enumerate(rules)}
    # evaluated on the failing rows only: every rule reads its own row (copies of a key are marked before)
    own = [(~r.passes).alias(i) for i, r in numbered.items()]
    flags = (bronze.lazy().with_row_index("index").with_columns(pl.col("index").cast(pl.Int64))
             .filter(pl.col("index").is_in(rows.implode()))
             .select("index", *own).collect())
    meta = pl.DataFrame({"rule_no": list(numbered), "column": [r.column for r in numbered.values()],
                         "rule": [r.name for r in numbered.values()], "message": [r.message for r in numbered.values()]})
    broken = (flags.unpivot(index="index", variable_name="rule_no", value_name="broken").filter(pl.col("broken"))
              .join(meta, on="rule_no").select("index", "column", "rule", "message"))
    if broken["index"].n_unique() != rows.len() or not broken["index"].is_in(rows.implode()).all():
        raise AccountingError("validation: the rows Pandera failed and the rows with a broken rule disagree")
    # the values as keyed: the failing rows' broken columns as text, in one long frame (not one frame per column)
    columns = broken["column"].unique().sort().to_list()
    values = (bronze.select(*[pl.col(c).cast(pl.Utf8) for c in columns]).with_row_index("index")
              .with_columns(pl.col("index").cast(pl.Int64)).filter(pl.col("index").is_in(rows.implode()))
              .unpivot(index="index", variable_name="column", value_name="value"))
    return broken.join(values, on=["index", "column"]).select("index", "column", "rule", "value", "message")


ANSWERS = "_answers"  # while marking copies: a hash of a row's answers (every public field but the key)


def copies_of(bronze: pl.DataFrame | pl.LazyFrame, key: list[str], answers: list[str]) -> pl.DataFrame:
    """The rows whose key repeats (few), in the order given (`source_file`, `source_row`), each with COPIES
    ("exact" on every later exact copy of a row with the same key, "conflict" on every row of a key delivered with
    different answers, else null), where the first row with that key stands (`first`), every row with it (`all`,
    file:row, at most six) and how many there are (`n`). `bronze` may be a LazyFrame over many batches: only the
    key, the lineage and a hash of the answers are held."""
    keyed = pl.all_horizontal(pl.col(k).is_not_null() for k in key)
    repeats = keyed & (pl.struct(key).is_duplicated() if len(key) > 1 else pl.col(key[0]).is_duplicated())
    # the repeated keys first: only their rows' answers are hashed (a tenth of the validation's cost otherwise)
    rows = (bronze.lazy().filter(repeats)
            .select("source_file", "source_row", *key, pl.struct(answers).hash().alias(ANSWERS)))
    rows = rows.collect(engine="streaming") if isinstance(bronze, pl.LazyFrame) else rows.collect()
    at = pl.format("{}:{}", pl.col("source_file"), pl.col("source_row"))
    return rows.select(
        "source_file", "source_row",
        pl.when(pl.col(ANSWERS).n_unique().over(key) > 1).then(pl.lit("conflict"))
        .when(~pl.struct(key).is_first_distinct()).then(pl.lit("exact")).alias(COPIES),
        at.first().over(key).alias("first"),
        at.head(6).over(key, mapping_strategy="join").list.join(", ").alias("all"), pl.len().over(key).alias("n"))


def copies_in_files(files: list[Path], key: list[str], answers: list[str]) -> pl.DataFrame:
    """`copies_of` over every row of bronze Parquet `files` without holding them: the keys are hashed in a first
    streaming pass, and only the rows whose key's hash repeats (few) are read whole."""
    scan = pl.scan_parquet(files).filter(pl.col(ROW_SHAPE).is_null() & pl.all_horizontal(pl.col(k).is_not_null()
                                                                                          for k in key))
    hashed = pl.struct(key).hash() if len(key) > 1 else pl.col(key[0]).hash()
    seen = (scan.select(hashed.alias("h")).group_by("h").len().filter(pl.col("len") > 1).select("h")
            .collect(engine="streaming")["h"])
    return copies_of(scan.filter(hashed.is_in(seen.implode())), key, answers)


def mark_copies(bronze: pl.DataFrame, copies: pl.DataFrame) -> pl.DataFrame:
    """`bronze` with the column COPIES from `copies_of` (null on the rows whose key does not repeat)."""
    if not copies.height:
        return bronze.with_columns(pl.lit(None, pl.Utf8).alias(COPIES))
    return bronze.join(copies.select("source_file", "source_row", COPIES), on=["source_file", "source_row"],
                       how="left", maintain_order="left")


def _name_copies(fails: pl.DataFrame, bronze: pl.DataFrame, copies: pl.DataFrame) -> pl.DataFrame:
    """Duplicate and conflict messages with the rows they concern: the first copy, or every copy."""
    if not fails.filter(pl.col("rule").is_in(["duplicate_key", "conflicting_duplicate"])).height:
        return fails
    where = bronze.with_row_index("index").select(pl.col("index").cast(pl.Int64), "source_file", "source_row")
    named = where.join(copies.drop(COPIES), on=["source_file", "source_row"], how="inner").drop("source_file",
                                                                                                 "source_row")
    more = pl.when(pl.col("n") > 6).then(pl.format(" and {} more", pl.col("n") - 6)).otherwise(pl.lit(""))
    return fails.join(named, on="index", how="left").with_columns(
        pl.when(pl.col("rule") == "duplicate_key")
        .then(pl.format("exact copy of the row first at {} (that copy stays valid)", pl.col("first")))
        .when(pl.col("rule") == "conflicting_duplicate")
        .then(pl.format("{}; copies at {}{}", pl.col("message"), pl.col("all"), more))
        .otherwise(pl.col("message")).alias("message")).drop("first", "all", "n")


def shape_reasons(bad: pl.DataFrame) -> pl.DataFrame:
    """Rows whose number of fields differs from their header's: one `row_shape` reason each (no value)."""
    return bad.with_columns(pl.concat_list(pl.struct(
        pl.lit(None, pl.Utf8).alias("column"), pl.lit("row_shape").alias("rule"), pl.lit(None, pl.Utf8).alias("value"),
        pl.col(ROW_SHAPE).alias("message"))).alias("reasons"))


def typed(m: Methodology, source: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Valid bronze rows with their form's types (ints, floats, dates)."""
    form = m.forms[source].filter(pl.col("pii") == "no")
    casts = []
    for f, dtype in form.select("field_id", "dtype").iter_rows():
        if dtype in ("int", "float"):
            casts.append(_num(f, dtype).alias(f))
        elif dtype == "date":
            casts.append(pl.col(f).str.to_date("%Y-%m-%d", strict=False).alias(f))
    return frame.with_columns(casts)


def _key_and_answers(m: Methodology, source: str) -> tuple[list[str], list[str]]:
    key = m.meta["sources"][source]["key"]
    return key, [c for c in m.forms[source].filter(pl.col("pii") == "no")["field_id"].to_list() if c not in key]


def _with_shape(bronze: pl.DataFrame) -> pl.DataFrame:
    return bronze if ROW_SHAPE in bronze.columns else bronze.with_columns(pl.lit(None, pl.Utf8).alias(ROW_SHAPE))


def validate_source(m: Methodology, source: str, bronze: pl.DataFrame | None,
                    copies: pl.DataFrame | None = None) -> ValidationResult:
    """Split a source's bronze rows into silver and quarantine; check the accounting. A row whose
    shape is wrong (`row_shape`) is quarantined whole with that one reason; the rules run on the others.
    No bronze at all (every batch header-only) is no rows. `copies`: the repeated keys (`copies_of`) of the
    whole source when `bronze` is one batch of it (`validate_files`), else found in `bronze`."""
    if bronze is None:
        bronze = empty_bronze(m, source)
    bronze = _with_shape(bronze).sort("source_file", "source_row")
    misshapen = bronze.filter(pl.col(ROW_SHAPE).is_not_null())
    shaped = bronze.filter(pl.col(ROW_SHAPE).is_null()) if misshapen.height else bronze
    rules = form_rules(m, source)
    key, answers = _key_and_answers(m, source)
    copies = copies if copies is not None else copies_of(shaped, key, answers)
    shaped = mark_copies(shaped, copies)
    fails = failures(shaped, build_schema(m, source, rules), rules)
    fails = _name_copies(fails, shaped, copies)
    reasons = (fails.sort("index", "column", "rule")
               .group_by("index", maintain_order=True)
               .agg(pl.struct("column", "rule", "value", "message").alias("reasons")))
    indexed = shaped.with_row_index("index").with_columns(pl.col("index").cast(pl.Int64))
    bad = indexed.join(reasons, on="index", how="inner", maintain_order="left").drop("index")
    bad = bad.drop(COPIES)
    if misshapen.height:
        bad = pl.concat([bad, shape_reasons(misshapen)], how="vertical").sort("source_file", "source_row")
    good = indexed.join(reasons, on="index", how="anti", maintain_order="left").drop("index", ROW_SHAPE, COPIES)
    silver = typed(m, source, good)
    quarantine = bad.drop(ROW_SHAPE).with_columns(pl.lit(source).alias("source"))
    return ValidationResult(source, silver, quarantine, batch_accounting(bronze, good, bad, source))


ONE_BATCH_ROWS = 64_000  # a source of up to this many bronze rows is validated at once (a year's: ~36k and ~49k)
BATCH_ROWS = 12_500  # rows of a batch of a larger one (benchmarks/memory.py: peak RSS against these sizes)


def validate_files(m: Methodology, source: str, files: list[Path], silver: Path, quarantine: Path,
                   batch_rows: int | None = None) -> tuple[pl.DataFrame, dict[str, int]]:
    """A source's bronze Parquet `files` -> its silver and quarantine Parquet, in batches of `batch_rows` rows
    (default: one batch up to ONE_BATCH_ROWS rows, else BATCH_ROWS): memory grows with the batch, not the
    source. The rules across rows (a key delivered twice) see the whole source: the repeated keys are found first
    over every batch (`copies_in_files`). The files are the same, byte for byte, whatever the batch size.
    Returns the accounting per batch (read = valid + quarantined, checked) and how many quarantined rows break
    each rule."""
    from sipas_pipeline.parquet_rows import RowGroups, batches, total_rows

    copies, rows = None, total_rows(files)
    batch_rows = batch_rows or (BATCH_ROWS if rows > max(ONE_BATCH_ROWS, BATCH_ROWS) else max(rows, 1))
    if rows > batch_rows:  # several batches: the files in the order of their rows
        files = sorted(files, key=lambda f: pl.scan_parquet(f).select("source_file").head(1).collect().item())
        copies = copies_in_files(files, *_key_and_answers(m, source))
    out_silver, out_quarantine = RowGroups(silver), RowGroups(quarantine)
    read, valid, bad, rules = [], [], [], Counter()
    for batch in batches(files, batch_rows) if files else [None]:
        result = validate_source(m, source, batch, copies)
        out_silver.write(result.silver)
        out_quarantine.write(result.quarantine)
        acc = result.accounting
        read.append(acc.select("source_file", "batch_id", "read"))
        valid.append(acc.select("source_file", "valid"))
        bad.append(acc.select("source_file", "quarantined"))
        rules.update(reason_counts(result.quarantine))
        last = result
    out_silver.close(last.silver.head(0))
    out_quarantine.close(last.quarantine.head(0))
    def total(parts: list[pl.DataFrame], keys: list[str], name: str) -> pl.DataFrame:
        return pl.concat(parts).group_by(keys, maintain_order=True).agg(pl.col(name).sum())
    acc = accounting(total(read, ["source_file", "batch_id"], "read"), total(valid, ["source_file"], "valid"),
                     total(bad, ["source_file"], "quarantined"), source)
    return acc, dict(rules.most_common())


def batch_accounting(bronze: pl.DataFrame, valid: pl.DataFrame, quarantined: pl.DataFrame, source: str) -> pl.DataFrame:
    """Rows read / valid / quarantined per batch; raises AccountingError unless read = valid + quarantined."""
    read = bronze.group_by("source_file", "batch_id").agg(pl.len().cast(pl.Int64).alias("read"))
    return recount(read, valid, quarantined, source)


def recount(read: pl.DataFrame, valid: pl.DataFrame, quarantined: pl.DataFrame, source: str) -> pl.DataFrame:
    """Valid and quarantined rows per batch beside the rows read (`source_file`, `batch_id`, `read`);
    raises AccountingError unless read = valid + quarantined in every batch and in total."""
    def per_file(rows: pl.DataFrame, name: str) -> pl.DataFrame:
        return rows.group_by("source_file").agg(pl.len().cast(pl.Int64).alias(name))
    return accounting(read, per_file(valid, "valid"), per_file(quarantined, "quarantined"), source)


def accounting(read: pl.DataFrame, valid: pl.DataFrame, quarantined: pl.DataFrame, source: str) -> pl.DataFrame:
    """`recount` from counts per file: `valid` (`source_file`, `valid`) and `quarantined` (`source_file`,
    `quarantined`)."""
    acc = (read.select("source_file", "batch_id", pl.col("read").cast(pl.Int64))
           .join(valid, on="source_file", how="left").join(quarantined, on="source_file", how="left")
           .with_columns(pl.col("valid", "quarantined").fill_null(0).cast(pl.Int64)).sort("source_file"))
    broken = acc.filter(pl.col("read") != pl.col("valid") + pl.col("quarantined"))
    if broken.height or valid["valid"].sum() + quarantined["quarantined"].sum() != acc["read"].sum():
        raise AccountingError(f"{source}: rows read != valid + quarantined: {broken.to_dicts()}")
    return acc


def read_bronze(work: StageFolder, source: str) -> pl.DataFrame | None:
    """A source's bronze rows (every batch of the stage folder `work`), or None when it has none."""
    files = work.bronze_files(source)
    if not files:
        return None
    return pl.concat([pl.read_parquet(f) for f in files], how="vertical")


def reason_counts(quarantine: pl.DataFrame) -> dict[str, int]:
    """How many quarantined rows break each rule, most frequent first."""
    rules: Counter = Counter()
    if quarantine.height:
        exploded = quarantine.select("reasons").explode("reasons").unnest("reasons")
        rules.update(dict(exploded.group_by("rule").len().iter_rows()))
    return dict(rules.most_common())
