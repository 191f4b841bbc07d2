"""The DuckDB file itself: opening it (extensions are never installed or loaded), one-line errors that
name the path and the cause, the writers' lock file, the next file built beside the current one and
swapped in atomically, and the schema version with additive migration.

A writer never opens the current file for writing: it copies it to `<db>.sipas-next-<run id>`, publishes
into the copy in one transaction, checkpoints, closes and renames the copy over the current file
(`os.replace`). A reader holding the current file keeps its snapshot (the old inode) and sees the new
run when it opens the file again; a writer killed mid-publish leaves the current file as it was."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb

from sipas_pipeline.errors import DatabaseError, DatabaseLocked
from sipas_pipeline.locking import pid_alive, pid_lock
from sipas_pipeline.paths import schemas_root

# every connection the project opens: DuckDB never downloads or auto-loads an extension
CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
# a view column without its own COMMENT ON takes the comment of this table's column of the same name
VIEW_BASE = {"current_par_index": "par_totals"}
SCHEMA_VERSION = 2  # 1: the first published files (no schema_info); 2: schema_info, swap publishing
NEXT = ".sipas-next-"  # `<db>.sipas-next-<run id>`: the next file while a run publishes (ours to remove)
PREVIOUS = ".sipas-previous"  # `<db>.sipas-previous`: the file as it was before the last publish (the last good copy)
OS_CAUSES = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO)
HINTS = {errno.ENOSPC: "free space there or publish into another --db", errno.EDQUOT: "free space there or publish into "
         "another --db", errno.EROFS: "publish into a writable folder (--db)", errno.EACCES: "publish into a folder you "
         "can write (--db)", errno.EPERM: "publish into a folder you can write (--db)"}
DAMAGED = ("Corrupt database file", "Corrupted ", "Could not read enough bytes", "not a valid DuckDB database file")


def connect(db: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open `db` (or ':memory:') with extension install and auto-load off; a file DuckDB cannot open
    raises DatabaseError naming the path and the cause."""
    try:
        return duckdb.connect(str(db), read_only=read_only, config=CONFIG)
    except duckdb.Error as exc:
        raise database_error(Path(db), exc, "open") from None


