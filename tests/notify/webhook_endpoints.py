"""Real webhook endpoints for the tests: HTTP (or HTTPS, with a certificate made here) servers
on loopback that record what they receive, and the two seams where the tests stand in for the
world outside: the name resolver (`webhooks.resolve`), and the route to a public address, which
the test network sends to a loopback server (nothing leaves the machine)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from urllib3.util import connection

from reviews.notify import webhooks


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Endpoint:
    """What the webhook server received, and what it answers next (then 200 ok)."""

    url: str = ""
    port: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)  # TLS SNI, per handshake
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self) -> Reply:
        with self.lock:
            return self.replies.pop(0) if self.replies else Reply()


@contextmanager
def serve(
    host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> Iterator[Endpoint]:
    ep = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            self._record(json.loads(body) if body else None)
            reply = ep.next_reply()
            time.sleep(reply.delay)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def do_GET(self) -> None:  # only a followed redirect would GET
            self._record(None)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _record(self, message: Any) -> None:
            with ep.lock:
                ep.received.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": message,
                    }
                )

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    if tls is not None:

        def note_server_name(_sock: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
            ep.server_names.append(name)

        tls.sni_callback = note_server_name
        # The handshake runs in the request's thread, so a refused one only ends that thread.
        server.socket = tls.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    ep.port = server.server_address[1]
    scheme = "https" if tls else "http"
    ep.url = f"{scheme}://{host}:{ep.port}"
    try:
        yield ep
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- The resolver seam ----------------------------------------------------------------------------


class Dns:
    """Stands in for `webhooks.resolve`: each name answers its queued answers in turn (the
    last one again and again), so a name can change its answer between two look-ups; other
    names do not resolve, addresses resolve to themselves."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.asked: list[str] = []

    def answer(self, host: str, *answers: list[str]) -> None:
        self.answers[host] = list(answers)

    def resolve(self, host: str) -> list[webhooks.Address]:
        self.asked.append(host)
        queued = self.answers.get(host)
        if queued is None and is_address(host):
            return [ipaddress.ip_address(host)]  # an address resolves to itself
        if queued is None:
            raise webhooks.HostNotResolved(f"The host {host} could not be resolved.")
        now = queued.pop(0) if len(queued) > 1 else queued[0]
        return [ipaddress.ip_address(address) for address in now]


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Dns:
    fake = Dns()
    monkeypatch.setattr(webhooks, "resolve", fake.resolve)
    return fake


# -- The test network -----------------------------------------------------------------------------


class Network:
    """Stands in for the route out of the machine, at the one place urllib3 opens sockets:
    loopback is reached as is, a public address only if a test routed it to a loopback server,
    a name through the same `Dns` (so a second look-up sees a rebound answer), anything else
    is refused. `dialled` lists every (host, port) a connection was asked for."""

    def __init__(self, dns: Dns) -> None:
        self.dns = dns
        self.routes: dict[str, int] = {}  # public address -> port of a server on 127.0.0.1
        self.dialled: list[tuple[str, int]] = []
        self.real = connection.create_connection

    def route(self, public: str, to: Endpoint) -> None:
        self.routes[public] = to.port

    def create_connection(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, port = address
        self.dialled.append((host, port))
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:  # a name: the code under test did not connect to a checked address
            ip = self.dns.resolve(host)[0]
        if str(ip) in self.routes:
            return self.real(("127.0.0.1", self.routes[str(ip)]), *args, **kwargs)
        if ip.is_loopback:
            return self.real((str(ip), port), *args, **kwargs)
        raise ConnectionRefusedError(f"the test network has no route to {ip}")


@pytest.fixture
def network(dns: Dns, monkeypatch: pytest.MonkeyPatch) -> Network:
    net = Network(dns)
    monkeypatch.setattr(connection, "create_connection", net.create_connection)
    return net


# -- Certificates ---------------------------------------------------------------------------------


def self_signed(name: str, folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and its key, as PEM files in `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
