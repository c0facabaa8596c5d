"""A fault-injecting file server on 127.0.0.1, over HTTPS with a test CA, and a CONNECT
proxy: the network side of THREATS.md (H1, H3, H4, N1-N7), for in-process tests and
for subprocesses alike (they reach it by URL and trust `ca_file`).

Each path serves one file. `script(path, *faults)` sets what the next requests for it
get, one fault per request; once the script is used up, requests are answered
correctly, with `Range` and `If-Range` honoured as a CDN would. Every request is
counted, so tests can assert "exactly one download" and "no request at all".
"""

from __future__ import annotations

import gzip
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# ---------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """One way to answer a request badly. `kind` is one of the names below."""

    kind: str
    at: int = 0  # a byte offset (truncate, stall, bad-range)
    status: int = 0
    retry_after: str | None = None
    location: str = ""


def wrong_bytes() -> Fault:
    return Fault("wrong-bytes")


def gzip_encoded() -> Fault:
    return Fault("gzip")


def truncate(at: int) -> Fault:
    """Promise the whole file, send `at` bytes, close the connection."""
    return Fault("truncate", at=at)


def ignore_range() -> Fault:
    """Answer a Range request with 200 and the whole file."""
    return Fault("ignore-range")


def bad_range(start: int) -> Fault:
    """Answer 206 claiming (and sending from) `start`, whatever was asked."""
    return Fault("bad-range", at=start)


def status(code: int, retry_after: str | None = None) -> Fault:
    return Fault("status", status=code, retry_after=retry_after)


def stall(after: int) -> Fault:
    """Send `after` bytes, then nothing until the server stops."""
    return Fault("stall", at=after)


def redirect(location: str) -> Fault:
    return Fault("redirect", status=302, location=location)


def redirect_loop() -> Fault:
    """A redirect to the same path, for as many requests as are made."""
    return Fault("redirect-loop")


def endless() -> Fault:
    """A body with no length that never ends (until the client hangs up)."""
    return Fault("endless")


# ---------------------------------------------------------------- the server


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FaultServer:
    """Serves `files` (path -> bytes); see the module docstring."""

    cert_dir: Path | None = None  # HTTPS when set: the CA and leaf are written here
    hostname: str = "127.0.0.1"  # the name the certificate is for
    files: dict[str, bytes] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    scripts: dict[str, list[Fault]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    ca_file: Path | None = None
    connections: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FaultServer:
        owner = self

        class Server(ThreadingHTTPServer):
            def get_request(self) -> tuple[socket.socket, object]:
                # Counted before the TLS handshake, so that a refused certificate still
                # shows up as one connection (and a retry as two).
                with owner._lock:
                    owner.connections += 1
                return super().get_request()  # type: ignore[return-value]

        server = Server(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        if self.cert_dir is not None:
            import trustme

            ca = trustme.CA()
            leaf = ca.issue_cert(self.hostname)
            self.cert_dir.mkdir(parents=True, exist_ok=True)
            self.ca_file = self.cert_dir / "ca.pem"
            ca.cert_pem.write_to_path(str(self.ca_file))
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            leaf.configure_cert(ctx)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base(self) -> str:
        assert self._server is not None
        scheme = "https" if self.cert_dir is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def add(self, path: str, data: bytes, etag: str | None = None) -> str:
        """Serve `data` at `path`; returns its URL."""
        self.files[path] = data
        self.etags[path] = etag or f'"{len(self.files)}-{len(data)}"'
        return self.base + path

    def script(self, path: str, *faults: Fault) -> None:
        with self._lock:
            self.scripts[path] = list(faults)

    def count(self, path: str | None = None) -> int:
        return sum(1 for r in self.requests if path is None or r.path == path)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            script = self.scripts.get(path)
            if script and script[0].kind == "redirect-loop":
                return script[0]
            return script.pop(0) if script else None


def _handler_for(owner: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        server_owner = owner

    return Handler


class _Handler(BaseHTTPRequestHandler):
    server_owner: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server_owner
        with owner._lock:
            owner.requests.append(Request("GET", self.path, dict(self.headers.items())))
        data = owner.files.get(self.path)
        fault = owner._next_fault(self.path)
        if data is None:
            self._send(404, b"not found")
            return
        kind = fault.kind if fault else "ok"
        etag = owner.etags[self.path]
        if kind == "status":
            assert fault is not None
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(fault.status, b"", extra)
        elif kind in ("redirect", "redirect-loop"):
            assert fault is not None
            self._send(302, b"", {"Location": fault.location or self.path})
        elif kind == "wrong-bytes":
            body = bytearray(data)
            body[len(body) // 2] ^= 0xFF
            self._send(200, bytes(body), {"ETag": etag})
        elif kind == "gzip":
            self._send(200, gzip.compress(data), {"Content-Encoding": "gzip", "ETag": etag})
        elif kind == "truncate":
            assert fault is not None
            self._head(200, len(data), {"ETag": etag})
            self._write(data[: fault.at])
            self.close_connection = True
        elif kind == "stall":
            assert fault is not None
            self._head(200, len(data), {"ETag": etag})
            self._write(data[: fault.at])
            owner.release.wait(30)
            self.close_connection = True
        elif kind == "endless":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"\0" * 65536
            try:
                while not owner.release.is_set():
                    self.wfile.write(chunk)
            except OSError:
                pass
            self.close_connection = True
        elif kind == "bad-range":
            assert fault is not None
            part = data[fault.at:]
            self._send(206, part, {"ETag": etag, "Content-Range":
                                   f"bytes {fault.at}-{len(data) - 1}/{len(data)}"})
        else:
            self._serve(data, etag, honour_range=kind != "ignore-range")

    def _serve(self, data: bytes, etag: str, *, honour_range: bool) -> None:
        wanted = self.headers.get("Range", "")
        if_range = self.headers.get("If-Range")
        if honour_range and wanted.startswith("bytes=") and if_range in (None, etag):
            first, _, last = wanted[6:].partition("-")
            start = int(first) if first.isdigit() else 0
            end = int(last) if last.isdigit() else len(data) - 1
            if start >= len(data):
                self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            self._send(206, data[start:end + 1], {
                "ETag": etag, "Content-Range": f"bytes {start}-{end}/{len(data)}"})
            return
        self._send(200, data, {"ETag": etag})

    def _head(self, code: int, length: int, headers: dict[str, str]) -> None:
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._head(code, len(body), headers or {})
        self._write(body)

    def _write(self, body: bytes) -> None:
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


@contextmanager
def fault_server(cert_dir: Path | None = None, hostname: str = "127.0.0.1"
                 ) -> Iterator[FaultServer]:
    server = FaultServer(cert_dir=cert_dir, hostname=hostname).start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- a CONNECT proxy


@dataclass
class ConnectProxy:
    """An HTTP proxy on 127.0.0.1 that only tunnels (CONNECT), recording each target."""

    tunnels: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> ConnectProxy:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_CONNECT(self) -> None:
                owner.tunnels.append(self.path)
                host, _, port = self.path.rpartition(":")
                upstream = socket.socket()
                upstream.settimeout(10)
                try:
                    upstream.connect((host.strip("[]"), int(port)))
                except OSError:
                    self.send_error(502)
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                _pipe(self.connection, upstream)
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while True:
            ready, _, _ = select.select([a, b], [], [], 30)
            if not ready:
                return
            for source in ready:
                data = source.recv(65536)
                if not data:
                    return
                (b if source is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()
