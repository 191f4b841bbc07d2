"""The inbox and the batches taken from it.

A batch is one export file (the formats the annual readers accept) under `data/<year>/incoming/<source>/`, at
any depth (e.g. one folder per day of arrival), or handed to `sipas fieldwork submit`. It is taken once, keyed on
the SHA-256 of the bytes read (copied into the season while hashed): the same bytes again are recorded as a
duplicate and count nothing. Its batch name is the file name without its extension; a file with the name of a
batch already taken but other bytes is that batch re-sent (with fixes): the earlier version's forms leave the
season and the new version's come in.

Validation is the annual run's: the same reader and bronze normalisation (`ingest.to_bronze`), the same
Pandera rules (`validate.validate_source`). The rules that look across rows (a key delivered twice) see the
earlier batches' rows with the keys this batch brings, exactly as the annual run sees all of them at once: an
exact later copy is quarantined (the first stays valid), a key with different answers has every copy
quarantined, including an earlier batch's form taken as valid before (it leaves the season's sums again).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from sipas_pipeline.errors import InputError
from sipas_pipeline.fieldwork.progress import add_tallies, retracted_tally, tally
from sipas_pipeline.fieldwork.season import FIELDWORK_SOURCES, Season, statistics_of, write_beside, write_frame
from sipas_pipeline.indicators import add_cells
from sipas_pipeline.ingest.bronze import header_score, source_fields, to_bronze
from sipas_pipeline.ingest.normalize import province_lookup
from sipas_pipeline.ingest.readers import SUFFIXES, UnreadableFile, read_table
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.validate import reason_counts, validate_source

TEAM = re.compile(r"^\d{8}T\d{4,6}_(?P<team>[^_]+)_")  # <YYYYMMDDTHHMM>_<team>_<rest>: the synthetic and e-survey names


def team_of(name: str) -> str:
    """The field team of a batch from its file name (`20240715T0930_team-01_b0001.csv` -> `team-01`), else the
    name without its extension."""
    hit = TEAM.match(name)
    return hit["team"] if hit else Path(name).stem


def pending(m: Methodology, season: Season, inbox: Path) -> list[tuple[str, Path]]:
    """The inbox's files not seen yet, oldest first (modification time, then path): a file is seen once `take` has
    recorded it (its path, size and modification time), whether its bytes counted or were a duplicate. Files whose
    name starts with a dot are not read: a sender writes `.name.tmp` and renames it to `name` when it is complete
    (as `submit` and `split.replay` do), so a batch is never taken half-written."""
    known = {(e.get("path"), e.get("size"), e.get("mtime_ns")) for e in season.ledger()}  # files taken, unchanged
    found = []
    for source in FIELDWORK_SOURCES:
        folder = Path(inbox) / m.meta["sources"][source]["folder"]
        if not folder.is_dir():
            continue
        for p in folder.rglob("*"):
            if p.is_file() and not p.name.startswith((".", "~$")) and p.suffix.lower() in SUFFIXES:
                found.append((p.stat().st_mtime_ns, p.relative_to(inbox).as_posix(), source, p))
    out = []
    for _, _, source, p in sorted(found):
        st = p.stat()
        if (str(p.resolve()), st.st_size, st.st_mtime_ns) not in known:
            out.append((source, p))  # new bytes, or bytes taken before under another name: `take` says which
    return out


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def take(m: Methodology, season: Season, source: str, path: Path, now: datetime | None = None) -> dict[str, Any]:
    """Take one batch into the season; return its ledger entry (status taken, duplicate or unreadable, rows read /
    valid / quarantined, the reasons, what it superseded or retracted)."""
    if source not in FIELDWORK_SOURCES:
        raise InputError(f"source {source!r}: fieldwork takes {', '.join(FIELDWORK_SOURCES)} batches")
    st = Path(path).stat()
    data = Path(path).read_bytes()  # the bytes hashed are the bytes read
    sha = sha256_bytes(data)
    ledger = season.ledger()
    entry: dict[str, Any] = {"seq": len(ledger) + 1, "source": source, "file": Path(path).name,
                             "batch_id": Path(path).stem, "team": team_of(Path(path).name), "sha256": sha,
                             "taken_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
                             "status": "taken", "read": 0, "valid": 0, "quarantined": 0, "reasons": {},
                             "fieldwork_date": None, "supersedes": None, "retracted": [],
                             "path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    same = next((e for e in ledger if e["sha256"] == sha), None)
    if same is not None:
        entry |= {"status": "duplicate", "same_as": same["seq"],
                  "note": f"the same bytes as batch {same['batch_id']} (#{same['seq']}): not counted again"}
        season.save_ledger([*ledger, entry])
        return entry
    copy = season.received(source, sha, Path(path).name)
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(data)
    rel = f"{m.meta['sources'][source]['folder']}/{Path(path).name}"  # as the annual run names a file of its raw year
    try:
        table = read_table(copy, score=header_score(source_fields(m, source)))
        bronze, _ = to_bronze(table, m, source, rel, sha, province_lookup(m))
    except UnreadableFile as exc:
        entry |= {"status": "unreadable", "note": exc.reason}
        season.save_ledger([*ledger, entry])
        return entry
    cells, official, tallies = season.cells(m), season.official(m), season.tallies()
    # a re-sent batch: the version taken before leaves the season
    earlier = next((e for e in ledger if e["status"] == "taken" and e["source"] == source
                    and e["batch_id"] == entry["batch_id"]), None)
    if earlier is not None:
        old = pl.read_parquet(season.version("silver", source, earlier["batch_id"], earlier["sha256"]))
        cells, official = subtract(m, source, cells, official, old)
        old_rows = pl.read_parquet(season.version("bronze", source, earlier["batch_id"], earlier["sha256"]))
        tallies = add_tallies(tallies, tally(source, old_rows, old, -1))
        earlier |= {"status": "superseded", "superseded_by": entry["seq"]}
        entry["supersedes"] = earlier["seq"]
        drop_keys(season, source, earlier, ledger)
    involved = earlier_copies(m, season, source, bronze, ledger)
    result = validate_source(m, source, pl.concat([involved, bronze], how="vertical_relaxed"))
    mine = pl.col("source_file") == rel
    silver, quarantine = result.silver.filter(mine), result.quarantine.filter(mine)
    retracted = retract(m, season, source, ledger, result.quarantine.filter(~mine)) if involved.height else []
    for e, forms in retracted:
        cells, official = subtract(m, source, cells, official, forms)
        tallies = add_tallies(tallies, retracted_tally(source, forms))
        entry["retracted"].append({"seq": e["seq"], "batch_id": e["batch_id"], "rows": forms["source_row"].to_list()})
    for kind, frame in (("bronze", bronze), ("silver", silver), ("quarantine", quarantine)):
        write_frame(season.version(kind, source, entry["batch_id"], sha), frame)
    add_keys(m, season, source, bronze, entry, ledger)
    added = statistics_of(m, source, silver)
    if source == "citizen":
        cells = add_cells(cells, added)
    else:
        official = official + added
    date_field = m.meta["sources"][source].get("date_field")
    last = silver[date_field].max() if date_field and silver.height else None
    entry |= {"read": bronze.height, "valid": silver.height, "quarantined": quarantine.height,
              "reasons": reason_counts(quarantine), "fieldwork_date": str(last) if last is not None else None}
    if bronze.height != silver.height + quarantine.height:
        raise AssertionError(f"{rel}: rows read != valid + quarantined")
    tallies = add_tallies(tallies, tally(source, bronze, silver))
    entry["provinces"] = bronze["province_code"].drop_nulls().unique().sort().to_list()
    season.save_state(cells, official, tallies)
    season.save_ledger([*ledger, entry])
    return entry


def subtract(m: Methodology, source: str, cells: pl.DataFrame, official: Any, forms: pl.DataFrame) -> tuple[Any, Any]:
    """The season's statistics without `forms` (valid forms taken before)."""
    if source == "citizen":
        return add_cells(cells, statistics_of(m, source, forms), sign=[1, -1]), official
    return cells, official - statistics_of(m, source, forms)


