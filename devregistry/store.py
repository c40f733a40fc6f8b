"""State persistence under the data directory, shared safely by the server and the CLI.

Layout of DIR:
  state.sqlite3         users, tokens, packages, stages, web challenges: one row per record
  tarballs/<pkg>/<v>.tgz published tarballs (<pkg> is the url-quoted name)
  staged/<stage id>.tgz  staged tarballs
  .lock                  flock'd around every access
  faults.json            optional fault rules (faults.py)
  refuse-otp-reuse       optional flag file (otp.py)
  otp-max-uses           optional: how many times one TOTP code is accepted (otp.py)

Every access takes an exclusive flock on DIR/.lock (so a CLI command can change state while a
server runs). The state lives in memory between accesses; a write saves only the records it
may have changed (those it read, set or deleted: `models.Records` keeps count) in one SQLite
transaction, and bumps a generation number that tells every other `Store` on the directory
(another process, or another instance in this one) to load the state again. A write that fails
changes nothing: its records are read back from the database. A `state.json` left by an older
dev registry is imported once (and renamed `state.json.imported`).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from devregistry.models import STATE_FORMAT, Records, Stage, State, Token, User, WebChallenge
from devregistry.models import Package as PackageRecord

DATABASE = "state.sqlite3"
LEGACY_STATE = "state.json"
# Record kinds kept in the generic table, with their classes. Stages have a table of their own,
# with a unique index on (package, version): the registry's one version index.
KINDS: dict[str, type[Any]] = {
    "users": User,
    "tokens": Token,
    "packages": PackageRecord,
    "web_challenges": WebChallenge,
}
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS stages (
    id TEXT PRIMARY KEY, package_name TEXT NOT NULL, version TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS stage_versions ON stages (package_name, version);
"""


