"""Content hashes that fingerprint inputs."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import polars as pl


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks; a file already hashed by this process, unchanged since
    (same inode, size and modification time), is not read again (the run's key and ingest share it)."""
    st = Path(path).stat()
    return _sha256(str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


@cache
def _sha256(path: str, inode: int, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def frames_sha256(frames: dict[str, pl.DataFrame]) -> str:
    """SHA-256 over named tables' content in a canonical form: tables by name, columns by name, rows sorted
    by every column, each table as CSV with floats written exactly (shortest round-trip digits) and nulls
    marked. Equal content gives an equal hash whatever the row order, column order or chunking; a
    difference in the last bit of one float gives another hash."""
    digest = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        cols = sorted(frame.columns)
        canonical = frame.select(cols).sort(cols, nulls_last=True, maintain_order=True) if cols else frame
        digest.update(name.encode() + b"\n")
        digest.update(canonical.write_csv(null_value="\\N").encode())
    return digest.hexdigest()


@cache
def code_fingerprint() -> str:
    """SHA-256 over the package's own source files: a code change invalidates cached stage results."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\n" + path.read_bytes())
    return digest.hexdigest()
