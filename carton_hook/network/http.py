"""HTTP for both halves of carton: the urllib3 pools (one per proxy and CA bundle, for the
whole process), the proxy rules urllib3 does not read, and redirects followed by hand so
that each URL is judged before anything connects to it and https never leads elsewhere
(for a first run's downloads too, which go through direct.py where no proxy may apply).

urllib3 ignores `HTTPS_PROXY`/`NO_PROXY`, so they are read here (with urllib's own
rules); `SSL_CERT_FILE` is honoured by the default SSL context, and `CARTON_CA_BUNDLE`
overrides it. Retries and timeouts are the caller's policy, given per request: the
runtime retries a download its own way (resuming it), the build half lets urllib3 retry.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from carton_hook.errors import FetchError
from carton_hook.formats.urls import connect_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_REDIRECTS = 5
_POOLS: dict[tuple[str | None, str | None], Any] = {}
_POOLS_LOCK = threading.Lock()


def proxies_may_apply() -> bool:
    """Whether any proxy setting may apply: urllib reads them from the environment
    (`*_proxy`, in any case), and on macOS and Windows from the system's settings too."""
    return sys.platform in ("darwin", "win32") or any(
        name.lower().endswith("_proxy") for name in os.environ)


def pool_for(url: str) -> Any:
    """The urllib3 pool for `url`: through the proxy the environment names for its scheme
    unless `NO_PROXY` says otherwise, with `CARTON_CA_BUNDLE` as the CA bundle if set."""
    import urllib3

    parts = urlsplit(url)
    proxy = _proxy(parts.scheme, parts.hostname or "", parts.port)
    ca = os.environ.get("CARTON_CA_BUNDLE") or None
    with _POOLS_LOCK:
        pool = _POOLS.get((proxy, ca))
        if pool is None:
            pool = (urllib3.ProxyManager(proxy, ca_certs=ca) if proxy
                    else urllib3.PoolManager(ca_certs=ca))
            _POOLS[proxy, ca] = pool
    return pool


def _proxy(scheme: str, host: str, port: int | None) -> str | None:
    """The proxy for a URL, by urllib's rules: a NO_PROXY entry names a host, a domain
    or a host:port. urllib.request (~1 ms to import, and a first run's worker imports it
    before its downloads start) is imported only where a setting may apply."""
    if not proxies_may_apply():
        return None
    import urllib.request

    proxy = urllib.request.getproxies().get(scheme)
    if proxy and (urllib.request.proxy_bypass(host) or (
            port is not None and urllib.request.proxy_bypass(f"{host}:{port}"))):
        return None
    return proxy


def open_url(url: str, headers: dict[str, str], what: str, *, retries: Any = False,
             timeout: Any = None,
             judge: Callable[[str], str | None] = connect_problem) -> tuple[Any, str]:
    """GET `url` through urllib3: the response (its body unread, any status but a
    redirect) and the URL that gave it, redirects followed by `follow`. urllib3's own
    errors (connection, timeout, TLS) pass through. The body is not decoded: what is
    hashed is what was sent (`Accept-Encoding: identity` is asked for)."""
    def send(current: str, sent: dict[str, str]) -> Any:
        return pool_for(current).request(
            "GET", current, preload_content=False, decode_content=False, redirect=False,
            retries=retries, timeout=timeout, headers=sent)

    return follow(url, headers, what, send, judge)


def follow(url: str, headers: dict[str, str], what: str,
           send: Callable[[str, dict[str, str]], Any],
           judge: Callable[[str], str | None]) -> tuple[Any, str]:
    """GET `url` with `send(url, headers)` (urllib3's, or direct.py's): the response that
    is not a redirect, and the URL that gave it. Up to MAX_REDIRECTS redirects are
    followed here: each URL is judged by `judge` before anything connects to it, and
    https never leads to http. Raises FetchError for a URL refused."""
    sent = {**headers, "Accept-Encoding": "identity"}
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        problem = judge(current)
        if problem:
            raise FetchError(f"{what}: refusing to download {problem}")
        resp = send(current, sent)
        if resp.status not in (301, 302, 303, 307, 308):
            return resp, current
        location = resp.headers.get("Location")
        # A body left unread would break the next request on this keep-alive
        # connection; draining it could take forever.
        resp.close()
        resp.release_conn()
        if not location:
            raise FetchError(f"{what}: redirect without a Location from {current}")
        target = urljoin(current, location)
        if urlsplit(current).scheme == "https" and urlsplit(target).scheme != "https":
            raise FetchError(f"{what}: refusing to follow a redirect from https to {target!r}")
        current = target
    raise FetchError(f"{what}: more than {MAX_REDIRECTS} redirects from {url}")
