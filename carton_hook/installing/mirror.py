"""`CARTON_INDEX_URL`: fetch each locked file by its filename from a mirror's simple API
(PEP 691 JSON where the mirror offers it, PEP 503 HTML otherwise).

For machines that only see an internal mirror. Whatever the mirror serves is still
checked against the lock's sha256 and size (a mirror is trusted with nothing), and the
URL recorded in the lock stays the fallback: a file the mirror lacks, or a mirror that
does not answer, costs one request and a line of warning, not the run. Pages are read
once per project per worker.
"""

from __future__ import annotations

import json
import os
import threading
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from carton_hook.errors import MirrorError
from carton_hook.formats.lockfile import canonical_name
from carton_hook.formats.urls import url_problem

ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
MAX_PAGE = 64 << 20  # PyPI's largest project pages are a few MiB
_pages: dict[str, dict[str, str]] = {}  # project page URL -> {filename: file URL}
_lock = threading.Lock()



def mirror_index() -> str | None:
    """The mirror's simple API root from `CARTON_INDEX_URL`, ending with `/`, or None."""
    url = os.environ.get("CARTON_INDEX_URL", "").strip()
    return url.rstrip("/") + "/" if url else None


def find(index: str, project: str, filename: str) -> str | None:
    """The mirror's URL for `filename` of `project`, or None if its page lacks it.
    Raises MirrorError when the page cannot be had."""
    page = urljoin(index, canonical_name(project) + "/")
    with _lock:
        files = _pages.get(page)
    if files is None:
        files = _read_page(page)
        with _lock:
            _pages[page] = files
    found = files.get(filename)
    if found is not None and url_problem(found):
        raise MirrorError(f"the mirror lists {filename} at {found!r}, which carton may not "
                          "fetch (https, or http to a loopback host)")
    return found


def _read_page(page: str) -> dict[str, str]:
    import urllib3

    from carton_hook.errors import FetchError
    from carton_hook.installing.fetch import open_url

    problem = url_problem(page)
    if problem:
        raise MirrorError(f"CARTON_INDEX_URL: {problem}")
    try:
        resp, final = open_url(page, {"Accept": ACCEPT}, f"the mirror's page {page}",
                        retries=urllib3.Retry(total=2, backoff_factor=0.2, other=0,
                                              redirect=False))
    except FetchError as exc:  # a redirect to a URL that may not be fetched
        raise MirrorError(str(exc)) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise MirrorError(f"cannot read {page}: {exc}") from exc
    try:
        return _read_files(page, final, resp)
    finally:
        resp.release_conn()


def _read_files(page: str, base: str, resp: Any) -> dict[str, str]:
    if resp.status == 404:
        return {}
    if resp.status != 200:
        raise MirrorError(f"{page} answered HTTP {resp.status}")
    kind = resp.headers.get("Content-Type", "").split(";")[0].strip()
    data = resp.read(MAX_PAGE + 1, decode_content=True)
    if len(data) > MAX_PAGE:
        raise MirrorError(f"the project page {page} is larger than {MAX_PAGE >> 20} MiB")
    try:
        text = data.decode("utf-8")
        if kind.startswith("application/vnd.pypi.simple.v1+json") or kind == "application/json":
            return {f["filename"]: urljoin(base, f["url"]) for f in json.loads(text)["files"]}
        return _links(text, base)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise MirrorError(f"cannot read the project page {page}: {exc}") from exc


def _links(html: str, base: str) -> dict[str, str]:
    """filename -> absolute URL of every anchor of a PEP 503 page (fragment dropped)."""
    found: dict[str, str] = {}

    class Anchors(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            href = dict(attrs).get("href")
            if tag == "a" and href:
                url = urljoin(base, href).split("#", 1)[0]
                name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
                found.setdefault(name, url)

    Anchors().feed(html)
    return found
