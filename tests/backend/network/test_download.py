"""Downloader.fetch: loopback http into a content-addressed cache, and file:// in place."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from carton_backend.errors import BuildError, DownloadError, HashMismatch
from carton_backend.network.download import Downloader, carton_home, url_filename
from carton_backend.network.httpclient import HttpClient
from carton_hook.formats.hashing import file_sha256

from ...factory import make_wheel
from ...faultserver import (
    ConnectProxy,
    Fault,
    FaultServer,
    fault_server,
    gzip_encoded,
    status,
    truncate,
    wrong_bytes,
)
from ...indexserver import PackageIndex


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_requests(index: PackageIndex) -> list[str]:
    return [r for r in index.requests if r.startswith("/files/")]


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_fetch_http_with_sha256(tmp_path: Path, private: PackageIndex, cache: Path) -> None:
    wheel = private.add(make_wheel(tmp_path / "w", "foo", "1.0"))
    digest = sha256(wheel)
    downloader = Downloader(HttpClient(), cache)
    got = downloader.fetch(private.file_url(wheel.name), digest)
    assert got == cache / digest / "foo-1.0-py3-none-any.whl"
    assert got.read_bytes() == wheel.read_bytes()
    assert file_requests(private) == ["/files/foo-1.0-py3-none-any.whl"]
    assert tree(cache) == [".tmp", digest, f"{digest}/foo-1.0-py3-none-any.whl"]
    # the second fetch is served from the cache: no request at all
    private.reset_counts()
    assert downloader.fetch(private.file_url(wheel.name), digest) == got
    assert private.requests == []
    # and so is a fetch by another downloader sharing the cache
    assert Downloader(HttpClient(), cache).fetch(private.file_url(wheel.name), digest) == got
    assert private.requests == []


def test_fetch_without_sha256_keeps_by_content(tmp_path: Path, private: PackageIndex,
                                               cache: Path) -> None:
    wheel = private.add(make_wheel(tmp_path / "w", "foo", "1.0"))
    got = Downloader(HttpClient(), cache).fetch(private.file_url(wheel.name))
    assert got == cache / sha256(wheel) / wheel.name
    assert got.read_bytes() == wheel.read_bytes()


def test_fetch_decodes_filename_and_takes_override(tmp_path: Path, private: PackageIndex,
                                                   cache: Path) -> None:
    wheel = private.add(make_wheel(tmp_path / "w", "torch", "2.3.0+cpu"))
    url = private.file_url(wheel.name)
    assert "%2B" in url
    downloader = Downloader(HttpClient(), cache)
    got = downloader.fetch(url, sha256(wheel))
    assert got == cache / sha256(wheel) / "torch-2.3.0+cpu-py3-none-any.whl"
    renamed = downloader.fetch(url, sha256(wheel), filename="other.whl")
    assert renamed == cache / sha256(wheel) / "other.whl"
    assert renamed.read_bytes() == wheel.read_bytes()


def test_wrong_sha256(tmp_path: Path, private: PackageIndex, cache: Path) -> None:
    wheel = private.add(make_wheel(tmp_path / "w", "foo", "1.0"))
    url = private.file_url(wheel.name)
    wrong = "0" * 64
    with pytest.raises(HashMismatch) as info:
        Downloader(HttpClient(), cache).fetch(url, wrong)
    err = info.value
    assert isinstance(err, DownloadError)
    assert isinstance(err, BuildError)
    assert (err.url, err.expected, err.actual) == (url, wrong, sha256(wheel))
    assert str(err) == (f"{url}: sha256 is {sha256(wheel)}, expected {wrong}; "
                        "the file changed or was tampered with")
    # nothing published, nothing left behind
    assert tree(cache) == [".tmp"]
    assert list((cache / ".tmp").iterdir()) == []


def test_404(private: PackageIndex, cache: Path) -> None:
    url = private.file_url("missing-1.0-py3-none-any.whl")
    with pytest.raises(DownloadError) as info:
        Downloader(HttpClient(), cache).fetch(url, "0" * 64)
    assert not isinstance(info.value, HashMismatch)
    assert str(info.value) == f"{url}: HTTP 404"
    assert info.value.url == url
    assert tree(cache) == [".tmp"]


def test_file_url_read_in_place(tmp_path: Path, cache: Path) -> None:
    wheel = make_wheel(tmp_path / "local dir", "foo", "1.0+local")
    url = wheel.as_uri()
    assert "%20" in url and "%2B" in url  # percent-encoded, decoded back to the path
    downloader = Downloader(HttpClient(), cache)
    assert downloader.fetch(url, sha256(wheel)) == wheel
    assert downloader.fetch(url) == wheel
    assert not cache.exists()  # never copied


def test_file_url_hash_checked(tmp_path: Path, cache: Path) -> None:
    wheel = make_wheel(tmp_path, "foo", "1.0")
    url = wheel.as_uri()
    with pytest.raises(HashMismatch) as info:
        Downloader(HttpClient(), cache).fetch(url, "1" * 64)
    assert info.value.actual == sha256(wheel)
    assert str(info.value).startswith(f"{url}: sha256 is {sha256(wheel)}, expected {'1' * 64}")


def test_file_url_missing(tmp_path: Path, cache: Path) -> None:
    url = (tmp_path / "nope.whl").as_uri()
    with pytest.raises(DownloadError) as info:
        Downloader(HttpClient(), cache).fetch(url)
    assert str(info.value) == f"{url}: no such file"
    url = tmp_path.as_uri()  # a folder is not a file
    with pytest.raises(DownloadError, match="no such file"):
        Downloader(HttpClient(), cache).fetch(url)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/foo-1.0.tar.gz",
                                 "s3://bucket/foo-1.0.tar.gz", "foo-1.0.tar.gz"])
def test_unsupported_scheme(url: str, cache: Path) -> None:
    scheme = url.split("://")[0] if "://" in url else ""
    with pytest.raises(DownloadError) as info:
        Downloader(HttpClient(), cache).fetch(url)
    assert str(info.value) == f"{url}: cannot fetch {scheme!r} URLs"
    assert not cache.exists()


@pytest.mark.parametrize("bad", ["abc", "A" * 64, "g" * 64, "0" * 63])
def test_bad_expected_sha256(bad: str, cache: Path) -> None:
    url = "http://127.0.0.1:1/foo-1.0.tar.gz"
    with pytest.raises(DownloadError) as info:
        Downloader(HttpClient(), cache).fetch(url, bad)
    assert str(info.value) == f"{url}: expected sha256 {bad!r} is not 64 hex digits"


def test_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "x.bin"
    data.write_bytes(b"hello" * 300_000)
    assert file_sha256(data) == hashlib.sha256(b"hello" * 300_000).hexdigest()
    assert url_filename("https://x/a/b/foo-1.0%2Bcpu.tar.gz?x=1#frag") == "foo-1.0+cpu.tar.gz"
    monkeypatch.setenv("CARTON_HOME", str(tmp_path / "home"))
    assert carton_home() == tmp_path / "home"
    assert Downloader(HttpClient()).cache_dir == tmp_path / "home" / "build-cache" / "files"
    monkeypatch.delenv("CARTON_HOME")
    assert carton_home() == Path.home() / ".carton"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CARTON_HOME", "relative")
    assert carton_home() == tmp_path / "relative"  # as the runtime reads it
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    monkeypatch.setenv("CARTON_HOME", "~/c")
    assert carton_home() == tmp_path / "me" / "c"


def test_https_to_http_redirect_is_refused(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """THREATS N6 at pack time: a downgrade is refused before the http server is asked."""
    import shutil
    import ssl
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"), "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    seen: dict[str, list[str]] = {"http": [], "https": []}

    def handler(kind: str, location: str | None) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                seen[kind].append(self.path)
                self.send_response(302 if location else 200)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
        return Handler

    plain = ThreadingHTTPServer(("127.0.0.1", 0), handler("http", None))
    target = f"http://127.0.0.1:{plain.server_address[1]}/x.whl"
    secure = ThreadingHTTPServer(("127.0.0.1", 0), handler("https", target))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    secure.socket = ctx.wrap_socket(secure.socket, server_side=True)
    for server in (plain, secure):
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        monkeypatch.setenv("CARTON_CA_BUNDLE", str(tmp_path / "cert.pem"))
        url = f"https://127.0.0.1:{secure.server_address[1]}/x.whl"
        with pytest.raises(DownloadError, match="refusing to follow a redirect from https"):
            Downloader(HttpClient(), tmp_path / "cache").fetch(url)
        assert seen == {"http": [], "https": ["/x.whl"]}
    finally:
        for server in (plain, secure):
            server.shutdown()
            server.server_close()


# ---------------------------------------------------------------- the build half's network
# rows (THREATS H1, H3, N1, N3, N5, N7), against the fault-injecting HTTPS server.

DATA = bytes(range(251)) * 400
DATA_SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultServer]:
    for var in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    with fault_server(tmp_path / "tls") as server:
        assert server.ca_file is not None
        monkeypatch.setenv("CARTON_CA_BUNDLE", str(server.ca_file))
        yield server


def test_build_half_retries_a_cut_body(files: FaultServer, cache: Path) -> None:
    url = files.add("/w.whl", DATA)
    files.script("/w.whl", truncate(70_000))
    path = Downloader(HttpClient(), cache).fetch(url, DATA_SHA)
    assert path.read_bytes() == DATA
    assert files.count() == 2


def test_build_half_honours_retry_after(files: FaultServer, cache: Path) -> None:
    url = files.add("/w.whl", DATA)
    files.script("/w.whl", status(503, retry_after="1"))
    started = time.monotonic()
    Downloader(HttpClient(), cache).fetch(url, DATA_SHA)
    assert time.monotonic() - started >= 0.9
    assert files.count() == 2


@pytest.mark.parametrize("fault", [wrong_bytes(), gzip_encoded()], ids=["wrong", "gzip"])
def test_build_half_refuses_other_bytes(files: FaultServer, cache: Path, fault: Fault) -> None:
    url = files.add("/w.whl", DATA)
    files.script("/w.whl", fault)
    with pytest.raises(HashMismatch):
        Downloader(HttpClient(), cache).fetch(url, DATA_SHA)
    assert files.requests[0].headers["Accept-Encoding"] == "identity"
    assert not (cache / DATA_SHA).exists()


def test_build_half_does_not_retry_an_untrusted_certificate(
        files: FaultServer, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTON_CA_BUNDLE")
    url = files.add("/w.whl", DATA)
    with pytest.raises(DownloadError, match="certificate"):
        Downloader(HttpClient(), cache).fetch(url, DATA_SHA)
    assert files.count() == 0
    assert files.connections == 1  # one handshake, no retry


def test_build_half_goes_through_https_proxy(files: FaultServer, cache: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy().start()
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        url = files.add("/w.whl", DATA)
        Downloader(HttpClient(), cache).fetch(url, DATA_SHA)
        assert len(proxy.tunnels) == 1
    finally:
        proxy.stop()
