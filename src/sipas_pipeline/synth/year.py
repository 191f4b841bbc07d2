"""`generate_year`: a whole synthetic survey year, its raw exports, truth and defect manifest."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sipas_pipeline.hashing import sha256_file
from sipas_pipeline.methodology import Methodology, load_methodology
from sipas_pipeline.paths import fresh_dir
from sipas_pipeline.progress import track
from sipas_pipeline.synth import defects
from sipas_pipeline.synth.calibration import province_targets
from sipas_pipeline.synth.citizens import citizen_batch
from sipas_pipeline.synth.design import DesignParams, declared_sample
from sipas_pipeline.synth.par import citizen_points, official_batch, par_levels
from sipas_pipeline.synth.population import Population, build_population, with_truth
from sipas_pipeline.synth.truth import indicator_truth, tree_truth
from sipas_pipeline.synth.writers import FORMATS, write_table, write_xlsx

FULL_SIZE = {"citizen": 36_525, "official": 49_159}
DEFECT_RATE = {"citizen": 0.016, "official": 0.012}
FORMAT_SHARE = [0.40, 0.20, 0.20, 0.15, 0.05]  # by FORMATS
EXTENSION = {"csv-utf8": "csv", "csv-utf8-bom": "csv", "csv-cp1258-semicolon": "csv",
             "xlsx": "xlsx", "tsv-utf16": "txt"}


def allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split `total` in proportion to `weights` (largest remainder), summing exactly."""
    raw = total * weights / weights.sum()
    out = np.floor(raw).astype(int)
    out[np.argsort(-(raw - out), kind="stable")[: total - out.sum()]] += 1
    return out


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in ascii_name if unicodedata.category(ch) != "Mn").lower().replace(" ", "-")


def _headers(m: Methodology, source: str) -> dict[str, str]:
    form = m.forms[source]
    return {r["field_id"]: r["headers"].split("|")[0] for r in form.iter_rows(named=True)}


def citizen_sizes(m: Methodology, total: int, rng: np.random.Generator) -> np.ndarray:
    """Citizens' forms per province (sorted by code): in proportion to its sampled villages, +-15%."""
    villages = m.sampling_frame.group_by("province_code").len().sort("province_code")["len"].to_numpy()
    return allocate(total, villages * rng.uniform(0.85, 1.15, villages.size))


_CALIBRATED: dict[tuple[str, int], tuple[pl.DataFrame, pl.DataFrame]] = {}  # targets depend on files and seed only
# The last population built (build_population: ~1.4 s of CPU, the same draws every time for the same methodology,
# seed, design, place seed and generator state) with the generator's state after it: one entry (~80 MB), read-only.
_LAST_POPULATION: dict[tuple, tuple[tuple[pl.DataFrame, Population, pl.DataFrame], dict | None]] = {}


def forget_populations() -> None:
    """Drop the population `population_truth` keeps (the next call builds it again)."""
    _LAST_POPULATION.clear()


def population_truth(m: Methodology, seed: int, design: DesignParams, rng: np.random.Generator | None = None,
                     place_seed: int | None = None) -> tuple[pl.DataFrame, Population, pl.DataFrame]:
    """Province targets (calibrated with `seed`), the population and the true indicator values: finite-population
    values of the modelled items, equal to the calibrated targets; the expectation items' constants. Place effects:
    the persistent part keyed by `place_seed` (default `seed`: the same places get the same effects in every
    year), the year-specific part drawn with `rng` (default from `seed` and the year). The last population built
    is kept (its arrays read-only): a call with the same methodology, seeds, design and `rng` state gets it again,
    `rng` left in the state the build would have left it in (`forget_populations` drops it)."""
    key = (m.content_hash, seed)
    if key not in _CALIBRATED:
        targets = province_targets(m, seed)
        _CALIBRATED[key] = targets, indicator_truth(m, targets, seed)
    targets, calibrated = _CALIBRATED[key]
    place_seed = seed if place_seed is None else place_seed
    drawn = (m.content_hash, seed, design, place_seed, None if rng is None else repr(rng.bit_generator.state))
    if drawn in _LAST_POPULATION:
        kept, after = _LAST_POPULATION[drawn]
        if rng is not None:
            rng.bit_generator.state = after
        return kept
    population = build_population(m, calibrated, design, rng or np.random.default_rng([seed, 20245, m.year]),
                                  place_seed)
    for array in (population.eta, population.asked):
        if array is not None:
            array.setflags(write=False)
    out = targets, population, with_truth(calibrated, population)
    _LAST_POPULATION.clear()
    _LAST_POPULATION[drawn] = out, None if rng is None else rng.bit_generator.state
    return out