def key_columns(m: Methodology, source: str) -> list[str]:
    return list(m.meta["sources"][source]["key"])


def read_keys(season: Season, source: str, ledger: list[dict[str, Any]]) -> pl.DataFrame | None:
    """The season's key index of a source: (key..., source_row, seq of the version that holds it); an index written
    before it named versions by seq (batch_id, sha256 per row) is read as one."""
    path = season.keys(source)
    if not path.is_file():
        return None
    index = pl.read_parquet(path)
    if "seq" in index.columns:
        return index
    seqs = pl.DataFrame([(e["batch_id"], e["sha256"], e["seq"]) for e in ledger],
                        schema={"batch_id": pl.Utf8, "sha256": pl.Utf8, "seq": pl.Int32}, orient="row")
    return index.join(seqs, on=["batch_id", "sha256"], how="inner").drop("batch_id", "sha256")


def write_keys(season: Season, source: str, index: pl.DataFrame) -> None:
    """The key index rewritten (lz4: a third of zstd's time; the index grows by one short row per form)."""
    write_beside(season.keys(source), lambda p: index.write_parquet(p, compression="lz4"))


def earlier_copies(m: Methodology, season: Season, source: str, bronze: pl.DataFrame,
                   ledger: list[dict[str, Any]]) -> pl.DataFrame:
    """The bronze rows of the active earlier batches that share a key with `bronze` (usually none)."""
    key = key_columns(m, source)
    index = read_keys(season, source, ledger)
    empty = bronze.clear()
    if index is None:
        return empty
    index = index.join(bronze.select(key).drop_nulls().unique(), on=key, how="semi")
    if index.height == 0:
        return empty
    by_seq = {e["seq"]: e for e in ledger}
    rows = []
    for (seq,), g in index.partition_by("seq", as_dict=True).items():
        e = by_seq[seq]
        old = pl.read_parquet(season.version("bronze", source, e["batch_id"], e["sha256"]))
        rows.append(old.join(g.select("source_row"), on="source_row", how="semi"))
    return pl.concat(rows, how="vertical_relaxed")


