"""`CARTON_INDEX_URL`: fetch each locked file by its filename from a mirror's simple API
(PEP 691 JSON where the mirror offers it, PEP 503 HTML otherwise).

For machines that only see an internal mirror. Whatever the mirror serves is still
checked against the lock's sha256 and size (a mirror is trusted with nothing), and the
URL recorded in the lock stays the fallback: a file the mirror lacks, or a mirror that
does not answer, costs one request and a line of warning, not the run. Pages are read
once per project per worker.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urljoin

from carton_hook.errors import MirrorError
from carton_hook.formats.distnames import canonical_name
from carton_hook.formats.urls import url_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
    from carton_hook.formats.simpleapi import ACCEPT
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
    # The page's reader (html.parser with it: ~4 ms of the worker) only where a mirror is
    # set: every first run's download asks this module whether one is.
    from carton_hook.formats.simpleapi import MAX_PAGE, parse_project_page

    if resp.status == 404:
        return {}
    if resp.status != 200:
        raise MirrorError(f"{page} answered HTTP {resp.status}")
    data = resp.read(MAX_PAGE + 1, decode_content=True)
    if len(data) > MAX_PAGE:
        raise MirrorError(f"the project page {page} is larger than {MAX_PAGE >> 20} MiB")
    try:
        files = parse_project_page(data, resp.headers.get("Content-Type", ""), base)
    except ValueError as exc:
        raise MirrorError(f"cannot read the project page {page}: {exc}") from exc
    return {name: f.url for name, f in files.items()}