def comparable_truth(m: Methodology, seed: int, design: DesignParams, tree: pl.DataFrame) -> pl.DataFrame | None:
    """For a year whose units changed (a `comparable` block): per unit and SIPAS node, the previous year's true
    value on this year's units (the finite population of the old provinces pooled, same seed and design as the
    previous synthetic year), this year's true value (`tree`) and the true change. None for other years."""
    if not m.comparable:
        return None
    prev = load_methodology(int(m.comparable["previous_year"]), m.root.parent)
    _, population, _ = population_truth(prev, seed, design)
    unit_of = dict(zip(m.unit_mapping["from_code"], m.unit_mapping["to_code"], strict=True))
    before = tree_truth(prev, population.domain_truth(unit_of))
    return (tree.join(before.rename({"value": "previous_value"}), on=["province_code", "node"], how="inner")
            .select("province_code", "node", "previous_value", "value", (pl.col("value") - pl.col("previous_value"))
                    .alias("change")).sort("province_code", "node"))


def generate_year(year: int, out: Path, seed: int = 7, scale: float = 1.0,
                  design: DesignParams | None = None) -> dict[str, Any]:
    """Write the raw exports of a synthetic year into `out` (citizen/, official/, appraisal/)
    with its ground truth, design parameters and defect manifest under truth/; return the manifest.
    `design` sets the commune/village/respondent effects (default: `DesignParams()`). `out` must be new,
    empty or made by an earlier `generate_year` (its marker file): a folder with other files is
    never emptied (InputError)."""
    design = design or DesignParams()
    m = load_methodology(year)
    out = fresh_dir(Path(out), "synthetic year")  # never empties a folder it did not make
    for sub in ("citizen", "official", "appraisal", "truth"):
        (out / sub).mkdir(parents=True)
    targets, population, truth = population_truth(m, seed, design)
    tree = tree_truth(m, truth)
    cit_pts = citizen_points(m, tree, truth)
    levels, par_totals = par_levels(m, targets, cit_pts, seed)
    provinces = m.provinces.sort("province_code")
    codes = provinces["province_code"].to_list()
    rng = np.random.default_rng([seed, 20243])
    size_cit = citizen_sizes(m, round(FULL_SIZE["citizen"] * scale), rng)
    size_off = allocate(round(FULL_SIZE["official"] * scale), rng.uniform(0.7, 1.3, len(codes)))
    formats = rng.choice(len(FORMATS), size=len(codes), p=FORMAT_SHARE)
    sample = declared_sample(m.population_frame)
    sample_by = sample.partition_by("province_code", as_dict=True)
    phi_by = {c: dict(zip(g["subcriterion_id"], g["phi"], strict=True))
              for (c,), g in levels.filter(pl.col("phi").is_not_null())
              .partition_by("province_code", as_dict=True).items()}
    files, defect_rows = [], []
    heads = {s: _headers(m, s) for s in ("citizen", "official")}
    frame = m.sampling_frame
    prev_ids: list[str] = []
    off_path = out / "official" / f"kobo_par_officials_{year}.csv"
    off_rows = 0
    with off_path.open("wb") as off_file:
        off_file.write(b"\xef\xbb\xbf")
        units = provinces.select("province_code", "name_vi", "name_en").iter_rows()
        for k, (code, name, name_en) in enumerate(track(units, provinces.height, f"sample {year}: provinces")):
            fr = frame.filter(pl.col("province_code") == code)
            above = m.geography[max(m.geography.index("commune_code") - 1, 1)]  # district, or the commune itself
            siblings = {d: g["commune_code"].unique().sort().to_list()
                        for (d,), g in fr.partition_by(above, as_dict=True).items()}
            info = {"province_code": code, "province_name": name, "name_en": name_en,
                    "other_batch_ids": prev_ids or [f"{year % 100}-00-000001"], "sibling_communes": siblings}
            # citizens: one batch file per province
            prng = np.random.default_rng([seed, 1, k])
            batch = citizen_batch(m, code, int(size_cit[k]), sample_by[(code,)], population, prng)
            kinds = defects.CITIZEN if prev_ids else [d for d in defects.CITIZEN if "other_batch" not in d[0].kind]
            batch, recs = defects.inject(batch, info, kinds, DEFECT_RATE["citizen"], k * 3, prng)
            fmt = FORMATS[int(formats[k])]
            path = out / "citizen" / f"sipas{year}_{code}_{_slug(name)}.{EXTENSION[fmt]}"
            write_table(batch.rename(heads["citizen"]), path, fmt)
            rel = path.relative_to(out).as_posix()
            files.append({"path": rel, "source": "citizen", "format": fmt, "rows": batch.height})
            defect_rows += [_record(rel, "citizen", r, 0) for r in recs]
            prev_ids = batch["form_id"][:2].to_list()
            # officials: one Kobo export, written province by province
            orng = np.random.default_rng([seed, 2, k])
            obatch = official_batch(m, code, int(size_off[k]), phi_by[code], orng)
            obatch, orecs = defects.inject(obatch, info, defects.OFFICIAL, DEFECT_RATE["official"], k, orng)
            obatch = obatch.rename(heads["official"]).with_columns(
                pl.lit(None, pl.Utf8).alias("_status"), (pl.int_range(pl.len()) + off_rows + 1).cast(pl.Utf8).alias("_index"))
            off_file.write(obatch.write_csv(include_header=off_rows == 0, line_terminator="\r\n").encode("utf-8"))
            defect_rows += [_record(off_path.relative_to(out).as_posix(), "official", r, off_rows) for r in orecs]
            off_rows += obatch.height
    files.append({"path": off_path.relative_to(out).as_posix(), "source": "official", "format": "csv-utf8-bom",
                  "rows": off_rows})
    files.append(_write_appraisal(m, levels, out))
    for f in files:
        f["sha256"] = sha256_file(out / f["path"])
    sample.write_csv(out / "truth" / "sample.csv", float_precision=8)
    series = comparable_truth(m, seed, design, tree)
    if series is not None:
        series.write_csv(out / "truth" / "comparable.csv", float_precision=6)
    return _write_truth(m, out, seed, scale, design, targets, truth, tree, levels, par_totals, files, defect_rows)


