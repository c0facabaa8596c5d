"""carton_hook/network/direct.py: a first run's downloads through the standard library
where no proxy may apply (connections kept alive and reused, a stale one replaced, TLS
verified against CARTON_CA_BUNDLE), against real loopback servers. What is judged of a
download (redirects, status, length, sha256, resuming) is fetch's, and
tests/installing/test_fetch.py runs each of its cases over this transport too."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from carton_hook.network import direct

from ..faultserver import FaultServer, fault_server, truncate

DATA = bytes(range(256)) * 64
TIMEOUTS = (5.0, 5.0)


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection or TLS context left from another test; no CA setting from outside."""
    monkeypatch.setattr(direct, "_IDLE", {})
    monkeypatch.setattr(direct, "_CONTEXTS", {})
    for var in ("CARTON_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def plain() -> Iterator[FaultServer]:
    with fault_server() as server:
        yield server


def kept() -> int:
    """How many connections wait to be reused."""
    return sum(len(idle) for idle in direct._IDLE.values())


def read(resp: direct.Response) -> bytes:
    """The whole body, the connection then given back, as fetch does."""
    body = b""
    while chunk := resp.read1(1 << 16):
        body += chunk
    resp.release_conn()
    return body


def test_a_body_read_whole_leaves_its_connection_for_the_next_request(
        plain: FaultServer) -> None:
    url = plain.add("/a.whl", DATA)
    for _ in range(3):
        resp = direct.request(url, {}, *TIMEOUTS)
        assert (resp.status, read(resp)) == (200, DATA)
        assert kept() == 1
    assert plain.connections == 1


def test_a_body_left_unread_closes_its_connection(plain: FaultServer) -> None:
    """`close` (a redirect's body, an error) drops the connection: its unread bytes
    would be taken for the next response (a stale connection's replacement would hide
    that: the pool itself is looked at)."""
    url = plain.add("/a.whl", DATA)
    resp = direct.request(url, {}, *TIMEOUTS)
    resp.read1(10)
    resp.close()
    resp.release_conn()
    assert kept() == 0
    assert read(direct.request(url, {}, *TIMEOUTS)) == DATA
    assert plain.connections == 2


def test_a_body_cut_short_is_not_a_connection_to_keep(plain: FaultServer) -> None:
    url = plain.add("/a.whl", DATA)
    plain.script("/a.whl", truncate(1000))
    assert len(read(direct.request(url, {}, *TIMEOUTS))) == 1000
    assert kept() == 0
    assert read(direct.request(url, {}, *TIMEOUTS)) == DATA
    assert plain.connections == 2


def test_a_kept_connection_the_server_closed_is_replaced_at_once() -> None:
    """A server may close an idle connection at any time (without saying so): the next
    request goes out on a new one, without an error to retry after a wait."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[int] = []
    first_closed = threading.Event()

    def serve() -> None:
        for n in range(2):
            conn, _ = listener.accept()
            accepted.append(n)
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            first_closed.set()  # ... though the reply promised to keep it open

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/a.whl"
    try:
        assert read(direct.request(url, {}, *TIMEOUTS)) == b"ok"
        assert kept() == 1  # as far as this side knows
        assert first_closed.wait(5)
        assert read(direct.request(url, {}, *TIMEOUTS)) == b"ok"
    finally:
        listener.close()
    assert accepted == [0, 1]


def chunked(body: bytes, sizes: list[int]) -> bytes:
    """`body` in the chunked transfer coding, in chunks of `sizes` (the rest last), then
    the last chunk and a trailer field."""
    out, at = b"", 0
    for size in [*sizes, len(body)]:
        piece = body[at:at + size]
        if piece:
            out += b"%x;ext=1\r\n%s\r\n" % (len(piece), piece)
        at += len(piece)
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


class RawServer:
    """A loopback HTTP/1.1 server that answers each request with the next of `replies`,
    as given (bytes on the wire), all on one connection as long as the client keeps it;
    after `close_after` replies on a connection it closes that connection."""

    def __init__(self, replies: list[bytes], close_after: int | None = None) -> None:
        self.replies = list(replies)
        self.close_after = close_after
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/a.whl"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.replies:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                answered = 0
                while self.replies and answered != self.close_after:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        got = conn.recv(4096)
                        if not got:
                            break
                        request += got
                    if not request:
                        break  # the client let go of this connection
                    conn.sendall(self.replies.pop(0))
                    answered += 1

    def close(self) -> None:
        self._listener.close()


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_a_chunked_body_read_whole_leaves_its_connection_for_the_next_request() -> None:
    """A body with no length (chunked, as some mirrors and proxies send) counts as read
    whole only at its last chunk: the connection, its trailer consumed, carries the next
    response, whose bytes are not mistaken for the end of this one."""
    splits = [[1, 2, 4096], [len(DATA) - 1], [16384] * 3]
    server = RawServer([CHUNKED_HEAD + chunked(DATA, sizes) for sizes in splits])
    try:
        for _ in splits:
            resp = direct.request(server.url, {}, *TIMEOUTS)
            assert (resp.status, read(resp)) == (200, DATA)
            assert kept() == 1
    finally:
        server.close()
    assert server.accepted == 1


def test_a_chunked_body_cut_short_fails_and_its_connection_is_not_kept() -> None:
    """The server ends the connection after a chunk, before the last one: reading fails
    (fetch then retries and resumes), and the connection is not taken for one whose body
    was read whole, even by a caller that gives it back without closing the response
    first (http.client has closed it by then, as it does at a chunked body's end); the
    next request has a new one."""
    cut = CHUNKED_HEAD + b"%x\r\n%s\r\n" % (1000, DATA[:1000])
    server = RawServer([cut, CHUNKED_HEAD + chunked(DATA, [])], close_after=1)
    try:
        resp = direct.request(server.url, {}, *TIMEOUTS)
        body = b""
        with pytest.raises(direct.ERRORS):
            while chunk := resp.read1(1 << 16):
                body += chunk
        assert body == DATA[:1000]
        resp.release_conn()
        assert kept() == 0
        assert read(direct.request(server.url, {}, *TIMEOUTS)) == DATA
    finally:
        server.close()
    assert server.accepted == 2


def test_the_request_asks_for_the_bytes_as_stored(plain: FaultServer) -> None:
    """Headers are the caller's (fetch asks for `Accept-Encoding: identity`, and a
    Range); the Host is the URL's."""
    url = plain.add("/a.whl", DATA)
    port = url.split(":")[2].split("/")[0]
    resp = direct.request(url, {"Accept-Encoding": "identity", "Range": "bytes=10-"},
                          *TIMEOUTS)
    assert (resp.status, read(resp)) == (206, DATA[10:])
    sent = plain.requests[0]
    assert sent.headers["Accept-Encoding"] == "identity"
    assert sent.headers["Host"] == f"127.0.0.1:{port}"
    read(direct.request(url + "?x=1#part", {}, *TIMEOUTS))  # 404: the server serves paths
    assert plain.requests[1].path == "/a.whl?x=1"


def test_https_is_verified_against_the_ca_bundle(tls_server: FaultServer) -> None:
    url = tls_server.add("/a.whl", DATA)
    assert read(direct.request(url, {}, *TIMEOUTS)) == DATA


def test_https_without_the_servers_ca_fails_as_tls(tls_server: FaultServer,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    url = tls_server.add("/a.whl", DATA)
    with fault_server(tmp_path / "other") as other:  # another CA's bundle
        assert other.ca_file is not None
        monkeypatch.setenv("CARTON_CA_BUNDLE", str(other.ca_file))
        with pytest.raises(direct.TLS_ERRORS):
            direct.request(url, {}, *TIMEOUTS)


def test_a_certificate_for_another_host_fails_as_tls(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with fault_server(tmp_path / "tls", hostname="files.example") as server:
        assert server.ca_file is not None
        monkeypatch.setenv("CARTON_CA_BUNDLE", str(server.ca_file))
        url = server.add("/a.whl", DATA)
        with pytest.raises(direct.TLS_ERRORS, match=r"(?i)hostname|match"):
            direct.request(url, {}, *TIMEOUTS)


def test_a_ca_bundle_that_cannot_be_read_is_a_tls_failure(
        plain: FaultServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CARTON_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(direct.TLS_ERRORS, match=r"missing\.pem"):
        direct.request("https://127.0.0.1:1/a.whl", {}, *TIMEOUTS)


def test_a_server_that_does_not_answer_times_out() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (the backlog), never reads
    try:
        port = listener.getsockname()[1]
        with pytest.raises(TimeoutError):
            direct.request(f"http://127.0.0.1:{port}/a.whl", {}, 5.0, 0.2)
    finally:
        listener.close()


def test_a_refused_connection_is_an_error_to_retry() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(direct.ERRORS) as raised:
        direct.request(f"http://127.0.0.1:{port}/a.whl", {}, *TIMEOUTS)
    assert not isinstance(raised.value, direct.TLS_ERRORS)


def test_importing_it_imports_no_third_party_module() -> None:
    """What it is for: a first run's worker downloads without importing urllib3."""
    code = ("import sys; import carton_hook.network.direct, carton_hook.installing.fetch; "
            "print(sorted(m for m in ('urllib3', 'packaging', 'installer') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_tls_is_at_least_1_2_and_verified() -> None:
    context = direct._context("")
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
