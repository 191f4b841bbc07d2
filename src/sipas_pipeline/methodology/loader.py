"""Read a year's methodology files into one checked `Methodology` object."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from sipas_pipeline.errors import MethodologyError
from sipas_pipeline.paths import schemas_root

SOURCES = ("citizen", "official", "appraisal")
LONELY_PSU_RULES = ("adjust", "fail")
RANK_VARIANCES = ("direct", "stabilised")  # the variances the rank confidence sets are built from


@dataclass(frozen=True)
class Design:
    """The citizens' survey design and the uncertainty settings (methodology.yaml `design:`)."""

    strata: str
    psu: str
    weight: str
    lonely_psu: str = "adjust"
    small_sample: int = 30
    confidence: float = 0.95
    rank_interval: float = 0.90
    rank_draws: int = 4000
    rank_seed: int = 0
    rank_set_draws: int = 1000
    official_cluster: str = "agency_code"  # officials' form field naming their agency: their PSU when the export has it
    rank_variance: str = "direct"

    @classmethod
    def from_meta(cls, block: dict[str, Any]) -> Design:
        """The `design:` block as a Design (types coerced; checked by the methodology checks)."""
        return cls(strata=str(block["strata"]), psu=str(block["psu"]), weight=str(block["weight"]),
                   lonely_psu=str(block.get("lonely_psu", "adjust")), small_sample=int(block.get("small_sample", 30)),
                   confidence=float(block.get("confidence", 0.95)), rank_interval=float(block.get("rank_interval", 0.90)),
                   rank_draws=int(block.get("rank_draws", 4000)), rank_seed=int(block.get("rank_seed", 0)),
                   rank_set_draws=int(block.get("rank_set_draws", 1000)),
                   official_cluster=str(block.get("official_cluster", "agency_code")),
                   rank_variance=str(block.get("rank_variance", "direct")))


