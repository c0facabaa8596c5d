"""fetch(): one locked wheel over loopback HTTP, checked while streaming (THREATS H1, H3,
H4, N1, N3, N4, N6, N8)."""

from __future__ import annotations

import hashlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import pytest

from carton_hook import fetch as fetch_mod
from carton_hook.fetch import FetchError, fetch

from .factory import make_wheel
from .indexserver import PackageIndex

BODY = bytes(range(256)) * 64  # 16 KiB
SHA = hashlib.sha256(BODY).hexdigest()
WHAT = "demo 1.0 (demo-1.0-py3-none-any.whl)"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
REAL_SLEEP = time.sleep


# ---------------------------------------------------------------- a scripted server

Respond = Callable[["_Handler", int], None]


class Serve(Protocol):
    def __call__(self, respond: Respond, tls: ssl.SSLContext | None = None) -> Scripted: ...


@dataclass
class Request:
    path: str
    headers: dict[str, str]


@dataclass
class Scripted:
    """A loopback HTTP server whose `respond(handler, n)` answers the n-th request (from 0)."""

    respond: Respond
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None
    scheme: str = "http"

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    script: Scripted
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.lock:
            n = len(self.script.requests)
            self.script.requests.append(Request(self.path, dict(self.headers.items())))
        self.script.respond(self, n)

    def send(self, status: int, body: bytes = b"", *, length: int | None = None,
             headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


@pytest.fixture
def serve() -> Iterator[Serve]:
    started: list[Scripted] = []

    def start(respond: Respond, tls: ssl.SSLContext | None = None) -> Scripted:
        script = Scripted(respond)
        handler = type("Handler", (_Handler,), {"script": script})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
            script.scheme = "https"
        script.server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(script)
        return script

    yield start
    for script in started:
        script.release.set()
        assert script.server is not None
        script.server.shutdown()
        script.server.server_close()


def ok(body: bytes = BODY) -> Respond:
    def respond(h: _Handler, n: int) -> None:
        h.send(200, body, length=len(body))
    return respond


# ---------------------------------------------------------------- hermetic guards


@dataclass
class Net:
    lookups: list[str] = field(default_factory=list)
    connects: list[Any] = field(default_factory=list)


@pytest.fixture(autouse=True)
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    """No proxies, no sleeping between retries, fresh pools, and no socket leaves loopback
    (any attempt is recorded and fails)."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "CARTON_OFFLINE",
                "CARTON_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    monkeypatch.setattr(fetch_mod, "_POOLS", {})
    monkeypatch.setattr("carton_hook.fetch.time.sleep", lambda seconds: None)
    record = Net()
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        record.lookups.append(str(host))
        if host not in LOOPBACK:
            raise AssertionError(f"DNS lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        record.connects.append(address)
        if not (isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1")):
            raise AssertionError(f"connect to {address!r}")
        real_connect(self, address)

    def create_connection(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"socket.create_connection{args}")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return record


# ---------------------------------------------------------------- success


def test_fetch_writes_the_file(tmp_path: Path, serve: Serve) -> None:
    server = serve(ok())
    dest = tmp_path / "demo.whl"
    fetch(f"{server.base}/f/demo.whl", SHA, len(BODY), dest, what=WHAT)
    assert dest.read_bytes() == BODY
    assert server.paths == ["/f/demo.whl"]
    # H3: the bytes hashed are the bytes sent, never a decoded form of them.
    assert server.requests[0].headers["Accept-Encoding"] == "identity"


def test_fetch_a_real_wheel_from_the_index(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "build", "demo")
    index = PackageIndex(tmp_path / "index").start()
    try:
        index.add(wheel)
        dest = tmp_path / "dl" / wheel.name
        dest.parent.mkdir()
        data = wheel.read_bytes()
        fetch(index.file_url(wheel.name), hashlib.sha256(data).hexdigest(), len(data), dest,
              what=WHAT)
        assert dest.read_bytes() == data
        assert index.requests == [f"/files/{wheel.name}"]
    finally:
        index.stop()


def test_gzip_encoded_reply_is_stored_as_sent(tmp_path: Path,
                                              serve: Serve) -> None:
    """H3: a `.gz` served with `Content-Encoding: gzip` is the locked file as it is; a
    client that decoded it would store (and hash) other bytes."""
    import gzip

    packed = gzip.compress(BODY, mtime=0)

    def respond(h: _Handler, n: int) -> None:
        h.send(200, packed, length=len(packed), headers={"Content-Encoding": "gzip"})

    server = serve(respond)
    dest = tmp_path / "demo.gz"
    fetch(f"{server.base}/f", hashlib.sha256(packed).hexdigest(), len(packed), dest, what=WHAT)
    assert dest.read_bytes() == packed
    assert server.requests[0].headers["Accept-Encoding"] == "identity"


# ---------------------------------------------------------------- wrong bytes (H1, H4)


def test_wrong_sha256_is_refused_and_removed(tmp_path: Path,
                                            serve: Serve) -> None:
    flipped = bytes([BODY[0] ^ 1]) + BODY[1:]
    server = serve(ok(flipped))
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError) as info:
        fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    message = str(info.value)
    assert WHAT in message
    assert hashlib.sha256(flipped).hexdigest() in message and SHA in message
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []
    assert len(server.requests) == 1  # a mismatch is not retried


def test_body_longer_than_locked_size(tmp_path: Path,
                                      serve: Serve) -> None:
    server = serve(ok(BODY + b"x"))
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match=f"more than the locked {len(BODY)} bytes"):
        fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert not dest.exists()
    assert len(server.requests) == 1


def test_endless_body_stops_at_the_locked_size(tmp_path: Path,
                                               serve: Serve) -> None:
    def respond(h: _Handler, n: int) -> None:
        h.send(200)  # no Content-Length: the body ends when the connection does
        try:
            for _ in range(4096):  # up to 64 MiB, far beyond the lock
                h.wfile.write(BODY)
        except OSError:
            pass  # the client hung up, as it should

    server = serve(respond)
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="more than the locked"):
        fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert not dest.exists()
    assert len(server.requests) == 1


@pytest.mark.parametrize("declared", [len(BODY), None], ids=["length-lies", "no-length"])
def test_short_body_is_retried_then_fails(tmp_path: Path, serve: Serve,
                                          declared: int | None) -> None:
    def respond(h: _Handler, n: int) -> None:
        h.send(200, BODY[:1000], length=declared)  # then the connection closes

    server = serve(respond)
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="cannot download") as info:
        fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert WHAT in str(info.value)
    assert len(server.requests) == fetch_mod.ATTEMPTS == 4
    assert not dest.exists()


def test_short_body_then_full_body_succeeds(tmp_path: Path,
                                            serve: Serve) -> None:
    def respond(h: _Handler, n: int) -> None:
        if n == 0:
            h.send(200, BODY[:1000], length=len(BODY))
        else:
            h.send(200, BODY, length=len(BODY))

    server = serve(respond)
    dest = tmp_path / "demo.whl"
    fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert dest.read_bytes() == BODY
    assert len(server.requests) == 2


# ---------------------------------------------------------------- status codes (N3)


def test_503_then_200(tmp_path: Path, serve: Serve,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("carton_hook.fetch.time.sleep", sleeps.append)

    def respond(h: _Handler, n: int) -> None:
        if n == 0:
            h.send(503, b"busy", length=4)
        else:
            h.send(200, BODY, length=len(BODY))

    server = serve(respond)
    dest = tmp_path / "demo.whl"
    fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert dest.read_bytes() == BODY
    assert server.paths == ["/f", "/f"]
    assert sleeps == [0.5]


def test_503_every_time_gives_up_after_the_attempts(
        tmp_path: Path, serve: Serve,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("carton_hook.fetch.time.sleep", sleeps.append)
    server = serve(lambda h, n: h.send(503, b"", length=0))
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="HTTP 503"):
        fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert len(server.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert not dest.exists()


def test_404_is_not_retried(tmp_path: Path, serve: Serve) -> None:
    server = serve(lambda h, n: h.send(404, b"no", length=2))
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="HTTP 404") as info:
        fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert WHAT in str(info.value)
    assert len(server.requests) == 1
    assert not dest.exists()


# ---------------------------------------------------------------- timeouts (N4)


def test_stalled_server_is_retried_then_fails(tmp_path: Path,
                                              serve: Serve,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_mod, "READ_TIMEOUT", 0.2)

    def respond(h: _Handler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(BODY)))
        h.end_headers()
        h.wfile.write(BODY[:5000])
        h.wfile.flush()
        h.script.release.wait(10)  # released when the test ends

    server = serve(respond)
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="cannot download") as info:
        fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert "timed out" in str(info.value).lower()
    assert len(server.requests) == 4
    assert not dest.exists()


def test_stall_before_headers_then_success(tmp_path: Path,
                                           serve: Serve,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_mod, "READ_TIMEOUT", 0.2)

    def respond(h: _Handler, n: int) -> None:
        if n == 0:
            h.script.release.wait(10)
            return
        h.send(200, BODY, length=len(BODY))

    server = serve(respond)
    dest = tmp_path / "demo.whl"
    fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert dest.read_bytes() == BODY
    assert len(server.requests) == 2


def test_deadline_stops_retrying(tmp_path: Path, serve: Serve,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The backoff sleep outlasts the deadline: no second attempt.
    monkeypatch.setattr(fetch_mod, "DEADLINE", 0.3)
    monkeypatch.setattr("carton_hook.fetch.time.sleep", lambda seconds: REAL_SLEEP(0.4))
    server = serve(lambda h, n: h.send(503, b"", length=0))
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="HTTP 503"):
        fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert len(server.requests) == 1
    assert not dest.exists()


# ---------------------------------------------------------------- redirects (N6)


def test_redirect_to_another_loopback_path(tmp_path: Path,
                                           serve: Serve) -> None:
    def respond(h: _Handler, n: int) -> None:
        if h.path == "/start":
            h.send(302, headers={"Location": "/real/demo.whl"}, length=0)
        elif h.path == "/real/demo.whl":
            h.send(200, BODY, length=len(BODY))
        else:
            h.send(404, length=0)

    server = serve(respond)
    dest = tmp_path / "demo.whl"
    fetch(f"{server.base}/start", SHA, len(BODY), dest, what=WHAT)
    assert dest.read_bytes() == BODY
    assert server.paths == ["/start", "/real/demo.whl"]


def test_redirect_to_another_loopback_server(tmp_path: Path,
                                             serve: Serve) -> None:
    index = PackageIndex(tmp_path / "index").start()
    try:
        src = tmp_path / "demo-1.0-py3-none-any.whl"
        src.write_bytes(BODY)
        index.add(src)
        target = index.file_url(src.name)
        server = serve(lambda h, n: h.send(301, headers={"Location": target}, length=0))
        dest = tmp_path / "dl.whl"
        fetch(f"{server.base}/start", SHA, len(BODY), dest, what=WHAT)
        assert dest.read_bytes() == BODY
        assert server.paths == ["/start"]
        assert index.requests == [f"/files/{src.name}"]
    finally:
        index.stop()


@pytest.mark.parametrize("location", ["http://example.invalid/x", "ftp://127.0.0.1/x",
                                      "file:///etc/passwd"])
def test_redirect_off_loopback_is_refused_before_connecting(
        tmp_path: Path, serve: Serve, net: Net, location: str) -> None:
    server = serve(lambda h, n: h.send(302, headers={"Location": location}, length=0))
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="refusing") as info:
        fetch(f"{server.base}/start", SHA, len(BODY), dest, what=WHAT)
    assert location in str(info.value)
    assert server.paths == ["/start"]
    assert all(host in LOOPBACK for host in net.lookups)
    assert not dest.exists()


def _chain(hops: int) -> Respond:
    """`/r/<k>` redirects to `/r/<k-1>`; `/r/0` is the file."""
    def respond(h: _Handler, n: int) -> None:
        k = int(h.path.rsplit("/", 1)[1])
        if k:
            h.send(307, headers={"Location": f"/r/{k - 1}"}, length=0)
        else:
            h.send(200, BODY, length=len(BODY))
    return respond


def test_five_redirects_are_followed(tmp_path: Path,
                                     serve: Serve) -> None:
    server = serve(_chain(5))
    dest = tmp_path / "demo.whl"
    fetch(f"{server.base}/r/5", SHA, len(BODY), dest, what=WHAT)
    assert dest.read_bytes() == BODY
    assert server.paths == [f"/r/{k}" for k in range(5, -1, -1)]


def test_more_than_five_redirects_fail(tmp_path: Path,
                                       serve: Serve) -> None:
    server = serve(_chain(6))
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch(f"{server.base}/r/6", SHA, len(BODY), dest, what=WHAT)
    assert server.paths == [f"/r/{k}" for k in range(6, 0, -1)]  # not retried
    assert not dest.exists()


def test_redirect_loop_fails(tmp_path: Path, serve: Serve) -> None:
    server = serve(lambda h, n: h.send(302, headers={"Location": "/again"}, length=0))
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch(f"{server.base}/again", SHA, len(BODY), tmp_path / "d.whl", what=WHAT)
    assert len(server.requests) == 6


def test_redirect_without_location(tmp_path: Path, serve: Serve) -> None:
    server = serve(lambda h, n: h.send(302, length=0))
    with pytest.raises(FetchError, match="without a Location"):
        fetch(f"{server.base}/f", SHA, len(BODY), tmp_path / "d.whl", what=WHAT)
    assert len(server.requests) == 1


# ---------------------------------------------------------------- TLS (N5, N6)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def _tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    return ctx


def test_https_with_ca_bundle(tmp_path: Path, serve: Serve, cert: tuple[Path, Path],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_CA_BUNDLE", str(cert[0]))
    server = serve(ok(), _tls(cert))
    dest = tmp_path / "demo.whl"
    fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert dest.read_bytes() == BODY
    assert server.paths == ["/f"]


def test_untrusted_certificate_is_not_retried(tmp_path: Path, serve: Serve,
                                              cert: tuple[Path, Path], net: Net) -> None:
    server = serve(ok(), _tls(cert))
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="TLS failure"):
        fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert server.requests == []
    assert len(net.connects) == 1  # one handshake, no retry
    assert not dest.exists()


def test_https_to_http_redirect_is_refused(tmp_path: Path, serve: Serve, cert: tuple[Path, Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A downgrade is refused even to loopback, before the http server is contacted."""
    monkeypatch.setenv("CARTON_CA_BUNDLE", str(cert[0]))
    plain = serve(ok())
    secure = serve(lambda h, n: h.send(302, headers={"Location": f"{plain.base}/f"}, length=0),
                   _tls(cert))
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="refusing") as info:
        fetch(f"{secure.base}/start", SHA, len(BODY), dest, what=WHAT)
    assert f"{plain.base}/f" in str(info.value)
    assert secure.paths == ["/start"]
    assert plain.requests == []
    assert not dest.exists()


