"""Read a project page of a simple-API index: PEP 691 JSON, or PEP 503 HTML (hashes in
the links' `#sha256=` fragments). Both halves read pages through here: the build half
asks the public index whether a file is on it, the runtime asks a mirror where a file is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

# What to ask an index for: JSON first, HTML where that is all it serves.
ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
          "text/html;q=0.01")
# PyPI's largest project pages are a few MiB.
MAX_PAGE = 64 << 20


@dataclass(frozen=True)
class IndexFile:
    """One file a project page lists: its absolute URL (without fragment), and its sha256
    where the page gives one."""

    filename: str
    url: str
    sha256: str | None
    yanked: bool = False


def is_json(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return kind.endswith("+json") or kind == "application/json"


def parse_project_page(body: bytes, content_type: str, page_url: str) -> dict[str, IndexFile]:
    """filename -> IndexFile for each file the page lists (the first, if one is listed
    twice), with URLs made absolute against `page_url` (the page's URL after redirects).
    Raises ValueError for a JSON page that is not a PEP 691 project page."""
    if is_json(content_type):
        return _from_json(body, page_url)
    return _from_html(body.decode("utf-8", "replace"), page_url)


def _from_json(body: bytes, page_url: str) -> dict[str, IndexFile]:
    try:
        entries = json.loads(body)["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{page_url} is not a PEP 691 project page ({exc})") from exc
    if not isinstance(entries, list):
        raise ValueError(f"{page_url} is not a PEP 691 project page (files is not a list)")
    out: dict[str, IndexFile] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        filename, url = entry.get("filename"), entry.get("url")
        if not isinstance(filename, str) or not isinstance(url, str):
            continue
        hashes = entry.get("hashes")
        sha = hashes.get("sha256") if isinstance(hashes, dict) else None
        out.setdefault(filename, IndexFile(
            filename=filename, url=urljoin(page_url, url).split("#", 1)[0],
            sha256=sha.lower() if isinstance(sha, str) else None,
            yanked=bool(entry.get("yanked"))))
    return out


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))


def _from_html(text: str, page_url: str) -> dict[str, IndexFile]:
    parser = _Anchors()
    parser.feed(text)
    out: dict[str, IndexFile] = {}
    for attrs in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        path, _, fragment = urljoin(page_url, href).partition("#")
        filename = unquote(urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1])
        sha = fragment.split("=", 1)[1].lower() if fragment.startswith("sha256=") else None
        out.setdefault(filename, IndexFile(filename=filename, url=path, sha256=sha,
                                           yanked="data-yanked" in attrs))
    return out
