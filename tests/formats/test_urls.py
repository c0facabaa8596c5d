"""The URL judge (THREATS N6, M1): what carton may connect to, judged so that the parser
that connects reads the same host. Pure: nothing here opens a socket."""

from __future__ import annotations

import pytest

from carton_hook.formats.urls import connect_problem, url_problem

GOOD = [
    "https://files.pythonhosted.org/packages/ab/cd/six-1.17.0-py2.py3-none-any.whl",
    "https://files.example.org:8443/x.whl?token=a%20b#sha256=00",
    "https://[2001:db8::1]/x.whl",
    "http://127.0.0.1/x.whl",
    "http://127.0.0.1:8080/simple/demo-pkg/x.whl",
    "http://localhost:9/x.whl",
    "http://LOCALHOST:9/x.whl",
    "http://[::1]:9/x.whl",
]


@pytest.mark.parametrize("url", GOOD)
def test_https_and_loopback_http_are_accepted_by_both_parsers(url: str) -> None:
    assert url_problem(url) is None
    assert connect_problem(url) is None


# Each pair: a URL, and the words of its refusal.
AMBIGUOUS = [
    # urllib.parse reads host 127.0.0.1 (the "\" is userinfo to it); urllib3, remote.example
    ("http://remote.example\\@127.0.0.1:8765/x.whl", "printable ASCII"),
    ("http://127.0.0.1@remote.example/x.whl", "user information"),
    ("https://user:secret@files.example.org/x.whl", "user information"),
    ("http://127.0.0.1:8765\\@remote.example/x.whl", "printable ASCII"),
    ("https://files.example.org/x.whl\r\nHost: remote.example", "printable ASCII"),
    ("https://files.example.org/x\n.whl", "printable ASCII"),
    ("https://files.example.org/x\t.whl", "printable ASCII"),
    ("https://files.example.org/x\x00.whl", "printable ASCII"),
    ("https://files.example.org/x .whl", "printable ASCII"),
    ("https://exämple.org/x.whl", "printable ASCII"),
    ("https://files.example.org\u202e/x.whl", "printable ASCII"),
    ("http://127.0.0.1%2eremote.example/x.whl", "host must be"),
    ("http://127.0.0.1:80:80/x.whl", "host must be"),
    ("https://files.example.org:99999/x.whl", "host must be"),
    ("https://files.example.org:http/x.whl", "host must be"),
    ("http://[::1/x.whl", "not a valid URL"),
    ("https://" + "a" * 9000 + ".org/x.whl", "longer than"),
]


@pytest.mark.parametrize(("url", "words"), AMBIGUOUS)
def test_ambiguous_urls_are_refused(url: str, words: str) -> None:
    problem = url_problem(url)
    assert problem is not None and words in problem
    assert connect_problem(url) == problem


@pytest.mark.parametrize("url", [
    "http://files.example.org/x.whl", "http://127.0.0.1.example.org/x.whl",
    "http://0x7f.1/x.whl", "http://2130706433/x.whl", "ftp://127.0.0.1/x.whl",
    "file:///tmp/x.whl", "file://localhost/tmp/x.whl", "https:///x.whl", "x.whl",
    "//files.example.org/x.whl", "javascript:alert(1)",
])
def test_plain_http_off_loopback_and_other_schemes_are_refused(url: str) -> None:
    problem = url_problem(url)
    assert problem is not None and "only https URLs" in problem


def test_a_url_that_is_not_a_string_is_refused() -> None:
    assert url_problem(42) == "expected a string"
