"""carton_hook/network/http.py: `pool_for` (one urllib3 pool per proxy and CA bundle, the
proxy rules of HTTPS_PROXY / NO_PROXY) and `open_url` (redirects followed by hand, each
URL judged first, https never to http; retries and timeouts the caller's), against real
loopback servers."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3
from urllib3.util import Retry

from carton_hook.errors import FetchError
from carton_hook.network import http
from carton_hook.network.http import MAX_REDIRECTS, open_url, pool_for

from ..faultserver import (
    ConnectProxy,
    FaultServer,
    fault_server,
    gzip_encoded,
    redirect,
    redirect_loop,
    status,
)

DATA = bytes(range(256)) * 16
WHAT = "demo 1.0 (demo-1.0-py3-none-any.whl)"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@pytest.fixture(autouse=True)
def lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """No proxy or CA setting from outside, a fresh set of pools, and no name looked up
    but loopback's (each lookup is recorded)."""
    import os

    for var in [v for v in os.environ if v.lower().endswith("_proxy")]:
        monkeypatch.delenv(var)
    for var in ("CARTON_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUEST_METHOD"):
        monkeypatch.delenv(var, raising=False)
    pools: dict[Any, Any] = {}
    monkeypatch.setattr(http, "_POOLS", pools)
    seen: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(host))
        if host not in LOOPBACK:
            raise AssertionError(f"DNS lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield seen
    for pool in pools.values():
        pool.clear()


@pytest.fixture
def plain() -> Iterator[FaultServer]:
    with fault_server() as server:
        yield server


@pytest.fixture
def tls(tls_server: FaultServer) -> FaultServer:
    return tls_server


def get(url: str, **kwargs: Any) -> tuple[Any, str]:
    """`open_url`, the response's body read and its connection given back."""
    resp, final = open_url(url, {}, WHAT, **kwargs)
    resp.read()
    resp.release_conn()
    return resp, final


# ---------------------------------------------------------------- pools and proxies


def test_without_a_proxy_one_pool_serves_every_url() -> None:
    pool = pool_for("https://files.example/a.whl")
    assert type(pool) is urllib3.PoolManager
    assert pool_for("https://other.example:8443/b.whl") is pool
    assert pool_for("http://127.0.0.1:8080/c.whl") is pool


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="proxies from system settings")
def test_without_a_proxy_variable_urllibs_proxy_rules_are_not_imported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib.request (~1 ms) is imported only where a proxy setting may apply: a first
    run's worker imports what downloading needs before its downloads start. Any
    `*_proxy` variable, in any case, may (urllib's own rule)."""
    import os

    code = ("import sys; from carton_hook.network import http; "
            "http.pool_for('https://files.example/a.whl'); "
            "print('urllib.request' in sys.modules)")
    plain = subprocess.run([sys.executable, "-c", code], env=dict(os.environ),
                           capture_output=True, text=True, check=True)
    assert plain.stdout.strip() == "False"  # the fixture took every *_proxy variable out
    assert not http.proxies_may_apply()
    for name in ("all_proxy", "HTTPS_PROXY", "no_proxy"):
        with monkeypatch.context() as env:
            env.setenv(name, "http://proxy.internal:3128")
            assert http.proxies_may_apply()
        assert not http.proxies_may_apply()


def test_https_proxy_is_the_pool_of_https_urls_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    pool = pool_for("https://files.example/a.whl")
    assert isinstance(pool, urllib3.ProxyManager) and pool.proxy is not None
    assert (pool.proxy.host, pool.proxy.port) == ("proxy.internal", 3128)
    assert type(pool_for("http://127.0.0.1:8080/a.whl")) is urllib3.PoolManager


def test_http_proxy_is_the_pool_of_http_urls_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    assert isinstance(pool_for("http://mirror.internal/simple/"), urllib3.ProxyManager)
    assert type(pool_for("https://files.example/a.whl")) is urllib3.PoolManager


def test_the_lower_case_variable_wins_over_the_upper_case_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.internal:1111")
    monkeypatch.setenv("https_proxy", "http://lower.internal:2222")
    pool = pool_for("https://files.example/a.whl")
    assert isinstance(pool, urllib3.ProxyManager) and pool.proxy is not None
    assert pool.proxy.host == "lower.internal"


@pytest.mark.parametrize(("no_proxy", "url", "bypassed"), [
    ("files.example", "https://files.example/a.whl", True),
    ("files.example", "https://cdn.files.example/a.whl", True),
    (".files.example", "https://cdn.files.example/a.whl", True),
    (".files.example", "https://files.example/a.whl", True),
    ("files.example", "https://FILES.Example/a.whl", True),
    ("Files.Example", "https://files.example/a.whl", True),
    ("files.example", "https://files.example:8443/a.whl", True),
    ("other.test, files.example", "https://files.example/a.whl", True),
    ("*", "https://anything.test/a.whl", True),
    ("10.1.2.3", "https://10.1.2.3/a.whl", True),
    ("::1", "https://[::1]:8443/a.whl", True),
    ("files.example", "https://badfiles.example/a.whl", False),
    ("files.example", "https://files.example.evil/a.whl", False),
    ("10.1.2.3", "https://10.1.2.30/a.whl", False),
    ("other.test", "https://files.example/a.whl", False),
    ("", "https://files.example/a.whl", False),
], ids=lambda value: str(value))
def test_no_proxy_names_hosts_domains_addresses_or_everything(
        no_proxy: str, url: str, bypassed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert isinstance(pool_for(url), urllib3.ProxyManager) is not bypassed


def test_lower_case_no_proxy_is_read_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    monkeypatch.setenv("no_proxy", "files.example")
    assert type(pool_for("https://files.example/a.whl")) is urllib3.PoolManager


def test_a_no_proxy_entry_with_a_port_bypasses_that_host_and_port(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "files.example:8443")
    assert type(pool_for("https://files.example:8443/a.whl")) is urllib3.PoolManager


def test_there_is_one_pool_per_proxy_and_ca_bundle(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    direct = pool_for("https://files.example/a.whl")
    monkeypatch.setenv("HTTPS_PROXY", "http://one.internal:3128")
    one = pool_for("https://files.example/a.whl")
    monkeypatch.setenv("HTTPS_PROXY", "http://two.internal:3128")
    two = pool_for("https://files.example/a.whl")
    monkeypatch.setenv("CARTON_CA_BUNDLE", str(tmp_path / "corporate.pem"))
    two_with_ca = pool_for("https://files.example/a.whl")
    monkeypatch.delenv("HTTPS_PROXY")
    direct_with_ca = pool_for("https://files.example/a.whl")
    assert len({id(p) for p in (direct, one, two, two_with_ca, direct_with_ca)}) == 5
    assert direct.connection_pool_kw.get("ca_certs") is None
    assert two_with_ca.connection_pool_kw["ca_certs"] == str(tmp_path / "corporate.pem")
    assert direct_with_ca.connection_pool_kw["ca_certs"] == str(tmp_path / "corporate.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://one.internal:3128")
    monkeypatch.delenv("CARTON_CA_BUNDLE")
    assert pool_for("https://other.example/b.whl") is one  # kept for the whole process


def test_an_empty_ca_bundle_variable_is_no_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    direct = pool_for("https://files.example/a.whl")
    monkeypatch.setenv("CARTON_CA_BUNDLE", "")
    assert pool_for("https://files.example/a.whl") is direct


def test_a_new_ca_bundle_takes_effect_without_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fault_server(tmp_path / "tls") as server:
        url = server.add("/a.whl", DATA)
        with pytest.raises(urllib3.exceptions.SSLError):
            get(url)
        assert server.ca_file is not None
        monkeypatch.setenv("CARTON_CA_BUNDLE", str(server.ca_file))
        resp, _ = get(url)
        assert resp.status == 200
        assert server.count() == 1  # the refused handshake sent no request


def test_https_proxy_tunnels_https_and_an_http_url_goes_direct(
        tls: FaultServer, plain: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy().start()
    try:
        monkeypatch.setenv("https_proxy", proxy.url)
        secure = tls.add("/a.whl", DATA)
        local = plain.add("/b.whl", DATA)
        assert get(secure)[0].status == 200
        assert get(local)[0].status == 200
        assert proxy.tunnels == [urlsplit(secure).netloc]
        assert (tls.count(), plain.count()) == (1, 1)
    finally:
        proxy.stop()


# ---------------------------------------------------------------- open_url


def test_the_response_comes_unread_with_the_url_that_gave_it(plain: FaultServer) -> None:
    url = plain.add("/a.whl", DATA)
    resp, final = open_url(url, {"Range": "bytes=16-31", "X-Carton": "1"}, WHAT)
    try:
        assert (resp.status, final) == (206, url)
        assert resp.read() == DATA[16:32]
    finally:
        resp.release_conn()
    headers = plain.requests[0].headers
    assert (headers["Accept-Encoding"], headers["X-Carton"]) == ("identity", "1")


def test_a_callers_accept_encoding_cannot_replace_identity(plain: FaultServer) -> None:
    """What is hashed must be the bytes as sent (docs/security.md, H3)."""
    url = plain.add("/a.whl", DATA)
    resp, _ = open_url(url, {"Accept-Encoding": "gzip"}, WHAT)
    resp.release_conn()
    assert plain.requests[0].headers["Accept-Encoding"] == "identity"


def test_the_body_is_handed_over_as_sent_not_decoded(plain: FaultServer) -> None:
    url = plain.add("/a.whl", DATA)
    plain.script("/a.whl", gzip_encoded())
    resp, _ = open_url(url, {}, WHAT)
    try:
        raw = resp.read()
    finally:
        resp.release_conn()
    assert raw != DATA and gzip.decompress(raw) == DATA


@pytest.mark.parametrize("code", [300, 304, 404, 500, 503])
def test_a_status_that_is_not_a_redirect_is_returned_as_it_is(plain: FaultServer,
                                                               code: int) -> None:
    url = plain.add("/a.whl", DATA)
    plain.script("/a.whl", status(code))
    resp, final = get(url)
    assert (resp.status, final) == (code, url)
    assert plain.count() == 1


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_each_redirect_status_is_followed_by_hand(plain: FaultServer, code: int) -> None:
    """A redirect with no Location: followed by hand, so refused by carton, not urllib3."""
    url = plain.add("/a.whl", DATA)
    plain.script("/a.whl", status(code))
    with pytest.raises(FetchError) as caught:
        get(url)
    assert str(caught.value) == f"{WHAT}: redirect without a Location from {url}"


def test_a_relative_location_is_taken_from_the_url_that_gave_it(plain: FaultServer) -> None:
    start = plain.add("/simple/demo/", b"moved")
    target = plain.add("/files/demo.whl", DATA)
    plain.script("/simple/demo/", redirect("../../files/demo.whl"))
    resp, final = get(start)
    assert (resp.status, final) == (200, target)
    assert [r.path for r in plain.requests] == ["/simple/demo/", "/files/demo.whl"]


def chain(server: FaultServer, hops: int) -> list[str]:
    """/r0 redirects to /r1, ... to /r{hops}, which serves DATA: the URLs in order."""
    urls = [server.add(f"/r{i}", DATA) for i in range(hops + 1)]
    for i in range(hops):
        server.script(f"/r{i}", redirect(f"/r{i + 1}"))
    return urls


def test_redirects_are_followed_up_to_the_limit(plain: FaultServer) -> None:
    urls = chain(plain, MAX_REDIRECTS)
    resp, final = get(urls[0])
    assert (resp.status, final) == (200, urls[-1])
    assert plain.count() == MAX_REDIRECTS + 1


def test_one_redirect_more_than_the_limit_is_refused_before_it_is_followed(
        plain: FaultServer) -> None:
    urls = chain(plain, MAX_REDIRECTS + 1)
    with pytest.raises(FetchError) as caught:
        get(urls[0])
    assert str(caught.value) == f"{WHAT}: more than {MAX_REDIRECTS} redirects from {urls[0]}"
    assert plain.count(urlsplit(urls[-1]).path) == 0


def test_a_redirect_loop_ends_at_the_limit(plain: FaultServer) -> None:
    url = plain.add("/loop", DATA)
    plain.script("/loop", redirect_loop())
    with pytest.raises(FetchError, match=f"more than {MAX_REDIRECTS} redirects"):
        get(url)
    assert plain.count() == MAX_REDIRECTS + 1


def test_each_url_is_judged_before_anything_connects_to_it(plain: FaultServer) -> None:
    with fault_server() as other:
        target = other.add("/a.whl", DATA)
        start = plain.add("/a.whl", DATA)
        plain.script("/a.whl", redirect(target))
        judged: list[str] = []

        def judge(url: str) -> str | None:
            judged.append(url)
            return f"{url!r} is not on the allow list" if url == target else None

        with pytest.raises(FetchError) as caught:
            get(start, judge=judge)
        assert str(caught.value) == (
            f"{WHAT}: refusing to download {target!r} is not on the allow list")
        assert judged == [start, target]
        assert (plain.count(), other.count(), other.connections) == (1, 0, 0)


def test_the_first_url_is_judged_too(plain: FaultServer) -> None:
    url = plain.add("/a.whl", DATA)
    with pytest.raises(FetchError, match="refusing to download no"):
        get(url, judge=lambda url: "no")
    assert plain.connections == 0


def test_carton_s_url_policy_is_the_default_judge(lookups: list[str]) -> None:
    with pytest.raises(FetchError) as caught:
        get("http://files.example/a.whl")
    assert "only https URLs (or http to a loopback host) may be fetched" in str(caught.value)
    assert lookups == []


def test_https_never_redirects_to_http(tls: FaultServer, plain: FaultServer) -> None:
    target = plain.add("/a.whl", DATA)
    start = tls.add("/a.whl", DATA)
    tls.script("/a.whl", redirect(target))
    with pytest.raises(FetchError) as caught:
        get(start)
    assert str(caught.value) == f"{WHAT}: refusing to follow a redirect from https to {target!r}"
    assert (tls.count(), plain.connections) == (1, 0)


def test_https_may_redirect_to_https(tls: FaultServer) -> None:
    target = tls.add("/b.whl", DATA)
    start = tls.add("/a.whl", b"moved")
    tls.script("/a.whl", redirect(target))
    resp, final = get(start)
    assert (resp.status, final) == (200, target)


def test_http_may_redirect_to_https(tls: FaultServer, plain: FaultServer) -> None:
    target = tls.add("/a.whl", DATA)
    start = plain.add("/a.whl", b"moved")
    plain.script("/a.whl", redirect(target))
    assert get(start)[1] == target


# ---------------------------------------------------------------- retries and timeouts


def test_by_default_nothing_is_retried(plain: FaultServer) -> None:
    url = plain.add("/a.whl", DATA)
    plain.script("/a.whl", status(503), status(503))
    assert get(url)[0].status == 503
    assert plain.count() == 1


def test_the_callers_retries_are_urllib3s(plain: FaultServer) -> None:
    url = plain.add("/a.whl", DATA)
    plain.script("/a.whl", status(503), status(503))
    retry = Retry(total=2, status_forcelist=(503,), backoff_factor=0)
    resp, final = get(url, retries=retry)
    assert (resp.status, final) == (200, url)
    assert plain.count() == 3


def test_urllib3s_own_errors_pass_through() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on `port` now.
    with pytest.raises(urllib3.exceptions.NewConnectionError):
        get(f"http://127.0.0.1:{port}/a.whl")


def test_the_callers_timeout_bounds_a_silent_server() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # connections are accepted by the system, never answered
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/a.whl"
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            get(url, timeout=urllib3.Timeout(connect=2.0, read=0.2))
        assert time.monotonic() - started < 2