def retract(m: Methodology, season: Season, source: str, ledger: list[dict[str, Any]],
            quarantined: pl.DataFrame) -> list[tuple[dict[str, Any], pl.DataFrame]]:
    """Earlier valid forms that the new batch's copies quarantine (a key with different answers): moved from their
    batch's silver to its quarantine with their reasons, their batch's counts updated; returns (entry, forms)."""
    out = []
    by_file = {f"{m.meta['sources'][source]['folder']}/{e['file']}": e for e in ledger
               if e["status"] == "taken" and e["source"] == source}
    for (source_file,), reasons in quarantined.partition_by("source_file", as_dict=True).items():
        e = by_file[source_file]
        silver_path = season.version("silver", source, e["batch_id"], e["sha256"])
        silver = pl.read_parquet(silver_path)
        gone = silver.join(reasons.select("source_row"), on="source_row", how="semi")
        if gone.height == 0:  # quarantined before for reasons of their own
            continue
        q_path = season.version("quarantine", source, e["batch_id"], e["sha256"])
        before = pl.read_parquet(q_path)
        moved = reasons.join(gone.select("source_row"), on="source_row", how="semi").select(before.columns)
        write_frame(q_path, pl.concat([before, moved], how="vertical_relaxed"))
        write_frame(silver_path, silver.join(gone.select("source_row"), on="source_row", how="anti"))
        e["valid"] -= gone.height
        e["quarantined"] += gone.height
        e["reasons"] = reason_counts(pl.concat([before, moved], how="vertical_relaxed"))
        out.append((e, gone))
    return out


def add_keys(m: Methodology, season: Season, source: str, bronze: pl.DataFrame, entry: dict[str, Any],
             ledger: list[dict[str, Any]]) -> None:
    """Record the keyed rows of a taken version in the season's key index."""
    key = key_columns(m, source)
    new = bronze.select(*key, "source_row").drop_nulls(key).with_columns(pl.lit(entry["seq"], pl.Int32).alias("seq"))
    index = read_keys(season, source, ledger)
    write_keys(season, source, pl.concat([index, new], how="vertical_relaxed") if index is not None else new)


def drop_keys(season: Season, source: str, entry: dict[str, Any], ledger: list[dict[str, Any]]) -> None:
    """Remove a superseded version's rows from the key index."""
    index = read_keys(season, source, ledger)
    if index is not None:
        write_keys(season, source, index.filter(pl.col("seq") != entry["seq"]))
