"""Ask the public index whether a file is on it: by filename and sha256, never by host.

A mirror or a `file://` extra index that serves the identical file still gets the
public URL recorded. PEP 691 JSON is asked for first; PEP 503 HTML (hashes in the
links' `#sha256=` fragments) is read when that is what the index answers.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

import urllib3

from carton_hook.formats.lockfile import canonical_name
from carton_hook.formats.urls import url_problem

from .errors import IndexLookupError
from .httpclient import HttpClient

DEFAULT_PYPI_URL = "https://pypi.org/simple/"
ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
          "text/html;q=0.01")


@dataclass(frozen=True)
class IndexFile:
    """One file the index lists for a project."""

    filename: str
    url: str
    sha256: str | None
    yanked: bool = False


def pypi_url() -> str:
    """The public index: `CARTON_PYPI_URL`, or PyPI."""
    url = os.environ.get("CARTON_PYPI_URL") or DEFAULT_PYPI_URL
    return url if url.endswith("/") else url + "/"


class PublicIndex:
    """A simple-API index, each project's page fetched once."""

    def __init__(self, base_url: str, client: HttpClient) -> None:
        problem = url_problem(base_url)
        if problem:
            raise IndexLookupError(f"CARTON_PYPI_URL {problem}")
        self.base_url = base_url
        self._client = client
        self._pages: dict[str, dict[str, IndexFile]] = {}
        self._lock = threading.Lock()

    def find(self, project: str, filename: str, sha256: str) -> IndexFile | None:
        """The index's entry for exactly this file (same name, same sha256), or None."""
        entry = self.files(project).get(filename)
        if entry is None or entry.sha256 != sha256:
            return None
        return entry

    def files(self, project: str) -> dict[str, IndexFile]:
        key = canonical_name(project)
        with self._lock:
            if key in self._pages:
                return self._pages[key]
        page = self._fetch(key)
        with self._lock:
            self._pages[key] = page
        return page

    def _fetch(self, project: str) -> dict[str, IndexFile]:
        url = urljoin(self.base_url, f"{project}/")
        try:
            resp, final_url = self._client.get(url, headers={"Accept": ACCEPT})
        except urllib3.exceptions.HTTPError as exc:
            raise IndexLookupError(
                f"cannot reach the public index at {url} to check whether {project}'s files "
                f"are on it ({exc}); check the network, set CARTON_PYPI_URL, or set "
                f'bundle = "all"') from exc
        if resp.status == 404:
            return {}
        if resp.status != 200:
            raise IndexLookupError(f"{url} answered HTTP {resp.status}")
        ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        body = resp.data
        if ctype.endswith("+json") or ctype == "application/json":
            return _parse_json(body, final_url)
        return _parse_html(body.decode("utf-8", "replace"), final_url)


def _parse_json(body: bytes, page_url: str) -> dict[str, IndexFile]:
    try:
        data = json.loads(body)
        entries = data["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexLookupError(f"{page_url} is not a PEP 691 project page ({exc})") from exc
    out = {}
    for entry in entries:
        if not isinstance(entry, dict) or "filename" not in entry or "url" not in entry:
            continue
        hashes = entry.get("hashes") or {}
        sha = hashes.get("sha256")
        out[entry["filename"]] = IndexFile(
            filename=entry["filename"],
            url=urljoin(page_url, entry["url"]).split("#", 1)[0],
            sha256=sha.lower() if isinstance(sha, str) else None,
            yanked=bool(entry.get("yanked")),
        )
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))


def _parse_html(text: str, page_url: str) -> dict[str, IndexFile]:
    parser = _Links()
    parser.feed(text)
    base = page_url
    out = {}
    for attrs in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        url = urljoin(base, href)
        path, _, fragment = url.partition("#")
        filename = unquote(urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1])
        sha = None
        if fragment.startswith("sha256="):
            sha = fragment.split("=", 1)[1].lower()
        out[filename] = IndexFile(filename=filename, url=path, sha256=sha,
                                  yanked="data-yanked" in attrs)
    return out
