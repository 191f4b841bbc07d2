"""`sipas`: the command line, a thin face over the pipeline's functions and the Prefect flow."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sipas_pipeline.methodology import MethodologyError, load_methodology

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="SIPAS and PAR INDEX pipeline (Chỉ số SIPAS và PAR INDEX).")
console = Console()
err = Console(stderr=True)

YearOpt = Annotated[int, typer.Option("--year", help="Survey year (năm khảo sát).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def fail(message: str, code: int = 2) -> None:
    """Print a user-facing error (no traceback) and exit."""
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def _methodology(year: int):
    try:
        return load_methodology(year)
    except MethodologyError as exc:
        fail(str(exc))


@app.command()
def methodology(year: YearOpt = 2024, as_json: JsonOpt = False) -> None:
    """Check a year's methodology files and print what they hold."""
    m = _methodology(year)
    s = m.summary()
    if as_json:
        print(json.dumps(s, ensure_ascii=False))
        return
    t = Table(title=f"Methodology {year} (phương pháp luận) — version {s['version']}")
    t.add_column("what")
    t.add_column("count", justify="right")
    for k, v in s["indicators"].items():
        t.add_row(f"{k} indicators", str(v))
    for k, v in s["par"].items():
        t.add_row(f"PAR {k}", f"{v:g}")
    t.add_row("units (tỉnh/thành phố)", str(s["units"]))
    t.add_row("regions (vùng)", str(s["regions"]))
    for k, v in s["sampling_frame"].items():
        t.add_row(f"sample {k}", str(v))
    console.print(t)
    console.print(f"All checks passed. Content hash {s['content_hash'][:16]}…  ({m.root})")


@app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the raw year into.")],
    year: YearOpt = 2024,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives identical files.")] = 7,
    scale: Annotated[float, typer.Option(help="1 = a full-size year; 100 for benchmarks.")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic survey year: raw exports, ground truth and the defect manifest."""
    from sipas_pipeline.synth import generate_year

    if scale <= 0:
        fail("--scale must be positive")
    _methodology(year)
    manifest = generate_year(year, out, seed=seed, scale=scale)
    if as_json:
        print(json.dumps({k: manifest[k] for k in ("year", "seed", "scale", "rows", "defects")}, ensure_ascii=False))
        return
    console.print(f"Wrote a synthetic {year} year to {out} (seed {seed}, scale {scale:g}):")
    for source, n in manifest["rows"].items():
        console.print(f"  {source:<10} {n:>9,} rows")
    d = manifest["defects"]
    console.print(f"  defects    {d['total']:>9,} ({d['by_action']}) listed in {out / d['file']}")


def main() -> None:
    """Entry point of the `sipas` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
