"""Download one locked wheel: https only (http only to loopback), sha256 and size checked
while streaming, redirects checked hop by hop, retries with backoff, timeouts and an
overall deadline. Runs in the worker, which may import urllib3.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from .errors import CartonError
from .lockfile import url_problem
from .paths import env_flag

CHUNK = 1 << 20
ATTEMPTS = 4
MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
DEADLINE = float(os.environ.get("CARTON_FETCH_DEADLINE", "600"))


class FetchError(CartonError, OSError):
    """A wheel could not be downloaded, or what arrived is not the locked file."""


def offline() -> bool:
    return env_flag("CARTON_OFFLINE")


def fetch(url: str, sha256: str, size: int, dest: Path, *, what: str) -> None:
    """Write the file at `url` to `dest` (created, must not exist), or raise FetchError."""
    if offline():
        raise FetchError(f"{what} is not in the cache and CARTON_OFFLINE is set; "
                         "run once online (or `python -m carton_hook` with the network) first")
    started = time.monotonic()
    last: BaseException | None = None
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(min(0.25 * 2 ** attempt, 4.0))
        if time.monotonic() - started > DEADLINE:
            break
        try:
            _attempt(url, sha256, size, dest, what, started)
            return
        except _Retry as exc:
            last = exc.__cause__ or exc
            dest.unlink(missing_ok=True)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
    raise FetchError(f"cannot download {what} from {url}: {last}")


class _Retry(Exception):
    pass


def _attempt(url: str, sha256: str, size: int, dest: Path, what: str, started: float) -> None:
    import urllib3

    current = url
    for _ in range(MAX_REDIRECTS + 1):
        problem = url_problem(current)
        if problem:
            raise FetchError(f"{what}: refusing to download {problem}")
        pool = _pool(current)
        try:
            resp = pool.request("GET", current, preload_content=False, decode_content=False,
                                redirect=False, retries=False,
                                headers={"Accept-Encoding": "identity"},
                                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT,
                                                        read=READ_TIMEOUT))
        except urllib3.exceptions.SSLError as exc:
            raise FetchError(f"{what}: TLS failure for {current}: {exc}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise _Retry() from exc
        try:
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.headers.get("Location")
                if not location:
                    raise FetchError(f"{what}: redirect without a Location from {current}")
                target = urljoin(current, location)
                if urlsplit(current).scheme == "https" and urlsplit(target).scheme != "https":
                    raise FetchError(f"{what}: refusing to follow a redirect from https to "
                                     f"{target!r}")
                current = target
                continue
            if resp.status in (429, 500, 502, 503, 504):
                raise _Retry() from FetchError(f"HTTP {resp.status}")
            if resp.status != 200:
                raise FetchError(f"{what}: HTTP {resp.status} from {current}")
            _stream(resp, sha256, size, dest, what, started)
            return
        finally:
            resp.release_conn()
    raise FetchError(f"{what}: more than {MAX_REDIRECTS} redirects from {url}")


def _stream(resp: Any, sha256: str, size: int, dest: Path, what: str,
            started: float) -> None:
    import urllib3

    digest = hashlib.sha256()
    received = 0
    try:
        with dest.open("xb") as out:
            for chunk in resp.stream(CHUNK, decode_content=False):
                received += len(chunk)
                if received > size:
                    raise FetchError(f"{what}: the server sent more than the locked "
                                     f"{size} bytes")
                if time.monotonic() - started > DEADLINE:
                    raise FetchError(f"{what}: download took longer than {DEADLINE:.0f} s")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if isinstance(exc, FetchError):
            raise
        raise _Retry() from exc
    if received < size:
        raise _Retry() from FetchError(f"got {received} of {size} bytes")
    actual = digest.hexdigest()
    if actual != sha256:
        raise FetchError(f"{what}: sha256 of the download is {actual}, the lock says "
                         f"{sha256}; the file on the server is not the locked one")


_POOLS: dict[str | None, Any] = {}


def _pool(url: str) -> Any:
    """A urllib3 pool for `url`: through `HTTPS_PROXY` unless `NO_PROXY` says otherwise
    (urllib3 reads neither), with `CARTON_CA_BUNDLE` as the CA bundle if set."""
    import urllib3

    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and urllib.request.proxy_bypass(parts.hostname or ""):
        proxy = None
    if proxy not in _POOLS:
        ca = os.environ.get("CARTON_CA_BUNDLE")
        _POOLS[proxy] = (urllib3.ProxyManager(proxy, ca_certs=ca) if proxy
                         else urllib3.PoolManager(ca_certs=ca))
    return _POOLS[proxy]
