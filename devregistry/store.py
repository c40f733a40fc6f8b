"""State persistence under the data directory, shared safely by the server and the CLI.

Layout of DIR:
  state.json            users, tokens, packages, stages, web challenges (models.State)
  tarballs/<pkg>/<v>.tgz published tarballs (<pkg> is the url-quoted name)
  staged/<stage id>.tgz  staged tarballs
  .lock                  flock'd around every access
  faults.json            optional fault rules (faults.py)
  refuse-otp-reuse       optional flag file (otp.py)

Every access takes an exclusive flock on DIR/.lock (so a CLI command can change state while a
server runs) and re-reads state.json if another process replaced it. Files are written to a
temporary name and renamed into place, so readers never see half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devregistry.models import State

_FileKey = tuple[int, int, int]


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
        self._state_path = self.data_dir / "state.json"
        self._thread_lock = threading.Lock()
        self._state = State()
        self._loaded_key: _FileKey | None = None
        self._doomed: list[Path] = []

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
            try:
                yield state
            except BaseException:
                self._forget()  # drop half-made changes
                self._doomed.clear()
                raise
            self._save(state)
            for path in self._doomed:
                path.unlink(missing_ok=True)
            self._doomed.clear()

    def is_empty(self) -> bool:
        with self.read() as state:
            return not (state.users or state.packages or state.stages)

    # Tarball files. Written inside a write() block, before the state that names them.

    def published_tarball(self, name: str, version: str) -> Path:
        return self.data_dir / "tarballs" / urllib.parse.quote(name, safe="@") / f"{version}.tgz"

    def staged_tarball(self, stage_id: str) -> Path:
        return self.data_dir / "staged" / f"{stage_id}.tgz"

    def delete_after_save(self, path: Path) -> None:
        """Removes `path` once the current write() is saved (never if it fails)."""
        self._doomed.append(path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock, open(self.data_dir / ".lock", "a+b") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _forget(self) -> None:
        self._state = State()
        self._loaded_key = None  # never equal to a file's key: the next access reloads

    def _file_key(self) -> _FileKey | None:
        try:
            st = self._state_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _current(self) -> State:
        key = self._file_key()
        if key is None:
            if self._loaded_key is not None:
                self._forget()
            return self._state
        if key != self._loaded_key:
            self._state = State.from_json(json.loads(self._state_path.read_bytes()))
            self._loaded_key = key
        return self._state

    def _save(self, state: State) -> None:
        data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode("utf-8")
        write_atomic(self._state_path, data)
        self._loaded_key = self._file_key()
