"""fetch(): one locked wheel over loopback HTTP(S), checked while streaming (THREATS H1, H3,
H4, N1-N8, C5)."""

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
from urllib.parse import urlsplit

import pytest

from carton_hook.errors import FetchError
from carton_hook.installing import fetch as fetch_mod
from carton_hook.installing.fetch import fetch
from carton_hook.network import direct, http

from ..factory import make_wheel
from ..faultserver import (
    ConnectProxy,
    FaultServer,
    bad_range,
    fault_server,
    ignore_range,
    stall,
    status,
    truncate,
    wrong_bytes,
)
from ..indexserver import PackageIndex

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


@pytest.fixture(autouse=True, params=["direct", "urllib3"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs over both transports: the standard library's where no proxy may
    apply (what a first run uses), and urllib3's (where a proxy may), forced here. A
    test that sets a proxy gets urllib3's either way."""
    if request.param == "urllib3":
        monkeypatch.setattr(fetch_mod, "_transport", fetch_mod._Urllib3)
    return str(request.param)


@pytest.fixture(autouse=True)
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    """No proxies, no sleeping between retries, fresh pools, and no socket leaves loopback
    (any attempt is recorded and fails)."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "CARTON_OFFLINE",
                "CARTON_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    monkeypatch.setattr(http, "_POOLS", {})
    monkeypatch.setattr(direct, "_IDLE", {})
    monkeypatch.setattr(direct, "_CONTEXTS", {})
    monkeypatch.setattr("carton_hook.installing.fetch.time.sleep", lambda seconds: None)
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

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)  # create_connection's too
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


def test_a_download_is_not_synced_to_the_disk(tmp_path: Path, serve: Serve,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # The download is a file of the install's work folder, removed once unpacked.
    synced: list[int] = []
    monkeypatch.setattr(fetch_mod.os, "fsync", synced.append)
    server = serve(ok())
    fetch(f"{server.base}/f/demo.whl", SHA, len(BODY), tmp_path / "demo.whl", what=WHAT)
    assert (tmp_path / "demo.whl").read_bytes() == BODY
    assert synced == []


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
    assert len(server.requests) == fetch_mod.ATTEMPTS == 5
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
    monkeypatch.setattr("carton_hook.installing.fetch.time.sleep", sleeps.append)

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
    monkeypatch.setattr("carton_hook.installing.fetch.time.sleep", sleeps.append)
    server = serve(lambda h, n: h.send(503, b"", length=0))
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="HTTP 503"):
        fetch(f"{server.base}/f", SHA, len(BODY), dest, what=WHAT)
    assert len(server.requests) == fetch_mod.ATTEMPTS
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
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
    assert len(server.requests) == fetch_mod.ATTEMPTS
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
    monkeypatch.setattr("carton_hook.installing.fetch.time.sleep", lambda seconds: REAL_SLEEP(0.4))
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


@pytest.mark.parametrize("trick", ["http://remote.example\\@{host}/f",
                                   "http://{host}@remote.example/f",
                                   "http://{host}\\@remote.example/f"])
def test_a_url_two_parsers_read_differently_is_refused_without_connecting(
        tmp_path: Path, serve: Serve, net: Net, trick: str) -> None:
    """The lock's URL, and the same URL reached through a redirect: urllib.parse and
    urllib3 (which connects) would read different hosts. Nothing connects anywhere."""
    server = serve(ok())
    target = trick.format(host=urlsplit(server.base).netloc)
    dest = tmp_path / "demo.whl"
    with pytest.raises(FetchError, match="refusing"):
        fetch(target, SHA, len(BODY), dest, what=WHAT)
    assert (server.requests, net.lookups, net.connects) == ([], [], [])
    redirecting = serve(lambda h, n: h.send(302, headers={"Location": target}, length=0))
    with pytest.raises(FetchError, match="refusing"):
        fetch(f"{redirecting.base}/start", SHA, len(BODY), dest, what=WHAT)
    assert redirecting.paths == ["/start"] and server.requests == []
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


# ---------------------------------------------------------------- resuming (N1, N2, N4)
# Against the fault server: HTTPS with a test CA, Range and If-Range honoured.

DATA = bytes(range(251)) * 400  # 100 400 bytes, so a cut at 70 000 leaves a tail
DATA_SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def files(tls_server: FaultServer) -> FaultServer:
    return tls_server


def test_cut_transfer_resumes_with_range_and_if_range(tmp_path: Path,
                                                      files: FaultServer) -> None:
    url = files.add("/w.whl", DATA, etag='"v1"')
    files.script("/w.whl", truncate(70_000))
    dest = tmp_path / "w.whl"
    fetch(url, DATA_SHA, len(DATA), dest, what=WHAT)
    assert dest.read_bytes() == DATA
    first, second = files.requests
    assert "Range" not in first.headers
    assert second.headers["Range"] == "bytes=70000-"
    assert second.headers["If-Range"] == '"v1"'


def test_stall_past_the_read_timeout_resumes(tmp_path: Path, files: FaultServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_mod, "READ_TIMEOUT", 0.3)
    url = files.add("/w.whl", DATA)
    files.script("/w.whl", stall(5_000))
    dest = tmp_path / "w.whl"
    fetch(url, DATA_SHA, len(DATA), dest, what=WHAT)
    assert dest.read_bytes() == DATA
    assert [r.headers.get("Range") for r in files.requests] == [None, "bytes=5000-"]


def test_range_ignored_restarts_from_zero(tmp_path: Path, files: FaultServer) -> None:
    url = files.add("/w.whl", DATA)
    files.script("/w.whl", truncate(70_000), ignore_range())
    dest = tmp_path / "w.whl"
    fetch(url, DATA_SHA, len(DATA), dest, what=WHAT)
    assert dest.read_bytes() == DATA
    assert files.count() == 2


def test_file_changed_between_attempts_is_a_mismatch(tmp_path: Path,
                                                      files: FaultServer) -> None:
    url = files.add("/w.whl", DATA, etag='"v1"')
    files.script("/w.whl", truncate(70_000))
    dest = tmp_path / "w.whl"
    real_stream = fetch_mod._stream

    def swap_then_stream(*args: Any, **kwargs: Any) -> None:
        try:
            real_stream(*args, **kwargs)
        finally:  # after the cut, the server gets another file (a new ETag)
            files.add("/w.whl", DATA[::-1], etag='"v2"')

    fetch_mod._stream = swap_then_stream  # type: ignore[assignment]
    try:
        with pytest.raises(FetchError, match="sha256"):
            fetch(url, DATA_SHA, len(DATA), dest, what=WHAT)
    finally:
        fetch_mod._stream = real_stream  # type: ignore[assignment]
    # If-Range did its job: the server sent the whole new file, which is not the locked one.
    assert files.requests[1].headers["If-Range"] == '"v1"'
    assert not dest.exists()


def test_resume_at_the_wrong_offset_is_refused(tmp_path: Path, files: FaultServer) -> None:
    url = files.add("/w.whl", DATA)
    files.script("/w.whl", truncate(70_000), bad_range(0))
    dest = tmp_path / "w.whl"
    with pytest.raises(FetchError, match="resume at byte 70000"):
        fetch(url, DATA_SHA, len(DATA), dest, what=WHAT)
    assert files.count() == 2
    assert not dest.exists()


# ---------------------------------------------------------------- Retry-After (N3)


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_is_honoured(tmp_path: Path, files: FaultServer,
                                 monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("carton_hook.installing.fetch.time.sleep", sleeps.append)
    url = files.add("/w.whl", DATA)
    files.script("/w.whl", status(code, retry_after="3"))
    fetch(url, DATA_SHA, len(DATA), tmp_path / "w.whl", what=WHAT)
    assert sleeps == [3.0]
    assert files.count() == 2


def test_retry_after_as_an_http_date(tmp_path: Path, files: FaultServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from email.utils import formatdate

    sleeps: list[float] = []
    monkeypatch.setattr("carton_hook.installing.fetch.time.sleep", sleeps.append)
    url = files.add("/w.whl", DATA)
    files.script("/w.whl", status(503, retry_after=formatdate(time.time() + 20, usegmt=True)))
    fetch(url, DATA_SHA, len(DATA), tmp_path / "w.whl", what=WHAT)
    assert len(sleeps) == 1 and 15 <= sleeps[0] <= 21


def test_retry_after_past_the_deadline_gives_up_at_once(
        tmp_path: Path, files: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("carton_hook.installing.fetch.time.sleep", sleeps.append)
    monkeypatch.setattr(fetch_mod, "DEADLINE", 60.0)
    url = files.add("/w.whl", DATA)
    files.script("/w.whl", status(503, retry_after="86400"))
    with pytest.raises(FetchError, match="deadline"):
        fetch(url, DATA_SHA, len(DATA), tmp_path / "w.whl", what=WHAT)
    assert sleeps == []
    assert files.count() == 1


# ---------------------------------------------------------------- TLS and proxies (N5, N7)


def test_certificate_for_another_host_fails_without_retry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fault_server(tmp_path / "tls", hostname="example.org") as server:
        assert server.ca_file is not None
        monkeypatch.setenv("CARTON_CA_BUNDLE", str(server.ca_file))
        url = server.add("/w.whl", DATA)
        with pytest.raises(FetchError, match="TLS failure"):
            fetch(url, DATA_SHA, len(DATA), tmp_path / "w.whl", what=WHAT)
        assert server.count() == 0


def test_ssl_cert_file_is_honoured(tmp_path: Path, files: FaultServer,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert files.ca_file is not None
    monkeypatch.delenv("CARTON_CA_BUNDLE")
    monkeypatch.setenv("SSL_CERT_FILE", str(files.ca_file))
    url = files.add("/w.whl", DATA)
    fetch(url, DATA_SHA, len(DATA), tmp_path / "w.whl", what=WHAT)
    assert files.count() == 1


def test_https_proxy_is_used_and_no_proxy_bypasses_it(
        tmp_path: Path, files: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy().start()
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        url = files.add("/w.whl", DATA)
        fetch(url, DATA_SHA, len(DATA), tmp_path / "a.whl", what=WHAT)
        assert proxy.tunnels == [urlsplit(url).netloc]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setattr(http, "_POOLS", {})
        fetch(url, DATA_SHA, len(DATA), tmp_path / "b.whl", what=WHAT)
        assert len(proxy.tunnels) == 1
        assert files.count() == 2
    finally:
        proxy.stop()


def test_a_mirror_serving_other_bytes_is_a_mismatch(tmp_path: Path,
                                                     files: FaultServer) -> None:
    url = files.add("/w.whl", DATA)
    files.script("/w.whl", wrong_bytes())
    with pytest.raises(FetchError, match="sha256"):
        fetch(url, DATA_SHA, len(DATA), tmp_path / "w.whl", what=WHAT)
    assert files.count() == 1  # a wrong file is not retried


def test_disk_full_mid_write_is_a_clear_error_and_leaves_nothing(
        tmp_path: Path, files: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import io

    url = files.add("/w.whl", DATA)
    real_open = Path.open

    class Full(io.FileIO):
        written = 0

        def write(self, data: Any) -> int:
            Full.written += len(data)
            if Full.written > 50_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    def open_full(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if self.name == "w.whl" and mode == "xb":
            return Full(str(self), "xb")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_full)
    monkeypatch.setattr(fetch_mod, "CHUNK", 16384)
    dest = tmp_path / "w.whl"
    with pytest.raises(FetchError, match="No space left"):
        fetch(url, DATA_SHA, len(DATA), dest, what=WHAT)
    assert files.count() == 1  # a full disk is not retried
    assert not dest.exists()
