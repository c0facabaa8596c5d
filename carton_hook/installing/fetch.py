"""Download one locked wheel: https only (http only to loopback), sha256 and size checked
while streaming, redirects checked hop by hop, retries with backoff (and the server's
`Retry-After`), a cut or stalled transfer resumed with `Range`, timeouts and an overall
deadline. Runs in the worker, which may import urllib3. Where no proxy may apply, the
download goes through the standard library (network/direct.py); everything this module
judges is the same either way.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from carton_hook.errors import FetchError
from carton_hook.formats.urls import url_problem
from carton_hook.network import http
from carton_hook.switches import env_flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

CHUNK = 1 << 20
ATTEMPTS = 5
CONNECT_TIMEOUT = float(os.environ.get("CARTON_CONNECT_TIMEOUT", "10"))
READ_TIMEOUT = float(os.environ.get("CARTON_READ_TIMEOUT", "30"))
DEADLINE = float(os.environ.get("CARTON_FETCH_DEADLINE", "600"))
RETRY_STATUSES = (429, 500, 502, 503, 504)



def offline() -> bool:
    return env_flag("CARTON_OFFLINE")


class _Partial:
    """What has arrived so far, kept across attempts so that a cut transfer resumes."""

    def __init__(self, dest: Path, on_bytes: Callable[[int], None] | None = None) -> None:
        self.dest = dest
        self.on_bytes = on_bytes
        self.out: BinaryIO | None = None
        self.digest = hashlib.sha256()
        self.received = 0
        self.validator: str | None = None  # the ETag or Last-Modified of what we have

    def open(self) -> BinaryIO:
        if self.out is None:
            self.out = self.dest.open("xb")
        return self.out

    def restart(self) -> None:
        """Drop what arrived: the server sends the whole file again."""
        out = self.open()
        out.seek(0)
        out.truncate()
        self.digest = hashlib.sha256()
        if self.on_bytes is not None:
            self.on_bytes(-self.received)
        self.received = 0
        self.validator = None

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


def fetch(url: str, sha256: str, size: int, dest: Path, *, what: str,
          on_bytes: Callable[[int], None] | None = None) -> None:
    """Write the file at `url` to `dest` (created, must not exist), or raise FetchError.
    `on_bytes(n)` hears of every chunk (a negative n when a download starts over)."""
    if offline():
        raise FetchError(f"{what} is not in the cache and CARTON_OFFLINE is set; "
                         "run once online (or `python -m carton_hook` with the network) first")
    started = time.monotonic()
    last: BaseException | None = None
    wait = 0.0
    partial = _Partial(dest, on_bytes)
    try:
        for attempt in range(ATTEMPTS):
            if attempt:
                wait = max(wait, min(0.25 * 2 ** attempt, 4.0))
                if time.monotonic() - started + wait > DEADLINE:
                    last = FetchError(f"{last}; the next try (in {wait:.0f} s) would pass the "
                                      f"{DEADLINE:.0f} s deadline (CARTON_FETCH_DEADLINE)")
                    break
                time.sleep(wait)
            try:
                _attempt(url, sha256, size, partial, what, started)
                partial.close()  # the file is read back by name
                return
            except _Retry as exc:
                last = exc.__cause__ or exc
                wait = exc.after
    except BaseException:
        partial.close()
        dest.unlink(missing_ok=True)
        raise
    partial.close()
    dest.unlink(missing_ok=True)
    raise FetchError(f"cannot download {what} from {url}: {last}")


class _Retry(Exception):
    def __init__(self, after: float = 0.0) -> None:
        super().__init__()
        self.after = after


def open_url(url: str, headers: dict[str, str], what: str,
             retries: Any = False) -> tuple[Any, str]:
    """`network.http.open_url` with the runtime's timeouts (CARTON_CONNECT_TIMEOUT,
    CARTON_READ_TIMEOUT) and URL policy."""
    import urllib3

    return http.open_url(url, headers, what, retries=retries,
                         timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT))


def _transport() -> Any:
    """What downloads go through: the standard library's HTTP where no proxy may apply
    (network/direct.py: `import urllib3` cost a first run's worker ~12 ms), urllib3's
    otherwise."""
    return _Urllib3() if http.proxies_may_apply() else _Direct()


class _Urllib3:
    """Downloads through urllib3's pools (network/http.py)."""

    def __init__(self) -> None:
        import urllib3

        self.tls_errors: tuple[type[BaseException], ...] = (urllib3.exceptions.SSLError,)
        self.errors: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError,)

    def open(self, url: str, headers: dict[str, str], what: str) -> tuple[Any, str]:
        return open_url(url, headers, what)


class _Direct:
    """Downloads through the standard library (network/direct.py), judged as urllib3's
    are; the parser that judges each URL is the one whose host and port it connects to."""

    def __init__(self) -> None:
        from carton_hook.network import direct

        self.tls_errors: tuple[type[BaseException], ...] = direct.TLS_ERRORS
        self.errors: tuple[type[BaseException], ...] = direct.ERRORS

    def open(self, url: str, headers: dict[str, str], what: str) -> tuple[Any, str]:
        from carton_hook.network import direct

        def send(current: str, sent: dict[str, str]) -> Any:
            return direct.request(current, sent, CONNECT_TIMEOUT, READ_TIMEOUT)

        return http.follow(url, headers, what, send, url_problem)