def read_query(db: Path, sql: str, params: dict | list | None = None) -> list[tuple]:
    """Run one query on `db` opened read-only (as analysts do) and return its rows."""
    con = connect(db, read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    except duckdb.CatalogException as exc:
        raise DatabaseError(f"{db}: holds no sipas-pipeline results ({str(exc).splitlines()[0]})") from None
    except duckdb.Error as exc:
        raise database_error(Path(db), exc, "read") from None
    finally:
        con.close()


# --- one line per failure ---------------------------------------------------------------------------------------

def os_cause(exc: BaseException) -> tuple[str, int | None]:
    """The operating system's cause inside an OSError or a DuckDB I/O message, and its errno."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower(), exc.errno
    text = str(exc)
    for code in OS_CAUSES:
        if os.strerror(code) in text:
            return os.strerror(code).lower(), code
    return "", None


def describe(db: Path) -> str | None:
    """Why `db` cannot be a DuckDB file, judged from what it is and its first bytes (None: it may be one)."""
    if db.is_dir():
        return "is a folder, not a DuckDB file: give a file path with --db"
    if not db.exists():
        return None
    try:
        with db.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        return f"cannot be read: {os_cause(exc)[0]}"
    if not head:
        return "is an empty file, not a DuckDB file: give another --db (this file is left as it is)"
    if head.startswith(b"SQLite format 3\x00"):
        return "is a SQLite database, not a DuckDB file: give another --db (this file is left as it is)"
    if head[8:12] != b"DUCK":
        return "is not a DuckDB file: give another --db (this file is left as it is)"
    return None


def database_error(db: Path, exc: BaseException, doing: str) -> DatabaseError:
    """One line for a failure on the DuckDB file: the path, what failed and the true cause."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    lock = re.search(r"Conflicting lock is held in (.+?) \(PID (\d+)\)", text)
    if lock:
        return DatabaseLocked(f"{db}: open for writing in {lock.group(1)} (PID {lock.group(2)}); nothing was written: "
                              "close it there and run again (analysts: open the file with read_only=True)")
    cause, code = os_cause(exc)
    if cause:
        hint = HINTS.get(code, "")
        return DatabaseError(f"{db}: cannot {doing}: {cause}" + (f"; {hint}" if hint else ""))
    if str(db) != ":memory:" and (kind := describe(db)):
        return DatabaseError(f"{db}: {kind}")
    if any(s in text for s in DAMAGED):
        return DatabaseError(f"{db}: is a damaged DuckDB file ({first.removeprefix('IO Error: ')}): nothing was written "
                             f"to it; {restore_hint(db)}")
    return DatabaseError(f"{db}: cannot {doing}: {first}")


def restore_hint(db: Path) -> str:
    """How to get the last good copy of a damaged `db` back."""
    previous = previous_path(db)
    if previous.is_file():
        return (f"restore the last good copy (the file before the last publish) with `cp {previous} {db}`, or restore "
                "it from a backup, or publish into another --db")
    return "restore it from a backup or publish into another --db"


def previous_path(db: Path) -> Path:
    """`<db>.sipas-previous`: the file as it stood before the last publish (a hard link kept by the swap)."""
    return Path(f"{db}{PREVIOUS}")


def real_path(db: Path) -> Path:
    """`db` with symbolic links followed: a run publishes into the link's target (the link itself stays a link)."""
    db = Path(db)
    return Path(os.path.realpath(db)) if db.is_symlink() else db


VERIFIED: set[tuple] = set()  # the files (and write-ahead logs) `verify` read whole in this process, as they were


def file_state(db: Path) -> tuple:
    """What changes whenever `db` or its write-ahead log is written, replaced or touched: device, inode, size and
    the modification and change times (ns) of each (the change time no program can set back)."""
    def of(path: Path) -> tuple | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
    return str(db), of(db), of(Path(f"{db}.wal"))


def verify(con: duckdb.DuckDBPyConnection, db: Path) -> None:
    """Read every column of every table of the open file `db`, so that every block in use is read and its checksum
    checked (DuckDB reads a block only when a query needs it): a damaged or truncated file raises DatabaseError in
    one line before it is copied or written. About 0.3 s for a 20 MB file. A file this process read whole before and
    that no one wrote since (`file_state`: `sipas run` checks the file before its flow, the flow as it starts, publish
    before its copy) is not read again."""
    state = file_state(db)
    if state in VERIFIED:
        return
    try:
        tables = con.execute("""SELECT table_name, list(column_name ORDER BY column_index) FROM duckdb_columns()
                                WHERE database_name = current_database() AND schema_name = 'main'
                                  AND table_name IN (SELECT table_name FROM duckdb_tables()
                                                     WHERE database_name = current_database())
                                GROUP BY table_name""").fetchall()
        for table, columns in tables:
            reads = ", ".join(f'max(hash("{c}"))' for c in columns)
            con.execute(f'SELECT {reads} FROM "{table}"').fetchall()
    except duckdb.Error as exc:
        raise database_error(db, exc, "read") from None
    VERIFIED.add(state)


def check_target(db: Path) -> None:
    """Fail with one line when `db` is not somewhere a run may publish: a folder, a file that is not a
    DuckDB file, a read-only file or folder."""
    db = Path(db)
    if kind := describe(db):
        raise DatabaseError(f"{db}: {kind}")
    folder = next((p for p in (db.parent, *db.parent.parents) if p.exists()), None)
    if folder is not None and os.statvfs(folder).f_flag & os.ST_RDONLY:
        raise DatabaseError(f"{db}: cannot write in {folder} (read-only file system): publish into a writable folder (--db)")
    if db.exists() and not writable(db):
        raise DatabaseError(f"{db}: the file is read-only: make it writable (chmod u+w) or publish into another --db")
    if folder is not None and not writable(folder):
        raise DatabaseError(f"{db}: cannot write in {folder} (permission denied): the next database file is built beside "
                            "the current one; publish into a folder you can write (--db)")


def writable(path: Path) -> bool:
    """The process may write `path` and its mode grants writing to someone (so root honours chmod a-w too)."""
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def check_database(db: Path) -> None:
    """Fail early, with one line, when a run could not publish into `db`: see check_target, plus a damaged
    file or a schema that cannot be migrated. Reads the file read-only, so readers do not matter."""
    db = real_path(db)
    check_target(db)
    if db.exists():
        con = connect(db, read_only=True)
        try:
            verify(con, db)
            if not schema_is_current(con, schema_text()):  # else the file's schema is this code's: nothing to plan
                have = table_columns(con)
                plan_migration(db, have, file_version(con, have))
        finally:
            con.close()


# --- the writers' lock file -------------------------------------------------------------------------------------

def lock_path(db: Path) -> Path:
    """`<db>.lock`: held (fcntl) by the one process publishing into `db`; names its run, year, PID, start."""
    return Path(f"{db}.lock")


@contextlib.contextmanager
def writer_lock(db: Path, run_id: str, year: int) -> Iterator[list[str]]:
    """Hold `<db>.lock` for one writer; a second live writer gets DatabaseLocked at once naming the run and
    PID. A marker left by a writer that died (its PID not running) is taken over with a note (yielded)."""
    path = lock_path(db)

    def busy(held: dict) -> Exception:
        who = (f"being published by run {held['run_id']} (year {held['year']}, PID {held['pid']}, since {held['since']})"
               if "run_id" in held else "being published by another process")
        return DatabaseLocked(f"{db}: {who}; nothing was written: run again when it has finished")

    def taken(old: dict, state: str) -> str:
        return (f"{path}: took over the marker of run {old.get('run_id')} (PID {old['pid']}, {state}), "
                "which stopped while publishing; the current file was left as it was")

    with pid_lock(path, {"run_id": run_id, "year": year}, busy,
                  lambda exc: database_error(path, exc, "create the writers' lock file"), taken) as notes:
        legacy = Path(f"{db}.publishing.json")  # the marker earlier versions wrote beside the file
        if legacy.is_file():
            with contextlib.suppress(OSError, ValueError):
                if not pid_alive(int(json.loads(legacy.read_text(encoding="utf-8"))["pid"])):
                    legacy.unlink()
                    notes.append(f"{legacy}: removed the stale marker of an earlier version (its PID is not running)")
        yield notes


# --- the next file and the swap ---------------------------------------------------------------------------------

def next_path(db: Path, run_id: str) -> Path:
    """Where run `run_id` builds the next file: beside `db`, named so a later run knows whose it is."""
    return db.with_name(f"{db.name}{NEXT}{run_id}")


def remove_leftovers(db: Path) -> list[str]:
    """Remove next files (and their WAL) left by runs killed mid-publish; call only holding the lock."""
    notes = []
    for p in sorted(db.parent.glob(f"{glob_escape(db.name)}{NEXT}*")):
        p.unlink(missing_ok=True)
        notes.append(f"removed {p.name}, left by a run that stopped while publishing")
    return notes


def glob_escape(name: str) -> str:
    """`name` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def settle_wal(db: Path) -> None:
    """A current file with a write-ahead log left by a program that did not close it: check the log into
    the file first (the copy must hold all of it); needs the file free of other programs."""
    if Path(f"{db}.wal").exists():
        con = connect(db)
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()


def copy_current(db: Path, target: Path) -> None:
    """Copy the current file to `target` while holding it open read-only (so no other program writes it
    meanwhile; a damaged or foreign file fails here with one line)."""
    con = connect(db, read_only=True)
    try:
        verify(con, db)  # a damaged file is refused before anything is made from it
        shutil.copyfile(db, target)
        shutil.copymode(db, target)
    finally:
        con.close()


def fsync(path: Path) -> None:
    """Flush a file's or a folder's content to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def next_file(db: Path, run_id: str, year: int) -> Iterator[tuple[duckdb.DuckDBPyConnection, list[str]]]:
    """A writable connection to the next database file (a copy of `db`, or a new file), with notes; on a
    normal exit it is checkpointed, closed and swapped in for `db` atomically; on any error it is removed
    and `db` stays as it was. Writers serialise on `<db>.lock`; readers of `db` are never disturbed. The file
    replaced stays as `<db>.sipas-previous` (a hard link: no copy), the last good copy. A `db` that is a symbolic
    link publishes into its target; the link stays."""
    db = real_path(db)
    check_target(db)
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise database_error(db, exc, "create its folder") from None
    with writer_lock(db, run_id, year) as notes:
        notes += remove_leftovers(db)
        settle_wal(db)
        tmp = next_path(db, run_id)
        try:
            if db.exists():
                copy_current(db, tmp)
            con = connect(tmp)
            try:
                yield con, notes
                con.execute("CHECKPOINT")
            finally:
                con.close()
            fsync(tmp)
            keep_previous(db)
            os.replace(tmp, db)
            fsync(db.parent)
        except BaseException as exc:
            for p in (tmp, Path(f"{tmp}.wal")):
                p.unlink(missing_ok=True)
            if isinstance(exc, OSError | duckdb.Error) and os_cause(exc)[0]:
                raise database_error(db, exc, "write the next database file beside it") from None
            raise


def keep_previous(db: Path) -> None:
    """Keep the current file as `<db>.sipas-previous` (a hard link, replacing the one before) just before the swap;
    nothing when the file system has no hard links."""
    if not db.is_file():
        return
    link = previous_path(db).with_name(previous_path(db).name + ".tmp")
    with contextlib.suppress(OSError):
        link.unlink(missing_ok=True)
        os.link(db, link)
        os.replace(link, previous_path(db))


# --- schema version and migration -------------------------------------------------------------------------------

Columns = dict[str, dict[str, tuple[str, bool]]]  # table -> column -> (type, nullable)


def table_columns(con: duckdb.DuckDBPyConnection) -> Columns:
    """The tables of the connection's own database with their columns' types and nullability."""
    rows = con.execute("""
        SELECT c.table_name, c.column_name, c.data_type, c.is_nullable FROM duckdb_columns() c
        JOIN duckdb_tables() t USING (database_name, schema_name, table_name)
        WHERE c.database_name = current_database() AND c.schema_name = 'main' ORDER BY c.table_name, c.column_index""").fetchall()
    out: Columns = {}
    for table, column, dtype, nullable in rows:
        out.setdefault(table, {})[column] = (dtype, bool(nullable))
    return out


def schema_text() -> str:
    """The schema files' text (`schemas/duckdb/`: tables.sql, views.sql) with the rule that comments view columns
    (`VIEW_BASE`): what a publish applies, and what `schema_is_current` compares a file with."""
    root = schemas_root() / "duckdb"
    return "\n".join([*(p.read_text(encoding="utf-8") for p in (root / "tables.sql", root / "views.sql")),
                      json.dumps(VIEW_BASE)])


def declared_columns() -> Columns:
    """The tables and columns `schemas/duckdb/tables.sql` declares (applied to an in-memory database, once per
    content of the file)."""
    return columns_of((schemas_root() / "duckdb" / "tables.sql").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=4)
def columns_of(ddl: str) -> Columns:
    """The tables and columns the DDL `ddl` makes in an empty database."""
    con = connect(":memory:")
    try:
        con.execute(ddl)
        return table_columns(con)
    finally:
        con.close()


def catalog_sha256(con: duckdb.DuckDBPyConnection, ddl: str) -> str:
    """SHA-256 of the schema files' text `ddl` and of what the connection's database holds of them: each table's
    and view's statement and comment, each column's type, nullability and comment."""
    rows = con.execute("""
        SELECT 'table', table_name, NULL, sql, comment FROM duckdb_tables()
        WHERE database_name = current_database() AND schema_name = 'main'
        UNION ALL SELECT 'view', view_name, NULL, sql, comment FROM duckdb_views()
        WHERE NOT internal AND database_name = current_database() AND schema_name = 'main'
        UNION ALL SELECT 'column', table_name, column_name, data_type || ' ' || is_nullable::VARCHAR, comment
        FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'main'
        ORDER BY ALL""").fetchall()
    return hashlib.sha256(json.dumps([SCHEMA_VERSION, ddl, rows], ensure_ascii=False).encode()).hexdigest()


def schema_is_current(con: duckdb.DuckDBPyConnection, ddl: str) -> bool:
    """Whether the file of `con` holds exactly what the schema files `ddl` made when they were last applied to it
    (`record_schema`): its tables, views and comments unchanged since, so nothing needs migrating or re-applying."""
    (has_column,), = con.execute("""SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database()
                                    AND schema_name = 'main' AND table_name = 'schema_info'
                                    AND column_name = 'schema_sha256'""").fetchall()  # a query that fails would
    if not has_column:                                                                  # abort the transaction
        return False
    recorded = con.execute("""SELECT schema_sha256, (SELECT max(version) FROM schema_info) FROM schema_info
                              ORDER BY applied_at DESC, version DESC LIMIT 1""").fetchall()
    return bool(recorded) and recorded[0][1] == SCHEMA_VERSION and recorded[0][0] == catalog_sha256(con, ddl)


def record_schema(con: duckdb.DuckDBPyConnection, ddl: str) -> None:
    """After the schema files `ddl` were applied: record their digest and their catalog's on the latest row."""
    con.execute("""UPDATE schema_info SET schema_sha256 = $sha WHERE rowid =
                   (SELECT rowid FROM schema_info ORDER BY applied_at DESC, version DESC LIMIT 1)""",
                {"sha": catalog_sha256(con, ddl)})


def file_version(con: duckdb.DuckDBPyConnection, have: Columns) -> int | None:
    """The schema version a file records (1 for a file from before schema_info; None for a new, empty file)."""
    if not have:
        return None
    if "schema_info" not in have:
        return 1
    return con.execute("SELECT max(version) FROM schema_info").fetchall()[0][0] or 1


Change = tuple[str, str, str, str]  # (add | relax, table, column, type)


def migration_plan(have: Columns, want: Columns, version: int | None) -> tuple[list[Change], list[str]]:
    """What turns a file's tables (`have`, schema `version`) into the declared ones (`want`): the changes
    (`("add", table, column, type)` for a new nullable column, `("relax", ...)` for a column the file holds
    as NOT NULL that may now be null), and the problems that cannot be migrated (a newer version, a changed
    type, a missing column that may not be null, an extra column that may not be null)."""
    if version is not None and version > SCHEMA_VERSION:
        return [], [f"written by a newer sipas-pipeline (schema version {version}; this one writes {SCHEMA_VERSION})"]
    if have and "runs" not in have and "schema_info" not in have:
        return [], [f"it is a DuckDB file without sipas-pipeline results (tables {', '.join(sorted(have)[:5])})"]
    add, problems = [], []
    for table, columns in want.items():
        if table not in have:
            continue  # a new table: tables.sql creates it
        for column, (dtype, nullable) in columns.items():
            if column not in have[table]:
                if nullable:
                    add.append(("add", table, column, dtype))
                else:
                    problems.append(f"{table}.{column} is new and may not be null")
            elif have[table][column][0] != dtype:
                problems.append(f"{table}.{column} is {have[table][column][0]} in the file, {dtype} now")
            elif nullable and not have[table][column][1]:
                add.append(("relax", table, column, dtype))
        for column, (dtype, nullable) in have[table].items():
            if column not in columns and not nullable:
                problems.append(f"{table}.{column} ({dtype}, not null) is no longer declared")
    return add, problems


def plan_migration(db: Path, have: Columns, version: int | None) -> list[Change]:
    """The columns to add to `db` or to let be null; DatabaseError (one line, saying how to go on) if it cannot be migrated."""
    add, problems = migration_plan(have, declared_columns(), version)
    if problems:
        raise DatabaseError(f"{db}: its schema cannot be migrated ({'; '.join(problems)}): publish into a new --db "
                            "file; this one stays readable as it is")
    return add


def migrate(con: duckdb.DuckDBPyConnection, db: Path, run_id: str) -> list[str]:
    """Bring the file of `con` to the declared schema inside the caller's transaction: add nullable columns,
    drop NOT NULL where the schema now allows a null (e.g. an incomplete province's value),
    create missing tables, and record the version (and what changed) in schema_info. Returns notes."""
    have = table_columns(con)
    version = file_version(con, have)
    add = plan_migration(db, have, version)
    for action, table, column, dtype in add:
        if action == "add":
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {dtype}')
        else:
            con.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" DROP NOT NULL')
    con.execute((schemas_root() / "duckdb" / "tables.sql").read_text(encoding="utf-8"))
    added = ", ".join(f"{t}.{c}" + (" (now nullable)" if a == "relax" else "") for a, t, c, _ in add)
    if version is None:
        change = f"created at schema version {SCHEMA_VERSION}"
    elif version < SCHEMA_VERSION:
        change = f"migrated from schema version {version}" + (f", added {added}" if added else "")
    elif add:
        change = f"added {added}"
    else:
        return []
    con.execute("INSERT INTO schema_info (version, applied_at, run_id, change) VALUES ($v, now(), $run, $change)",
                {"v": SCHEMA_VERSION, "run": run_id, "change": change})
    return [] if version is None else [f"{db}: {change}"]