def default_data_dir() -> Path:
    return Path(os.environ.get("DEVREGISTRY_DATA", "var/devregistry"))


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Store:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.Lock()
        self._state = State()
        self._generation: int | None = None  # of the state in memory; None: never loaded
        self._doomed: list[Path] = []
        self._db: sqlite3.Connection | None = None

    @contextmanager
    def read(self) -> Iterator[State]:
        """The current state, for reading only, under the lock."""
        with self._locked():
            yield self._current()

    @contextmanager
    def write(self) -> Iterator[State]:
        """The current state to change; saved when the block ends without an exception."""
        with self._locked():
            state = self._current()
            _track(state, True)
            try:
                yield state
                self._save(state)
            except BaseException:
                self._revert(state)  # drop half-made changes
                self._doomed.clear()
                raise
            finally:
                _track(state, False)
            for path in self._doomed:
                path.unlink(missing_ok=True)
            self._doomed.clear()

    def is_empty(self) -> bool:
        with self.read() as state:
            return not (state.users or state.packages or state.stages)

    def close(self) -> None:
        with self._thread_lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # Tarball files. Written inside a write() block, before the state that names them.

    def published_tarball(self, name: str, version: str) -> Path:
        return self.data_dir / "tarballs" / urllib.parse.quote(name, safe="@") / f"{version}.tgz"

    def staged_tarball(self, stage_id: str) -> Path:
        return self.data_dir / "staged" / f"{stage_id}.tgz"

    def delete_after_save(self, path: Path) -> None:
        """Removes `path` once the current write() is saved (never if it fails)."""
        self._doomed.append(path)

    # The lock, the database and the state in memory.

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock, open(self.data_dir / ".lock", "a+b") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            # Every access holds the flock and the thread lock: one connection serves all
            # threads of the server, one at a time.
            db = sqlite3.connect(
                self.data_dir / DATABASE, check_same_thread=False, isolation_level=None
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a dev registry: no fsync per write
            db.executescript(SCHEMA)
            self._db = db
            self._import_legacy_state()
        return self._db

    def _stored_generation(self) -> int:
        row = self._connection().execute("SELECT value FROM meta WHERE key = 'generation'")
        found = row.fetchone()
        return int(found[0]) if found else 0

    def _current(self) -> State:
        generation = self._stored_generation()
        if generation != self._generation:
            self._state = self._load()
            self._generation = generation
        return self._state

    def _load(self) -> State:
        db = self._connection()
        state = State()
        for kind, cls in KINDS.items():
            records: Records[Any] = getattr(state, kind)
            for key, doc in db.execute("SELECT key, doc FROM records WHERE kind = ?", (kind,)):
                dict.__setitem__(records, key, cls(**json.loads(doc)))
        for key, doc in db.execute("SELECT id, doc FROM stages"):
            state.stages.load(key, Stage(**json.loads(doc)))
        _load_plain_fields(db, state)
        return state

    def _save(self, state: State) -> None:
        db = self._connection()
        with _transaction(db):
            for kind in KINDS:
                records: Records[Any] = getattr(state, kind)
                for key in records.touched:
                    _save_record(db, kind, key, records)
            # Deletions first: a stage deleted and another staged with its version in one write
            # must not trip the unique index.
            for key in sorted(state.stages.touched, key=lambda key: key in state.stages):
                _save_stage(db, key, state.stages)
            self._generation = self._stored_generation() + 1
            _save_plain_fields(db, state)
            _set_meta(db, "generation", self._generation)
            _set_meta(db, "format", STATE_FORMAT)

    def _revert(self, state: State) -> None:
        """Puts back, from the database, every record the failed write may have changed."""
        db = self._connection()
        for kind, cls in KINDS.items():
            records: Records[Any] = getattr(state, kind)
            for key in records.touched:
                found = db.execute(
                    "SELECT doc FROM records WHERE kind = ? AND key = ?", (kind, key)
                ).fetchone()
                records.restore(key, cls(**json.loads(found[0])) if found else None)
        for key in state.stages.touched:
            found = db.execute("SELECT doc FROM stages WHERE id = ?", (key,)).fetchone()
            state.stages.restore(key, Stage(**json.loads(found[0])) if found else None)
        _load_plain_fields(db, state)

    def _import_legacy_state(self) -> None:
        """A state.json from before the database: loaded once, saved whole, set aside."""
        legacy = self.data_dir / LEGACY_STATE
        if not legacy.exists() or self._stored_generation() != 0:
            return
        state = State.from_json(json.loads(legacy.read_bytes()))
        _track(state, True)
        for kind in (*KINDS, "stages"):
            records: Records[Any] = getattr(state, kind)
            records.touched.update(records.keys())
        self._save(state)
        self._generation = None  # the next access loads what was imported
        legacy.rename(legacy.with_name(LEGACY_STATE + ".imported"))


def _track(state: State, on: bool) -> None:
    for kind in (*KINDS, "stages"):
        records: Records[Any] = getattr(state, kind)
        records.tracking = on
        records.touched.clear()


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _doc(record: Any) -> str:
    return json.dumps(dataclasses.asdict(record), sort_keys=True)


def _save_record(db: sqlite3.Connection, kind: str, key: str, records: Records[Any]) -> None:
    if key in records:
        db.execute(
            "INSERT INTO records (kind, key, doc) VALUES (?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc",
            (kind, key, _doc(dict.__getitem__(records, key))),
        )
    else:
        db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))


def _save_stage(db: sqlite3.Connection, key: str, stages: Records[Stage]) -> None:
    db.execute("DELETE FROM stages WHERE id = ?", (key,))
    if key in stages:
        stage: Stage = dict.__getitem__(stages, key)
        db.execute(
            "INSERT INTO stages (id, package_name, version, doc) VALUES (?, ?, ?, ?)",
            (key, stage.package_name, stage.version, _doc(stage)),
        )


def _plain_fields(state: State) -> list[str]:
    """State's fields other than its record collections (`next_seq`, and any a later change
    adds): plain JSON values, saved whole on every write."""
    collections = {*KINDS, "stages"}
    return [f.name for f in dataclasses.fields(state) if f.name not in collections]


def _save_plain_fields(db: sqlite3.Connection, state: State) -> None:
    for name in _plain_fields(state):
        _set_meta(db, f"field:{name}", json.dumps(getattr(state, name)))


def _load_plain_fields(db: sqlite3.Connection, state: State) -> None:
    default = State()
    for name in _plain_fields(state):
        found = db.execute("SELECT value FROM meta WHERE key = ?", (f"field:{name}",)).fetchone()
        setattr(state, name, json.loads(found[0]) if found else getattr(default, name))


def _set_meta(db: sqlite3.Connection, key: str, value: object) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, str(value)),
    )


def database_rows(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on a data directory's database (for tests and inspection)."""
    with closing(sqlite3.connect(Path(data_dir) / DATABASE)) as db:
        return list(db.execute(sql))