def _attempt(url: str, sha256: str, size: int, partial: _Partial, what: str,
             started: float) -> None:
    transport = _transport()
    headers = {"Accept-Encoding": "identity"}
    if partial.received:
        headers["Range"] = f"bytes={partial.received}-"
        if partial.validator:
            headers["If-Range"] = partial.validator
    try:
        resp, current = transport.open(url, headers, what)
    except FetchError:
        raise
    except transport.tls_errors as exc:
        raise FetchError(f"{what}: TLS failure: {exc}") from exc
    except transport.errors as exc:
        raise _Retry() from exc
    done = False
    try:
        if resp.status in RETRY_STATUSES:
            raise _Retry(_retry_after(resp.headers.get("Retry-After"))) from FetchError(
                f"HTTP {resp.status}")
        if resp.status == 416 and partial.received:
            partial.restart()  # the server will not serve the rest: start over
            raise _Retry() from FetchError("HTTP 416 to a resumed download")
        if resp.status == 206 and partial.received:
            _check_content_range(resp.headers.get("Content-Range"), partial, what)
        elif resp.status in (200, 206):
            if partial.received:
                partial.restart()  # Range ignored, or the file changed (If-Range)
            if resp.status == 206:
                _check_content_range(resp.headers.get("Content-Range"), partial, what)
        else:
            raise FetchError(f"{what}: HTTP {resp.status} from {current}")
        partial.validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
        _stream(resp, sha256, size, partial, what, started, (*transport.errors, OSError))
        done = True
    finally:
        if not done:
            resp.close()  # an error or a cut: do not drain the rest
        resp.release_conn()


def _check_content_range(value: str | None, partial: _Partial, what: str) -> None:
    """A 206 must continue exactly where the file stops; anything else is refused."""
    start = None
    if value and value.startswith("bytes "):
        first = value[6:].split("-", 1)[0]
        start = int(first) if first.isdigit() else None
    if start != partial.received:
        raise FetchError(f"{what}: asked to resume at byte {partial.received}, the server "
                         f"sent Content-Range {value!r}")


def _retry_after(value: str | None) -> float:
    """Seconds to wait that a `Retry-After` header asks for (a number or an HTTP date)."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())


def _stream(resp: Any, sha256: str, size: int, partial: _Partial, what: str,
            started: float, failures: tuple[type[BaseException], ...]) -> None:
    """Write the body to `partial`, checked; `failures` are the errors of a read or a
    write worth another attempt (a full disk is not, though an OSError)."""
    before = partial.received
    try:
        out = partial.open()
        for chunk in _chunks(resp):
            if partial.received + len(chunk) > size:
                raise FetchError(f"{what}: the server sent more than the locked "
                                 f"{size} bytes")
            if time.monotonic() - started > DEADLINE:
                raise FetchError(f"{what}: download took longer than {DEADLINE:.0f} s")
            partial.digest.update(chunk)
            out.write(chunk)
            partial.received += len(chunk)
            if partial.on_bytes is not None:
                partial.on_bytes(len(chunk))
        # Flushed, not fsynced: the file is the install's own, in its work folder, read
        # back from the page cache and removed once unpacked; a crash discards the work
        # folder. Syncing wrote each wheel to the disk just before deleting it (numpy +
        # pandas, scikit-learn and torch cold runs 0.98-0.99x without it).
        out.flush()
    except failures as exc:
        if isinstance(exc, FetchError):
            raise
        if isinstance(exc, OSError) and not _transient(exc):
            raise FetchError(f"{what}: cannot write {partial.dest}: {exc}") from exc
        raise _Retry() from exc
    if partial.received < size:
        declared = resp.headers.get("Content-Length")
        if declared is None or not declared.isdigit() or partial.received - before != int(
                declared):
            # Cut short (or no length to tell): ask for the rest.
            raise _Retry() from FetchError(f"got {partial.received} of {size} bytes")
        # A complete response, shorter than the locked file: another file, not a cut one.
        raise FetchError(f"{what}: the server sent a complete file of {partial.received} "
                         f"bytes, the lock says {size}; the file on the server is not the "
                         "locked one")
    actual = partial.digest.hexdigest()
    if actual != sha256:
        raise FetchError(f"{what}: sha256 of the download is {actual}, the lock says "
                         f"{sha256}; the file on the server is not the locked one")


def _chunks(resp: Any) -> Iterator[bytes]:
    """The body as it arrives. `read1` (urllib3 2) returns what one read gives, so bytes
    received before a stall are kept and the resume starts after them; `stream` waits
    for whole chunks and loses a partial one."""
    read1 = getattr(resp, "read1", None)
    if read1 is None:
        yield from resp.stream(CHUNK, decode_content=False)
        return
    while chunk := read1(CHUNK, decode_content=False):
        yield chunk


def _transient(exc: OSError) -> bool:
    """A network error worth retrying, as opposed to a local one (a full disk)."""
    import errno

    return exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                             errno.EPERM, errno.EFBIG)

