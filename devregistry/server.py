"""The HTTP transport: a threading server, fault injection, one log line per request."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devregistry import api
from devregistry.faults import Fault, FaultRules
from devregistry.routing import Compat, Context
from devregistry.store import Store
from devregistry.wire import Request, Response

MAX_BODY = 256 * 1024 * 1024
# The wait of a `delay` fault: a seam, so the suite checks the wait without waiting.
sleep: Callable[[float], None] = time.sleep
REFUSE_REUSE_FLAG = "refuse-otp-reuse"
OTP_MAX_USES_FILE = "otp-max-uses"


@dataclass(frozen=True)
class Config:
    data_dir: Path
    public_url: str | None = None
    faults_file: Path | None = None
    refuse_otp_reuse: bool = False
    compat: Compat = Compat.NPM


class RegistryServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], config: Config) -> None:
        self.config = config
        self.context = Context(
            Store(config.data_dir), self._refuse_otp_reuse, config.compat, self._otp_max_uses
        )
        self.faults = FaultRules(config.faults_file or config.data_dir / "faults.json")
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, RegistryHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def close_connections(self) -> None:
        """Ends kept-alive connections too, so nothing answers from a stopped server."""
        with self._connections_lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def _refuse_otp_reuse(self) -> bool:
        return self.config.refuse_otp_reuse or (self.config.data_dir / REFUSE_REUSE_FLAG).exists()

    def _otp_max_uses(self) -> int | None:
        """N from `DIR/otp-max-uses` (read on every request): a code works N times; None: no
        such file (or no number in it)."""
        try:
            text = (self.config.data_dir / OTP_MAX_USES_FILE).read_text()
        except OSError:
            return None
        return int(text.strip()) if text.strip().isdigit() else None


class RegistryHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devregistry"
    # Headers and body leave together: written to a buffer and sent by one flush, with
    # TCP_NODELAY. Written apart, a kept-alive connection waited for the client's delayed ACK
    # (Nagle) before the body went out: 55 ms a page instead of 11.
    wbufsize = 256 * 1024
    disable_nagle_algorithm = True
    server: RegistryServer

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def finish(self) -> None:
        # The buffered writer flushes once more on close: a client that hung up already (a
        # truncated answer, a timeout) is not an error of ours.
        with contextlib.suppress(OSError):
            super().finish()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _serve logs its own line, without the query string

    def _serve(self) -> None:
        started = time.monotonic()
        path, _, query = self.path.partition("?")
        body = self._read_body()
        fault = self.server.faults.match(self.command, path)
        if fault is not None and fault.delay:
            sleep(fault.delay)
        response = _faulted(fault)
        if response is None and body is None:
            response = Response.json(413, {"message": "The request body is too large."})
        if response is None:
            response = api.handle(self.server.context, self._request(path, query, body or b""))
        elapsed = (time.monotonic() - started) * 1000
        note = " (fault)" if fault is not None else ""
        # Logged before answering, so a client that has its answer finds the line written.
        # Never the query, headers or body: they may carry tokens and one-time passwords.
        print(f"{self.command} {path} {response.status} {elapsed:.0f}ms{note}", file=sys.stderr)
        self._send(response, truncate=fault is not None and fault.truncate)

    def _read_body(self) -> bytes | None:
        """The request body (npm always sends a content-length); None if it is too large."""
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _request(self, path: str, query: str, body: bytes) -> Request:
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        return Request(self.command, path, params, headers, body, self._base_url())

    def _base_url(self) -> str:
        if self.server.config.public_url:
            return self.server.config.public_url.rstrip("/") + "/"
        host = self.headers.get("host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}/"

    def _send(self, response: Response, *, truncate: bool) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("content-type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        if truncate:
            self.send_header("connection", "close")
        self.end_headers()
        body = response.body[: len(response.body) // 2] if truncate else response.body
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if truncate:
            self.close_connection = True


def _faulted(fault: Fault | None) -> Response | None:
    if fault is None:
        return None
    if fault.status is not None:
        headers = {}
        if fault.status == 429 or fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after if fault.retry_after is not None else 1)
        doc = {"message": f"Injected fault: HTTP {fault.status}."}
        return Response.json(fault.status, doc, headers)
    if fault.malformed:
        return Response(200, b'{"items": [{"id": "broken', "application/json")
    return None


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> RegistryServer:
    return RegistryServer((host, port), config)
