"""A dev registry inside the test process, for tests of anything that talks to a registry."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path
from typing import Any

from devregistry import accounts, packages
from devregistry.routing import Compat
from devregistry.server import Config, RegistryServer, make_server
from devregistry.store import Store, write_atomic


class LiveRegistry:
    """A dev registry server running in a background thread of the test process,
    on 127.0.0.1, port 0 (the first start picks a free port; restarts keep it if they can).

    User, token and owner changes go through the data directory's lock, as the CLI's do,
    so the running server sees them at once.
    """

    url: str
    data_dir: Path

    def __init__(
        self, data_dir: Path, *, refuse_otp_reuse: bool = False, compat: str = Compat.NPM
    ) -> None:
        self.data_dir = Path(data_dir)
        self.refuse_otp_reuse = refuse_otp_reuse
        self.compat = Compat(compat)
        self.url = ""
        self._store = Store(self.data_dir)
        self._server: RegistryServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    def start(self) -> LiveRegistry:
        if self._server is not None:
            return self
        config = Config(self.data_dir, refuse_otp_reuse=self.refuse_otp_reuse, compat=self.compat)
        try:
            server = make_server(config, "127.0.0.1", self._port)
        except OSError:
            server = make_server(config, "127.0.0.1", 0)  # the old port is taken: a new one
        self._server = server
        self._port = server.server_address[1]
        self.url = server.url
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=f"devregistry:{self._port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LiveRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_user(
        self,
        name: str,
        password: str = "password-",  # noqa: S107 (a test default)
        email: str | None = None,
        otp_secret: str | None = None,
    ) -> None:
        with self._store.write() as state:
            accounts.add_user(state, name, password, email, otp_secret)

    def token(self, name: str, read_only: bool = False, *, automation: bool = False) -> str:
        with self._store.write() as state:
            return accounts.create_token(state, name, read_only=read_only, automation=automation)

    def revoke_token(self, token: str) -> None:
        with self._store.write() as state:
            if not accounts.revoke_token(state, token):
                raise ValueError("no such token")

    def recovery_codes(self, name: str, count: int = 5) -> list[str]:
        """New recovery codes for `name` (accepted as `npm-otp` with `compat="other"`)."""
        with self._store.write() as state:
            return accounts.new_recovery_codes(state, name, count)

    def add_owner(self, package: str, user: str) -> None:
        with self._store.write() as state:
            packages.add_maintainer(state, package, user)

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        """Writes DIR/faults.json; the server re-reads it on its next request."""
        write_atomic(self.data_dir / "faults.json", json.dumps(rules).encode())

    def set_otp_max_uses(self, uses: int | None) -> None:
        """Writes (or, with None, removes) DIR/otp-max-uses: a TOTP code is accepted `uses`
        times, then refused as already used; the count starts again with the next code."""
        path = self.data_dir / "otp-max-uses"
        if uses is None:
            path.unlink(missing_ok=True)
        else:
            write_atomic(path, str(uses).encode())

    def clear_faults(self) -> None:
        (self.data_dir / "faults.json").unlink(missing_ok=True)

    def complete_web_auth(self, auth_url: str) -> None:
        """Presses "Use my security key" on the authUrl page, over HTTP like a browser."""
        with urllib.request.urlopen(auth_url, timeout=10) as page:  # noqa: S310 (loopback URL)
            if b"Use my security key" not in page.read():
                raise AssertionError(f"no security-key button at {auth_url}")
        press = urllib.request.Request(auth_url, data=b"", method="POST")  # noqa: S310
        with urllib.request.urlopen(press, timeout=10) as answer:  # noqa: S310
            answer.read()
