"""A first run's downloads where no proxy may apply: the standard library's `http.client`
and `ssl`, with connections kept alive per host and reused by the download threads.

urllib3 (network/http.py) is what every other request uses: proxies, the build half,
a mirror's pages. Here it would only pool connections and speak TLS, and importing it
cost a first run's worker ~14 ms of its one core before the first download could start
(`import urllib3` pulls in `importlib.metadata`, its HTTP/2 probe, its own connection
and response classes, and `http.client` beneath them all; docs/performance.md).
Everything that judges is the caller's and the same for both: each URL and redirect
(`http.follow`), the status, the length, the sha256, retries and resuming (fetch.py).

TLS is the default context's (certificates and host names verified, TLS 1.2 at least),
with `CARTON_CA_BUNDLE` as its only trust when it is set, and `SSL_CERT_FILE` honoured
otherwise, as urllib3 does. The host and port connected to are those `urlsplit` read,
the parser that judged the URL (formats/urls.py): no second parser to disagree with it.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
from urllib.parse import urlsplit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from email.message import Message

# What a failed exchange raises: TLS that cannot be trusted (never retried), and the
# rest (a refused or cut connection, a timeout, a malformed reply), which is retried.
TLS_ERRORS = (ssl.SSLError, ssl.CertificateError)
ERRORS = (OSError, http.client.HTTPException)

_Key = tuple[str, str, int, str]  # scheme, host, port, the CA bundle ("" for none)
_IDLE: dict[_Key, list[http.client.HTTPConnection]] = {}
_CONTEXTS: dict[str, ssl.SSLContext] = {}
_LOCK = threading.Lock()


class Response:
    """A response as fetch reads it (what urllib3's gives): `status`, `headers`,
    `read1`, `close` (the connection is dropped, its body unread) and `release_conn`
    (the connection is kept for the next request if its body was read whole)."""

    def __init__(self, key: _Key, conn: http.client.HTTPConnection,
                 resp: http.client.HTTPResponse) -> None:
        self._key = key
        self._conn: http.client.HTTPConnection | None = conn
        self._resp = resp
        self._ended = False  # `read1` came to the end of the body as the server framed it
        self.status = resp.status
        self.headers: Message = resp.headers

    def read1(self, n: int, decode_content: bool = False) -> bytes:
        data = self._resp.read1(n)
        if not data and n:
            self._ended = True
        return data

    def close(self) -> None:
        self._resp.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def release_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        resp = self._resp
        # A length counted down to 0 (a cut body ends with its length short); where there
        # is none (chunked), the last chunk read: a chunked body cut short raised instead.
        whole = resp.length == 0 if resp.length is not None else self._ended
        if whole and not resp.will_close:
            resp.close()
            with _LOCK:
                _IDLE.setdefault(self._key, []).append(conn)
        else:
            resp.close()
            conn.close()


def request(url: str, headers: dict[str, str], connect_timeout: float,
            read_timeout: float) -> Response:
    """GET `url` (judged by the caller): its response, the body unread. A kept-alive
    connection the server has closed meanwhile is replaced by a new one at once."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    ca = os.environ.get("CARTON_CA_BUNDLE") or ""
    key = (parts.scheme, parts.hostname or "", parts.port or (443 if secure else 80), ca)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    while True:
        with _LOCK:
            idle = _IDLE.get(key)
            conn = idle.pop() if idle else None
        reused = conn is not None
        if conn is None:
            conn = _connect(key, connect_timeout, read_timeout)
        try:
            conn.request("GET", target, headers=headers)
            return Response(key, conn, conn.getresponse())
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if not reused or isinstance(exc, (TimeoutError, *TLS_ERRORS)):
                raise


def _connect(key: _Key, connect_timeout: float,
             read_timeout: float) -> http.client.HTTPConnection:
    """A new connection (TLS included), made within `connect_timeout`, whose reads then
    wait `read_timeout` at most."""
    scheme, host, port, ca = key
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=connect_timeout,
                                           context=_context(ca))
    else:
        conn = http.client.HTTPConnection(host, port, timeout=connect_timeout)
    try:
        conn.connect()
        sock: socket.socket | None = conn.sock
        if sock is not None:
            sock.settimeout(read_timeout)
    except BaseException:
        conn.close()
        raise
    return conn


def _context(ca: str) -> ssl.SSLContext:
    with _LOCK:
        context = _CONTEXTS.get(ca)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=ca or None)
            except OSError as exc:  # a bundle that cannot be read is a TLS failure
                raise ssl.SSLError(f"cannot read the CA bundle {ca}: {exc}") from exc
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            _CONTEXTS[ca] = context
    return context
