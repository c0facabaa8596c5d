"""One urllib3 pool for the build half: retries with backoff, timeouts, proxies, CA bundle.

urllib3 ignores `HTTPS_PROXY`/`NO_PROXY`, so they are read here; `SSL_CERT_FILE` is
honoured by the default SSL context, and `CARTON_CA_BUNDLE` overrides it.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.util import Retry, Timeout

# other=0: a TLS failure (untrusted CA, wrong host name) is not retried; it will not
# get better by asking again.
RETRY = Retry(total=5, other=0, backoff_factor=0.25,
              status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET", "HEAD"),
              raise_on_status=False, respect_retry_after_header=True)
TIMEOUT = Timeout(connect=15.0, read=60.0)
MAX_REDIRECTS = 5


class HttpClient:
    """Hands out the right pool for a URL: direct, or through the configured proxy."""

    def __init__(self) -> None:
        ca = os.environ.get("CARTON_CA_BUNDLE")
        self._kwargs = {"retries": RETRY, "timeout": TIMEOUT, "ca_certs": ca} if ca else {
            "retries": RETRY, "timeout": TIMEOUT}
        self._direct = urllib3.PoolManager(**self._kwargs)  # type: ignore[arg-type]
        self._proxies: dict[str, urllib3.ProxyManager] = {}
        self._lock = threading.Lock()

    def pool(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        proxy = urllib.request.getproxies().get(parts.scheme)
        if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
            return self._direct
        with self._lock:
            if proxy not in self._proxies:
                self._proxies[proxy] = urllib3.ProxyManager(proxy, **self._kwargs)  # type: ignore[arg-type]
            return self._proxies[proxy]

    def get(self, url: str, headers: dict[str, str] | None = None,
            stream: bool = False) -> tuple[urllib3.BaseHTTPResponse, str]:
        """GET `url`, following up to 5 redirects but never from https to anything else.
        Returns the final response (any status) and its URL; raises urllib3's errors for
        transport failures."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            resp = self.pool(current).request(
                "GET", current, headers={"Accept-Encoding": "identity", **(headers or {})},
                preload_content=not stream, decode_content=False, redirect=False,
            )
            location = resp.headers.get("Location")
            if resp.status not in (301, 302, 303, 307, 308) or not location:
                return resp, current
            resp.drain_conn()
            target = urljoin(current, location)
            if urlsplit(current).scheme == "https" and urlsplit(target).scheme != "https":
                raise urllib3.exceptions.HTTPError(
                    f"refusing a redirect from {current} to {target}: it leaves https")
            current = target
        raise urllib3.exceptions.HTTPError(f"more than {MAX_REDIRECTS} redirects from {url}")