@dataclass(frozen=True)
class Methodology:
    """Everything that belongs to one survey year, as tables."""

    year: int
    root: Path
    meta: dict[str, Any]
    forms: dict[str, pl.DataFrame]
    code_lists: pl.DataFrame
    indicators: pl.DataFrame
    tree: pl.DataFrame  # element/policy group -> part, with weights and labels
    parts: pl.DataFrame
    par_fields: pl.DataFrame
    par_criteria: pl.DataFrame
    par_subcriteria: pl.DataFrame
    provinces: pl.DataFrame
    regions: pl.DataFrame
    province_aliases: pl.DataFrame
    sampling_frame: pl.DataFrame  # the year's sample: the frame's villages with in_sample = yes
    population_frame: pl.DataFrame  # every commune and village the sample was drawn from
    content_hash: str
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    unit_mapping: pl.DataFrame | None = None  # previous-year province -> this year's unit (`comparable:` block)
    official_units: dict[str, pl.DataFrame] = field(default_factory=dict)  # `frame:` lists (districts, communes, ...)

    @property
    def geography(self) -> list[str]:
        """The frame's and forms' geography columns, top down (`geography: levels` in methodology.yaml)."""
        return [str(level) for level in self.meta.get("geography", {}).get("levels", [])]

    @property
    def comparable(self) -> dict[str, Any]:
        """The `comparable:` block (previous year, mapping, PAR rule), empty when the year has none."""
        return dict(self.meta.get("comparable") or {})

    @property
    def frame_source(self) -> dict[str, Any]:
        """Where the frame's official lists come from (`frame.source`: package, version, SHA-256), empty if none."""
        return dict((self.meta.get("frame") or {}).get("source") or {})

    @property
    def version(self) -> str:
        return str(self.meta.get("version", self.year))

    @property
    def group_bounds(self) -> list[tuple[str, float]]:
        return [(g["group"], float(g["min"])) for g in self.meta["par"]["groups"]]

    @property
    def completeness(self) -> dict[str, dict[str, Any]]:
        """What a province needs before it is published (the checked `completeness` block)."""
        return self.meta["completeness"]

    @property
    def design(self) -> Design:
        """The survey design and uncertainty settings (`design:` in methodology.yaml)."""
        return Design.from_meta(self.meta["design"])

    @property
    def rank_decimals(self) -> int:
        return int(self.meta.get("ranking", {}).get("decimals", 2))

    def published(self) -> pl.DataFrame | None:
        """The published figures kept beside the methodology (`published.csv`), if any."""
        path = self.root / "published.csv"
        if not path.is_file():
            return None
        return pl.read_csv(path, comment_prefix="#",
                           schema_overrides={"unit": pl.Utf8, "value": pl.Float64, "rank": pl.Int64})

    def tile_map(self) -> pl.DataFrame | None:
        """The units' places on the release's tile map (`tile_map.csv`: province_code, row, col, short), if any."""
        path = self.root / "tile_map.csv"
        if not path.is_file():
            return None
        return pl.read_csv(path, comment_prefix="#", schema_overrides={"province_code": pl.Utf8, "row": pl.Int64,
                                                                        "col": pl.Int64, "short": pl.Utf8})

    def codes(self, list_id: str) -> list[int]:
        """The codes of a code list."""
        return self.code_lists.filter(pl.col("list_id") == list_id)["code"].to_list()

    def summary(self) -> dict[str, Any]:
        """Counts computed from the files, for people and for `--json`."""
        ind = self.indicators.group_by("type").len()
        counts = dict(zip(ind["type"], ind["len"], strict=True))
        subs = self.par_subcriteria
        appraisal = subs.filter(pl.col("kind") == "appraisal")["max_points"].sum()
        survey = subs.filter(pl.col("kind") != "appraisal")["max_points"].sum()
        return {
            "year": self.year,
            "version": self.version,
            "content_hash": self.content_hash,
            "indicators": {t: counts.get(t, 0) for t in ("assessment", "satisfaction", "expectation")},
            "par": {
                "fields": self.par_fields.height,
                "criteria": self.par_criteria.height,
                "subcriteria": subs.height,
                "appraisal_points": round(float(appraisal), 6),
                "survey_points": round(float(survey), 6),
            },
            "units": self.provinces.height,
            "regions": self.regions.height,
            "sampling_frame": {_plural(level): self.sampling_frame[level].n_unique()
                               for level in [*self.geography[1:], "psu"] if level in self.sampling_frame.columns},
            "frame": self.frame_summary(),
            "questions": {s: f.filter(pl.col("pii") == "no").height for s, f in self.forms.items()},
        }


    def frame_summary(self) -> dict[str, Any]:
        """The population frame: units of the official lists (`frame:` block), villages, the lists' source."""
        units = {name: table.height for name, table in self.official_units.items() if name in ("districts", "communes")}
        return units | {"villages": self.population_frame.height} | (
            {"source": self.frame_source} if self.frame_source else {})


def _plural(level: str) -> str:
    """`commune_code` -> `communes`: how a geography level is counted in summaries and expected_counts."""
    return level.removesuffix("_code") + "s"


