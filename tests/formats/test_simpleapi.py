"""The simple-API page reader both halves use: PEP 691 JSON and PEP 503 HTML."""

from __future__ import annotations

import json

import pytest

from carton_hook.formats.simpleapi import IndexFile, parse_project_page

PAGE = "https://index.example/simple/foo/"
JSON = "application/vnd.pypi.simple.v1+json"


def test_a_json_page_gives_absolute_urls_hashes_and_yanks() -> None:
    body = json.dumps({"meta": {"api-version": "1.0"}, "name": "foo", "files": [
        {"filename": "foo-1.0-py3-none-any.whl", "url": "../../f/foo-1.0-py3-none-any.whl#x",
         "hashes": {"sha256": "AB" * 32}},
        {"filename": "foo-1.1.tar.gz", "url": "https://cdn.example/foo-1.1.tar.gz",
         "hashes": {}, "yanked": "broken"},
        {"filename": "foo-1.0-py3-none-any.whl", "url": "https://elsewhere/second"},
        {"url": "no-filename"}, "not a dict"]}).encode()
    assert parse_project_page(body, f"{JSON}; charset=utf-8", PAGE) == {
        "foo-1.0-py3-none-any.whl": IndexFile(
            "foo-1.0-py3-none-any.whl", "https://index.example/f/foo-1.0-py3-none-any.whl",
            "ab" * 32),
        "foo-1.1.tar.gz": IndexFile("foo-1.1.tar.gz", "https://cdn.example/foo-1.1.tar.gz",
                                    None, yanked=True)}


def test_an_html_page_reads_hashes_from_fragments() -> None:
    body = (b'<html><body><a href="/f/foo-1.0.tar.gz#sha256=CD' + b"cd" * 31 + b'">x</a>'
            b'<a href="foo-1.1.tar.gz" data-yanked="">y</a><a>no href</a>'
            b'<a href="/f/foo-1.0.tar.gz">again</a></body></html>')
    assert parse_project_page(body, "text/html", PAGE) == {
        "foo-1.0.tar.gz": IndexFile("foo-1.0.tar.gz", "https://index.example/f/foo-1.0.tar.gz",
                                    "cd" * 32),
        "foo-1.1.tar.gz": IndexFile("foo-1.1.tar.gz",
                                    "https://index.example/simple/foo/foo-1.1.tar.gz",
                                    None, yanked=True)}


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"files": 3}', b'{"name": "foo"}'])
def test_a_json_page_that_is_not_a_project_page_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match="not a PEP 691 project page"):
        parse_project_page(body, "application/json", PAGE)
