"""The one judge of every URL carton may connect to: a locked wheel's URL, each redirect,
a mirror's pages and files, the index the build half asks.

The rule is https to any host, or plain http to a loopback host. A rule is only as good
as the parser that applies it: `http://remote.example\\@127.0.0.1/x.whl` is loopback to
`urllib.parse` and `remote.example` to urllib3, which connects. So nothing ambiguous is
judged at all: a URL must be printable ASCII with no space or backslash, carry no user
information, and name its host as letters, digits, dots and hyphens (or a bracketed IPv6
address) with an optional numeric port. `connect_problem`, used right before connecting,
also asks urllib3's parser and refuses the URL unless both read the same scheme, host
and port.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_LENGTH = 8192
_NETLOC = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
_PRINTABLE = re.compile(r"[!-\[\]-~]*")  # printable ASCII, no space, no backslash


def url_problem(url: object) -> str | None:
    """Why carton may not connect to `url`, or None."""
    if not isinstance(url, str):
        return "expected a string"
    if len(url) > MAX_LENGTH:
        return f"{url[:60]!r}...: a URL longer than {MAX_LENGTH} characters is refused"
    if not _PRINTABLE.fullmatch(url):
        return (f"{url!r}: a URL may hold only printable ASCII, with no space, backslash or "
                "control character (percent-encode them)")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        return f"{url!r} is not a valid URL ({exc})"
    rule = f"{url!r}: only https URLs (or http to a loopback host) may be fetched"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return rule
    if "@" in parts.netloc:
        return f"{url!r}: a URL with user information (user@host) is refused"
    netloc = _NETLOC.fullmatch(parts.netloc)
    if netloc is None or (netloc["port"] is not None and int(netloc["port"]) > 65535):
        return f"{url!r}: the host must be a name or an IP address, with an optional port"
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        return rule
    return None


def connect_problem(url: str) -> str | None:
    """`url_problem`, then the parser that connects (urllib3's) must read the same scheme,
    host and port as the one that judged. Imports urllib3: for the worker only."""
    problem = url_problem(url)
    if problem:
        return problem
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    parts = urlsplit(url)
    try:
        seen = parse_url(url)
    except LocationParseError as exc:
        return f"{url!r} is not a valid URL ({exc})"
    host = (seen.host or "").strip("[]").lower()
    if (seen.scheme, host, seen.port) != (parts.scheme, parts.hostname, parts.port):
        return f"{url!r}: two URL parsers read different hosts; refused"
    return None
