"""`sipas methodology init`: the next year's methodology folder, copied from an earlier year for the survey unit
to edit (year fields updated, the copy checked like any year)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from sipas_pipeline.errors import InputError, StorageError, storage_error
from sipas_pipeline.paths import schemas_root

YEAR_LINE = re.compile(r"^(\s*)(year|rank_seed):(\s*)\d{4}\b", re.M)


def available_years(root: Path | None = None) -> list[int]:
    """The years that have a methodology folder (a `<year>/methodology.yaml`) under the schemas root."""
    root = root or schemas_root()
    return sorted(int(p.parent.name) for p in root.glob("*/methodology.yaml") if p.parent.name.isdigit())


def _updated(text: str, old: int, new: int) -> str:
    """methodology.yaml of `old` rewritten for `new`: year, rank seed, version, titles and survey window; the
    `comparable` block (units changed since the year before `old`) and its mapping file are dropped: the new
    year has the units of `old` unless the survey unit says otherwise."""
    text = YEAR_LINE.sub(lambda mt: f"{mt.group(1)}{mt.group(2)}:{mt.group(3)}{new}", text)
    text = re.sub(r'^version:.*$', f'version: "{new}.1"', text, flags=re.M)
    text = re.sub(r"^(title_vi|title_en|survey_window):.*$", lambda mt: mt.group(0).replace(str(old), str(new)), text, flags=re.M)
    text = re.sub(r"^  unit_mapping:.*\n", "", text, flags=re.M)
    # the comparable block and the comment lines right above it
    text = re.sub(r"(?:^#[^\n]*\n)*^comparable:\n(?:^[ ]+[^\n]*\n)*", "", text, flags=re.M)
    return text


def init_year(year: int, from_year: int, root: Path | None = None) -> Path:
    """Copy `schemas/<from_year>/` to `schemas/<year>/` with the year fields updated, then check it. Never
    overwrites: an existing folder is an InputError."""
    from sipas_pipeline.methodology.loader import load_methodology

    root = root or schemas_root()
    src, dst = root / str(from_year), root / str(year)
    if not (src / "methodology.yaml").is_file():
        years = ", ".join(map(str, available_years(root))) or "none"
        raise InputError(f"{src}: no methodology folder for year {from_year} (years with one: {years})")
    if dst.exists():
        raise InputError(f"{dst}: already exists: nothing overwritten (edit it, or remove it yourself)")
    load_methodology(from_year, root)  # copy only a folder that passes its checks
    partial = root / f".{year}.sipas-partial"  # copied whole beside it, then renamed: a failure leaves no half year
    shutil.rmtree(partial, ignore_errors=True)
    try:
        shutil.copytree(src, partial, ignore=shutil.ignore_patterns("unit_mapping.csv"))
        meta = partial / "methodology.yaml"
        meta.write_text(_updated(meta.read_text(encoding="utf-8"), from_year, year), encoding="utf-8")
        partial.rename(dst)
    except (OSError, shutil.Error) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        problem = storage_error(exc, root)  # a shutil.Error carries each file's OS message
        why = str(problem).rsplit(": ", 1)[-1] if problem else (getattr(exc, "strerror", None) or str(exc)).lower()
        raise StorageError(f"{dst}: cannot write the new methodology folder: {why}; nothing was left behind: "
                           "free space there and run again") from None
    load_methodology(year, root)
    return dst
