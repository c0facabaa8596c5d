"""PublicIndex against loopback indexes: PEP 503 HTML (`pypi`) and PEP 691 JSON (`private`)."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from urllib3.util import Retry

from carton_backend.errors import BuildError, IndexLookupError
from carton_backend.network import httpclient
from carton_backend.network.httpclient import HttpClient
from carton_backend.network.pypi import DEFAULT_PYPI_URL, IndexFile, PublicIndex, pypi_url

from ...factory import make_wheel
from ...indexserver import JSON_TYPE, PackageIndex


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def page_requests(index: PackageIndex) -> list[str]:
    return [r for r in index.requests if r.startswith("/simple/")]


@pytest.fixture(params=["html", "json"])
def index(request: pytest.FixtureRequest) -> PackageIndex:
    """Each test runs against both kinds of index."""
    name = "pypi" if request.param == "html" else "private"
    idx: PackageIndex = request.getfixturevalue(name)
    assert idx.json is (request.param == "json")
    return idx


class Routes:
    """A loopback server answering fixed responses per path, recording request headers."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.routes = routes
        self.seen: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.seen.append((self.path, dict(self.headers.items())))
                status, headers, body = owner.routes.get(
                    self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def routes() -> Iterator[Routes]:
    server = Routes({})
    yield server
    server.stop()


def test_find_hit(tmp_path: Path, index: PackageIndex) -> None:
    wheel = index.add(make_wheel(tmp_path / "w", "Foo_Bar", "1.0"))
    index.add(make_wheel(tmp_path / "w", "Foo_Bar", "2.0"))
    public = PublicIndex(index.url, HttpClient())
    entry = public.find("foo-bar", wheel.name, sha256(wheel))
    assert entry == IndexFile(filename="foo_bar-1.0-py3-none-any.whl",
                              url=index.file_url("foo_bar-1.0-py3-none-any.whl"),
                              sha256=sha256(wheel), yanked=False)
    # relative hrefs ("../../files/...") are resolved against the page: absolute URLs
    assert entry.url.startswith("http://127.0.0.1:")
    assert entry.url == f"{index.url.removesuffix('/simple/')}/files/{wheel.name}"


def test_find_miss_on_other_sha256(tmp_path: Path, index: PackageIndex) -> None:
    wheel = index.add(make_wheel(tmp_path / "w", "foo", "1.0"))
    public = PublicIndex(index.url, HttpClient())
    assert public.find("foo", wheel.name, "0" * 64) is None
    # the index advertises another hash for the very same file name
    index.wrong_hashes[wheel.name] = "f" * 64
    fresh = PublicIndex(index.url, HttpClient())
    assert fresh.find("foo", wheel.name, sha256(wheel)) is None
    assert fresh.files("foo")[wheel.name].sha256 == "f" * 64


def test_find_miss_on_other_filename(tmp_path: Path, index: PackageIndex) -> None:
    wheel = index.add(make_wheel(tmp_path / "w", "foo", "1.0"))
    public = PublicIndex(index.url, HttpClient())
    assert public.find("foo", "foo-1.0-py3-none-manylinux1_x86_64.whl", sha256(wheel)) is None


def test_find_miss_on_404_project(tmp_path: Path, index: PackageIndex) -> None:
    index.add(make_wheel(tmp_path / "w", "foo", "1.0"))
    public = PublicIndex(index.url, HttpClient())
    assert public.find("nope", "nope-1.0-py3-none-any.whl", "0" * 64) is None
    assert public.files("nope") == {}
    assert page_requests(index) == ["/simple/nope/"]


def test_pages_fetched_once_per_project(tmp_path: Path, index: PackageIndex) -> None:
    foo = index.add(make_wheel(tmp_path / "w", "foo", "1.0"))
    bar = index.add(make_wheel(tmp_path / "w", "bar", "1.0"))
    public = PublicIndex(index.url, HttpClient())
    index.reset_counts()
    for _ in range(3):
        assert public.find("foo", foo.name, sha256(foo)) is not None
        assert public.find("Foo", foo.name, "0" * 64) is None
        assert public.find("bar", bar.name, sha256(bar)) is not None
        assert public.find("missing", "missing-1.0.tar.gz", "0" * 64) is None
    assert sorted(page_requests(index)) == ["/simple/bar/", "/simple/foo/", "/simple/missing/"]
    assert index.requests == page_requests(index)  # no file was downloaded


def test_percent_encoded_filename(tmp_path: Path, index: PackageIndex) -> None:
    wheel = index.add(make_wheel(tmp_path / "w", "torch", "2.3.0+cpu"))
    assert wheel.name == "torch-2.3.0+cpu-py3-none-any.whl"
    public = PublicIndex(index.url, HttpClient())
    entry = public.find("torch", wheel.name, sha256(wheel))
    assert entry is not None
    assert entry.filename == "torch-2.3.0+cpu-py3-none-any.whl"
    assert entry.url == index.file_url(wheel.name)
    assert entry.url.endswith("/files/torch-2.3.0%2Bcpu-py3-none-any.whl")


def test_sdists_listed(tmp_path: Path, index: PackageIndex) -> None:
    sdist = tmp_path / "foo-1.0.tar.gz"
    sdist.write_bytes(b"not really an sdist")
    index.add(sdist)
    public = PublicIndex(index.url, HttpClient())
    entry = public.find("foo", "foo-1.0.tar.gz", sha256(sdist))
    assert entry is not None
    assert entry.url == index.file_url("foo-1.0.tar.gz")


def test_json_is_asked_for_first(routes: Routes) -> None:
    body = json.dumps({"meta": {"api-version": "1.0"}, "name": "foo", "files": [
        {"filename": "foo-1.0-py3-none-any.whl", "url": "/f/foo-1.0-py3-none-any.whl#x",
         "hashes": {"sha256": "A" * 64}, "yanked": "broken build"},
        {"filename": "foo-1.1-py3-none-any.whl", "url": "https://cdn.example/foo-1.1.whl",
         "hashes": {}},
        {"url": "no-filename"},
        "not a dict",
    ]}).encode()
    routes.routes["/simple/foo/"] = (200, {"Content-Type": JSON_TYPE}, body)
    files = PublicIndex(routes.root + "/simple/", HttpClient()).files("foo")
    accept = routes.seen[0][1]["Accept"]
    assert accept.startswith(JSON_TYPE + ",")
    assert files == {
        "foo-1.0-py3-none-any.whl": IndexFile(
            "foo-1.0-py3-none-any.whl", routes.root + "/f/foo-1.0-py3-none-any.whl",
            "a" * 64, yanked=True),
        "foo-1.1-py3-none-any.whl": IndexFile(
            "foo-1.1-py3-none-any.whl", "https://cdn.example/foo-1.1.whl", None),
    }


def test_html_yanked_and_hashless_links(routes: Routes) -> None:
    body = (b'<html><body>'
            b'<a href="../../f/foo-1.0.tar.gz#sha256=ABCD" data-yanked="">foo-1.0.tar.gz</a>'
            b'<a href="https://cdn.example/foo-1.1.tar.gz#md5=00">foo-1.1.tar.gz</a>'
            b'<a>no href</a></body></html>')
    routes.routes["/simple/foo/"] = (200, {"Content-Type": "text/html; charset=utf-8"}, body)
    files = PublicIndex(routes.root + "/simple/", HttpClient()).files("foo")
    assert files == {
        "foo-1.0.tar.gz": IndexFile("foo-1.0.tar.gz", routes.root + "/f/foo-1.0.tar.gz",
                                    "abcd", yanked=True),
        "foo-1.1.tar.gz": IndexFile("foo-1.1.tar.gz", "https://cdn.example/foo-1.1.tar.gz",
                                    None),
    }


def test_redirect_to_another_host(routes: Routes, pypi: PackageIndex, tmp_path: Path) -> None:
    wheel = pypi.add(make_wheel(tmp_path / "w", "foo", "1.0"))
    routes.routes["/simple/foo/"] = (301, {"Location": pypi.url + "foo/"}, b"")
    entry = PublicIndex(routes.root + "/simple/", HttpClient()).find(
        "foo", wheel.name, sha256(wheel))
    assert entry is not None
    assert entry.url == pypi.file_url(wheel.name)  # relative to the page it landed on


def test_relative_redirect(routes: Routes) -> None:
    routes.routes["/simple/foo/"] = (302, {"Location": "/mirror/x/foo/"}, b"")
    routes.routes["/mirror/x/foo/"] = (
        200, {"Content-Type": "text/html"},
        b'<a href="../../files/foo-1.0.tar.gz#sha256=ab">foo-1.0.tar.gz</a>')
    files = PublicIndex(routes.root + "/simple/", HttpClient()).files("foo")
    assert files["foo-1.0.tar.gz"].url == routes.root + "/mirror/files/foo-1.0.tar.gz"


def test_bad_json_page(routes: Routes) -> None:
    routes.routes["/simple/foo/"] = (200, {"Content-Type": JSON_TYPE}, b'{"name": "foo"}')
    with pytest.raises(IndexLookupError) as info:
        PublicIndex(routes.root + "/simple/", HttpClient()).files("foo")
    assert str(info.value).startswith(f"{routes.root}/simple/foo/ is not a PEP 691 project page")


def test_http_error_status(routes: Routes) -> None:
    routes.routes["/simple/foo/"] = (403, {"Content-Type": "text/plain"}, b"forbidden")
    with pytest.raises(IndexLookupError) as info:
        PublicIndex(routes.root + "/simple/", HttpClient()).files("foo")
    assert str(info.value) == f"{routes.root}/simple/foo/ answered HTTP 403"


def test_unreachable_index(monkeypatch: pytest.MonkeyPatch) -> None:
    # no back-off between attempts: the failure is the same, only faster
    monkeypatch.setattr(httpclient, "RETRY", Retry(total=1, backoff_factor=0))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}/simple/"
    public = PublicIndex(base, HttpClient())
    with pytest.raises(IndexLookupError) as info:
        public.find("foo", "foo-1.0-py3-none-any.whl", "0" * 64)
    err = info.value
    assert isinstance(err, BuildError)
    message = str(err)
    assert message.startswith(f"cannot reach the public index at {base}foo/ to check whether "
                              "foo's files are on it (")
    assert message.endswith('; check the network, set CARTON_PYPI_URL, or set bundle = "all"')


@pytest.mark.parametrize("url", ["http://pypi.example.com/simple/", "ftp://127.0.0.1/simple/",
                                 "file:///srv/simple/", "pypi.org/simple/"])
def test_base_url_refused(url: str) -> None:
    with pytest.raises(IndexLookupError) as info:
        PublicIndex(url, HttpClient())
    assert str(info.value) == (f"CARTON_PYPI_URL {url!r}: only https URLs (or http to a "
                               "loopback host) may be fetched")


@pytest.mark.parametrize("url", ["https://pypi.org/simple/", "http://127.0.0.1:1/simple/",
                                 "http://localhost/simple/"])
def test_base_url_accepted(url: str) -> None:
    assert PublicIndex(url, HttpClient()).base_url == url


def test_pypi_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTON_PYPI_URL", raising=False)
    assert pypi_url() == DEFAULT_PYPI_URL == "https://pypi.org/simple/"
    monkeypatch.setenv("CARTON_PYPI_URL", "https://mirror.example/pypi/simple")
    assert pypi_url() == "https://mirror.example/pypi/simple/"
    monkeypatch.setenv("CARTON_PYPI_URL", "")
    assert pypi_url() == DEFAULT_PYPI_URL
