"""A DuckDB file is read whole once per process while no one writes it (`duckdb_file.verify`, called by `sipas
run` before its flow, by the flow as it starts and by publish before its copy); a write of any kind since, or
another file at the same path, is read again, so damage is still found."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipas_pipeline.duckdb_file import connect, verify
from sipas_pipeline.errors import DatabaseError


class Counting:
    """A connection that counts the queries run through it."""

    def __init__(self, con) -> None:
        self.con, self.queries = con, 0

    def execute(self, *args):
        self.queries += 1
        return self.con.execute(*args)


def made(path: Path) -> Path:
    con = connect(path)
    con.execute("CREATE TABLE t AS SELECT range AS i, range * 2 AS j FROM range(200000)")
    con.execute("CHECKPOINT")
    con.close()
    return path


def verified(db: Path) -> int:
    """Verify `db` read-only; the number of queries that took."""
    con = connect(db, read_only=True)
    try:
        counting = Counting(con)
        verify(counting, db)
        return counting.queries
    finally:
        con.close()


def test_an_unchanged_file_is_read_once_and_a_written_one_again(tmp_path):
    db = made(tmp_path / "a.duckdb")
    assert verified(db) == 2  # the tables' columns, then every column of its one table
    assert verified(db) == 0  # nothing written since: not read again
    con = connect(db)
    con.execute("INSERT INTO t VALUES (-1, -2)")
    con.close()
    assert verified(db) == 2  # written: read again
    other = made(tmp_path / "b.duckdb")
    db.unlink()
    other.rename(db)  # another file at the same path
    assert verified(db) == 2


def test_damage_after_a_verification_is_found(tmp_path):
    db = made(tmp_path / "a.duckdb")
    assert verified(db) == 2
    data = bytearray(db.read_bytes())
    data[16384:] = bytes(len(data) - 16384)  # past the headers: blocks no longer matching their checksums, same size
    db.write_bytes(bytes(data))
    with pytest.raises(DatabaseError, match="damaged DuckDB file"):
        verified(db)
