"""The build half's HTTP policy, on the runtime's one HTTP setup (`carton_hook.network`):
urllib3 retries connections and 5xx/429 with backoff (and the server's `Retry-After`),
longer timeouts than a run's, and any http(s) URL a resolver's report may name (a
private index may be plain http; the runtime's stricter URL policy judges what a lock
records)."""

from __future__ import annotations

from urllib.parse import urlsplit

import urllib3
from urllib3.util import Retry, Timeout

from carton_hook.network import http

# other=0: a TLS failure (untrusted CA, wrong host name) is not retried; it will not
# get better by asking again.
RETRY = Retry(total=5, other=0, backoff_factor=0.25,
              status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET", "HEAD"),
              raise_on_status=False, respect_retry_after_header=True)
TIMEOUT = Timeout(connect=15.0, read=60.0)


def _http_or_https(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{url!r}: only http(s) URLs are fetched"
    return None


class HttpClient:
    """GETs for the build half, through the process's pools (proxies, CA bundle)."""

    def get(self, url: str, headers: dict[str, str] | None = None,
            stream: bool = False) -> tuple[urllib3.BaseHTTPResponse, str]:
        """GET `url`, following up to 5 redirects but never from https to anything else.
        Returns the final response (any status; its body read unless `stream`) and its
        URL; raises urllib3's errors for transport failures and carton's FetchError for a
        redirect refused."""
        resp, final = http.open_url(url, headers or {}, "the request", retries=RETRY,
                                    timeout=TIMEOUT, judge=_http_or_https)
        if not stream:
            try:
                resp.data  # read it all, so that the connection goes back to the pool  # noqa: B018
            finally:
                resp.release_conn()
        return resp, final