# ---------------------------------------------------------------- no network at all (N6, N8)


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_offline_names_the_wheel_and_sends_nothing(
        tmp_path: Path, serve: Serve, net: Net,
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CARTON_OFFLINE", value)
    server = serve(ok())
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="CARTON_OFFLINE") as info:
        fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert WHAT in str(info.value)
    assert server.requests == []
    assert net.lookups == [] and net.connects == []
    assert not dest.exists()


@pytest.mark.parametrize("value", ["0", "", "false", "no"])
def test_offline_off_values_still_fetch(tmp_path: Path, serve: Serve,
                                        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CARTON_OFFLINE", value)
    server = serve(ok())
    fetch(f"{server.base}/f", SHA, len(BODY), tmp_path / "d.whl", what=WHAT)
    assert len(server.requests) == 1


@pytest.mark.parametrize("url", ["http://example.com/x.whl", "ftp://127.0.0.1/x.whl",
                                 "https:///x.whl", "/tmp/x.whl"])
def test_url_that_may_not_be_fetched_uses_no_network(tmp_path: Path, net: Net,
                                                      url: str) -> None:
    dest = tmp_path / "x.whl"
    with pytest.raises(FetchError, match="refusing") as info:
        fetch(url, SHA, len(BODY), dest, what=WHAT)
    assert WHAT in str(info.value)
    assert net.lookups == [] and net.connects == []
    assert not dest.exists()
