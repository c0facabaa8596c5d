"""carton_backend.network.httpclient: the build half's HTTP policy on loopback servers: any http(s)
URL may be asked (a private index may be plain http), 5xx and 429 retried, the body read
unless streamed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from carton_backend.network import httpclient
from carton_backend.network.httpclient import RETRY, TIMEOUT, HttpClient
from carton_hook.errors import FetchError
from carton_hook.formats.urls import url_problem
from carton_hook.network import http

from ...faultserver import FaultServer, fault_server, redirect, status

DATA = b"<html><a href='alpha-1.0-py3-none-any.whl'>alpha</a></html>\n" * 50


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultServer]:
    """A plain-http file server on 127.0.0.1, reached directly (no proxy)."""
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    with fault_server() as files:
        yield files


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The build half's retry policy as it is, without the waits between attempts."""
    monkeypatch.setattr(httpclient, "RETRY", RETRY.new(backoff_factor=0))


@pytest.mark.parametrize("url", [
    "http://10.1.2.3:8080/simple/",  # a private index on the company network
    "http://pypi.internal.example/simple/alpha/",
    "https://pypi.org/simple/alpha/",
    "http://127.0.0.1:9/files/alpha-1.0-py3-none-any.whl",
    "HTTPS://Files.Example.org/alpha-1.0-py3-none-any.whl",
])
def test_any_http_or_https_url_may_be_asked(url: str) -> None:
    assert httpclient._http_or_https(url) is None


def test_a_plain_http_private_index_passes_where_a_locked_url_would_not() -> None:
    """The runtime's judge (what a lock may record) refuses plain http off loopback; the
    resolver's own index may be such a URL, so the build half asks it."""
    url = "http://10.1.2.3:8080/simple/alpha/"
    assert url_problem(url) is not None
    assert httpclient._http_or_https(url) is None


@pytest.mark.parametrize("url", [
    "ftp://files.example.org/alpha-1.0.tar.gz",
    "file:///tmp/alpha-1.0-py3-none-any.whl",
    "s3://bucket/alpha-1.0-py3-none-any.whl",
    "http:///no-host/simple/",
    "/simple/alpha/",
    "pypi.org/simple/alpha/",
    "data:,hello",
])
def test_other_schemes_and_urls_without_a_host_are_refused(url: str) -> None:
    assert httpclient._http_or_https(url) == f"{url!r}: only http(s) URLs are fetched"


def test_a_refused_url_is_never_connected_to() -> None:
    with pytest.raises(FetchError) as info:
        HttpClient().get("ftp://127.0.0.1:1/alpha-1.0.tar.gz")
    assert str(info.value) == ("the request: refusing to download "
                               "'ftp://127.0.0.1:1/alpha-1.0.tar.gz': only http(s) URLs are "
                               "fetched")


def test_a_plain_http_host_off_loopback_is_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.2 answers on this machine but is not one of the loopback names the runtime
    allows plain http to: it stands for a private index on the network."""
    for var in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)

    class Index(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA)

    try:
        private = ThreadingHTTPServer(("127.0.0.2", 0), Index)
    except OSError:
        pytest.skip("127.0.0.2 is not usable here")
    threading.Thread(target=private.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.2:{private.server_address[1]}/simple/alpha/"
        resp, final = HttpClient().get(url)
        assert (resp.status, resp.data, final) == (200, DATA, url)
        with pytest.raises(FetchError, match="only https URLs"):
            http.open_url(url, {}, "a locked wheel")  # the runtime's judge
    finally:
        private.shutdown()
        private.server_close()


def test_the_body_is_read_and_the_connection_reused(server: FaultServer) -> None:
    url = server.add("/simple/alpha/", DATA)
    client = HttpClient()
    first, final = client.get(url, headers={"Accept": "text/html"})
    second, _ = client.get(url)  # before the first's body is asked for: it was read
    assert server.connections == 1  # so its connection went back to the pool
    assert (first.status, first.data, final) == (200, DATA, url)
    assert second.data == DATA
    assert server.requests[0].headers["Accept"] == "text/html"


def test_a_streamed_body_is_left_for_the_caller(server: FaultServer) -> None:
    url = server.add("/files/alpha.whl", DATA)
    client = HttpClient()
    first, _ = client.get(url, stream=True)
    second, _ = client.get(url)  # the first still holds its connection
    assert server.connections == 2
    assert b"".join(first.stream(1024)) == DATA
    first.release_conn()
    assert second.data == DATA


def test_redirects_are_followed_and_the_final_url_returned(server: FaultServer) -> None:
    target = server.add("/files/new/alpha.whl", DATA)
    old = server.add("/files/alpha.whl", b"")
    server.script("/files/alpha.whl", redirect("/files/new/alpha.whl"))
    resp, final = HttpClient().get(old)
    assert (resp.status, resp.data, final) == (200, DATA, target)


def test_each_redirect_is_judged_before_it_is_followed(server: FaultServer) -> None:
    url = server.add("/files/alpha.whl", DATA)
    server.script("/files/alpha.whl", redirect("file:///etc/passwd"))
    with pytest.raises(FetchError, match="refusing to download 'file:///etc/passwd'"):
        HttpClient().get(url)
    assert server.count() == 1


@pytest.mark.usefixtures("quick_retries")
def test_server_errors_and_429_are_retried(server: FaultServer) -> None:
    url = server.add("/simple/alpha/", DATA)
    server.script("/simple/alpha/", status(503), status(429), status(500), status(502),
                  status(504))
    resp, _ = HttpClient().get(url)
    assert (resp.status, resp.data) == (200, DATA)
    assert server.count() == 6


@pytest.mark.usefixtures("quick_retries")
def test_after_five_retries_the_last_answer_is_returned_not_raised(server: FaultServer) -> None:
    url = server.add("/simple/alpha/", DATA)
    server.script("/simple/alpha/", *[status(500)] * 10)
    resp, _ = HttpClient().get(url)
    assert resp.status == 500
    assert server.count() == 6  # the request and five retries


@pytest.mark.usefixtures("quick_retries")
@pytest.mark.parametrize("code", [403, 404, 501])
def test_other_statuses_are_answers_not_retried(server: FaultServer, code: int) -> None:
    url = server.add("/simple/alpha/", DATA)
    server.script("/simple/alpha/", status(code))
    resp, _ = HttpClient().get(url)
    assert resp.status == code
    assert server.count() == 1


def test_the_policy_waits_longer_than_a_run_and_never_forever() -> None:
    """Connect 15 s and read 60 s (a run: 10 and 30): a busy index is waited for, a dead
    one is not; 5 retries with a backoff from 0.25 s, the server's Retry-After honoured,
    and a TLS failure never retried (other=0)."""
    assert (TIMEOUT.connect_timeout, TIMEOUT.read_timeout) == (15.0, 60.0)
    assert (RETRY.total, RETRY.other, RETRY.backoff_factor) == (5, 0, 0.25)
    assert set(RETRY.status_forcelist or ()) == {429, 500, 502, 503, 504}
    assert RETRY.respect_retry_after_header and not RETRY.raise_on_status
    assert set(RETRY.allowed_methods or ()) == {"GET", "HEAD"}
