"""Ask the public index whether a file is on it: by filename and sha256, never by host.

A mirror or a `file://` extra index that serves the identical file still gets the
public URL recorded. PEP 691 JSON is asked for first; PEP 503 HTML (hashes in the
links' `#sha256=` fragments) is read when that is what the index answers.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urljoin

import urllib3

from carton_backend.errors import IndexLookupError
from carton_backend.network.httpclient import HttpClient
from carton_hook.errors import FetchError
from carton_hook.formats.distnames import canonical_name
from carton_hook.formats.simpleapi import ACCEPT, IndexFile, parse_project_page
from carton_hook.formats.urls import url_problem

DEFAULT_PYPI_URL = "https://pypi.org/simple/"


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
        except (urllib3.exceptions.HTTPError, FetchError) as exc:
            raise IndexLookupError(
                f"cannot reach the public index at {url} to check whether {project}'s files "
                f"are on it ({exc}); check the network, set CARTON_PYPI_URL, or set "
                f'bundle = "all"') from exc
        if resp.status == 404:
            return {}
        if resp.status != 200:
            raise IndexLookupError(f"{url} answered HTTP {resp.status}")
        try:
            return parse_project_page(resp.data, resp.headers.get("Content-Type") or "",
                                      final_url)
        except ValueError as exc:
            raise IndexLookupError(str(exc)) from exc