def _read_csv(path: Path) -> pl.DataFrame:
    """A methodology CSV: `#` comment lines, every column read as text."""
    return pl.read_csv(path, comment_prefix="#", infer_schema=False).with_columns(
        pl.all().str.strip_chars().fill_null("")
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(meta: dict[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    parts, nodes = [], []
    for part in meta["sipas"]["parts"]:
        parts.append({k: part[k] for k in ("id", "label_vi", "label_en")} | {"weight": float(part["weight"])})
        for child in part["children"]:
            nodes.append(
                {"element": child["id"], "part": part["id"], "weight": float(child["weight"]),
                 "label_vi": child["label_vi"], "label_en": child["label_en"]}
            )
    return pl.DataFrame(parts).rename({"id": "part"}), pl.DataFrame(nodes)


def read_methodology(root: Path) -> Methodology:
    """Read the files of one year's folder without checking them (see `load_methodology`)."""
    meta_path = root / "methodology.yaml"
    if not meta_path.is_file():
        raise MethodologyError([f"{meta_path}: missing: every year needs methodology.yaml"])
    try:
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MethodologyError([f"{meta_path}: not valid YAML: {exc}"]) from exc
    files = meta.get("files", {})
    missing = [f"{root / name}: missing (named in methodology.yaml files.{key})"
               for key, name in files.items() if not (root / name).is_file()]
    if missing:
        raise MethodologyError(missing)
    tables = {}
    for key, name in files.items():
        try:
            tables[key] = _read_csv(root / name)
        except Exception as exc:  # a malformed CSV
            raise MethodologyError([f"{root / name}: cannot be read as CSV: {exc}"]) from exc
    hashes = {p.name: _sha256(p) for p in sorted(root.iterdir()) if p.is_file()}
    digest = hashlib.sha256("".join(f"{n}:{h}\n" for n, h in hashes.items()).encode()).hexdigest()
    parts, tree = _tree(meta)
    fields = pl.DataFrame(meta["par"]["fields"]).with_columns(
        pl.col("field_id").cast(pl.Int64), pl.col("max_points").cast(pl.Float64)
    )
    try:
        code_lists = tables["code_lists"].with_columns(pl.col("code").cast(pl.Int64))
        indicators = tables["indicators"].with_columns(pl.col("weight").cast(pl.Float64),
                                                       pl.col("direction").cast(pl.Int64))
        subs = tables["par_subcriteria"].with_columns(pl.col("max_points").cast(pl.Float64),
                                                      pl.col("field_id").cast(pl.Int64))
        crits = tables["par_criteria"].with_columns(pl.col("field_id").cast(pl.Int64))
        frame = tables["sampling_frame"].with_columns(pl.col("population").cast(pl.Int64))
    except pl.exceptions.PolarsError as exc:
        raise MethodologyError([f"{root}: a numeric column holds text: {exc}"]) from exc
    return Methodology(
        year=int(meta["year"]),
        root=root,
        meta=meta,
        forms={s: tables[f"{s}_form"] for s in SOURCES},
        code_lists=code_lists,
        indicators=indicators,
        tree=tree,
        parts=parts,
        par_fields=fields,
        par_criteria=crits,
        par_subcriteria=subs,
        provinces=tables["provinces"],
        regions=pl.DataFrame(meta["regions"]),
        province_aliases=tables["province_aliases"],
        sampling_frame=frame.filter(pl.col("in_sample") == "yes") if "in_sample" in frame.columns else frame,
        population_frame=frame,
        content_hash=digest,
        files=hashes,
        unit_mapping=tables.get((meta.get("comparable") or {}).get("mapping", "unit_mapping")),
        official_units={name: tables[key] for name, key in (meta.get("frame") or {}).items()
                        if name != "source" and key in tables},
    )


def load_methodology(year: int, root: Path | None = None) -> Methodology:
    """Read and check `schemas/<year>/`; raise MethodologyError naming every broken rule."""
    from sipas_pipeline.methodology.checks import check_methodology

    folder = (root or schemas_root()) / str(year)
    if not folder.is_dir():
        from sipas_pipeline.methodology.scaffold import available_years

        years = available_years(root)
        latest = max((y for y in years if y < year), default=max(years, default=None))
        add = f"; add one with `sipas methodology init --year {year} --from {latest}`" if latest else ""
        raise MethodologyError([f"{folder}: no methodology folder for year {year} (years with one: "
                                f"{', '.join(map(str, years)) or 'none'}){add}"])
    return _cached(folder.resolve(), _folder_stamp(folder), check_methodology)


def _folder_stamp(folder: Path) -> tuple:
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.iterdir()))


@cache
def _cached(folder: Path, stamp: tuple, checker) -> Methodology:
    m = read_methodology(folder)
    problems = checker(m)
    if problems:
        raise MethodologyError(problems)
    return m