def _record(path: str, source: str, r: dict, offset: int) -> dict:
    """A defect as the manifest lists it: file row as a person counts it (header = row 1)."""
    copy_of = None if r["copy_of"] is None else offset + r["copy_of"] + 2
    return {"file": path, "source": source, "row": offset + r["batch_row"] + 2, "kind": r["kind"],
            "action": r["action"], "rule": r["rule"], "column": r["column"], "value": r["value"],
            "duplicate_of_row": copy_of}


def _write_appraisal(m: Methodology, levels: pl.DataFrame, out: Path) -> dict:
    subs = m.par_subcriteria.select("subcriterion_id", "label_vi", "max_points")
    # the scoring software lists all sub-criteria; survey ones carry no appraisal points
    grid = m.provinces.select("province_code", "name_vi").join(subs, how="cross")
    table = (grid.join(levels.select("province_code", "subcriterion_id", "self", "appraised"),
                       on=["province_code", "subcriterion_id"], how="left")
             .sort("province_code", "subcriterion_id")
             .select(pl.col("province_code").alias("Mã tỉnh"), pl.col("name_vi").alias("Tỉnh"),
                     pl.col("subcriterion_id").alias("Mã TCTP"), pl.col("label_vi").alias("Tên tiêu chí thành phần"),
                     pl.col("max_points").alias("Điểm tối đa"), pl.col("self").alias("Điểm tự đánh giá"),
                     pl.col("appraised").alias("Điểm thẩm định")))
    path = out / "appraisal" / f"par{m.year}_appraisal_export.xlsx"
    write_xlsx(table.with_columns(pl.all().cast(pl.Utf8)), path, sheet="Diem tham dinh")
    return {"path": path.relative_to(out).as_posix(), "source": "appraisal", "format": "xlsx", "rows": table.height}


def _write_truth(m, out, seed, scale, design, targets, truth, tree, levels, par_totals, files, defect_rows) -> dict:
    t = out / "truth"
    wide = tree.pivot(on="node", index="province_code", values="value")
    provinces = (targets.select("province_code", "region_code", pl.col("sipas").alias("sipas_target"),
                                pl.col("par").alias("par_target"))
                 .join(wide.rename({"SIPAS": "sipas", "policy": "sipas_policy", "service": "sipas_service"})
                       .select("province_code", "sipas", "sipas_policy", "sipas_service"), on="province_code")
                 .join(par_totals, on="province_code").sort("province_code"))
    provinces.write_csv(t / "provinces.csv", float_precision=6)
    truth.write_csv(t / "indicators.csv", float_precision=6)
    tree.write_csv(t / "tree.csv", float_precision=6)
    levels.write_csv(t / "par_inputs.csv", float_precision=6)
    dfr = pl.DataFrame(defect_rows, schema={"file": pl.Utf8, "source": pl.Utf8, "row": pl.Int64, "kind": pl.Utf8,
                                            "action": pl.Utf8, "rule": pl.Utf8, "column": pl.Utf8,
                                            "value": pl.Utf8, "duplicate_of_row": pl.Int64})
    dfr.write_csv(t / "defects.csv")
    counts = {s: sum(f["rows"] for f in files if f["source"] == s) for s in ("citizen", "official", "appraisal")}
    manifest = {
        "year": m.year, "seed": seed, "scale": scale, "methodology_hash": m.content_hash,
        "rows": counts, "files": files,
        "design": {"file": "truth/design.json", "sample": "truth/sample.csv"} | design.record(),
        "defects": {"file": "truth/defects.csv", "total": dfr.height,
                    "by_kind": dict(sorted(dfr.group_by("kind").len().iter_rows())),
                    "by_action": dict(sorted(dfr.group_by("action").len().iter_rows()))},
        "truth": {"provinces": "truth/provinces.csv", "indicators": "truth/indicators.csv",
                  "tree": "truth/tree.csv", "par_inputs": "truth/par_inputs.csv",
                  **({"comparable": "truth/comparable.csv"} if (t / "comparable.csv").is_file() else {}),
                  "national_mean": {"sipas": round(float(provinces["sipas"].mean()), 4),
                                    "par": round(float(provinces["par"].mean()), 4)}},
    }
    (t / "design.json").write_text(json.dumps(design.record(), indent=2) + "\n", encoding="utf-8")
    (t / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest
