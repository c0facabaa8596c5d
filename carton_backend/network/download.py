"""Fetch a file once, verify its sha256 while streaming, and keep it by content.

Downloads land in `$CARTON_HOME/build-cache/files/<sha256>/<filename>`: a re-lock
never downloads the same wheel twice, and a file is only ever published there (by
rename) after its hash was checked. `file://` URLs are read in place.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from carton_backend.errors import DownloadError, HashMismatch
from carton_hook.errors import FetchError
from carton_hook.formats.hashing import file_sha256

TYPE_CHECKING = False
if TYPE_CHECKING:
    from carton_backend.network.httpclient import HttpClient

CHUNK = 1 << 20
BODY_ATTEMPTS = 3
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def carton_home() -> Path:
    """`$CARTON_HOME`, or `~/.carton`; a leading `~` and a relative path read as the
    runtime reads them (cache/layout.py), from the home folder and the current one."""
    return Path(os.environ.get("CARTON_HOME") or Path.home() / ".carton").expanduser().absolute()


def url_filename(url: str) -> str:
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])


class Downloader:
    """Turns a URL (and the sha256 it should have, if known) into a verified local file."""

    def __init__(self, client: HttpClient, cache_dir: Path | None = None) -> None:
        self._client = client
        self.cache_dir = cache_dir or carton_home() / "build-cache" / "files"

    @property
    def client(self) -> HttpClient:
        return self._client

    def fetch(self, url: str, sha256: str | None = None, filename: str | None = None) -> Path:
        """A local path holding the file at `url`, whose sha256 equals `sha256` if given."""
        filename = filename or url_filename(url)
        if sha256 is not None and not _SHA256.match(sha256):
            raise DownloadError(url, f"expected sha256 {sha256!r} is not 64 hex digits")
        scheme = urlsplit(url).scheme
        if scheme == "file":
            path = Path(url2pathname(urlsplit(url).path))
            if not path.is_file():
                raise DownloadError(url, "no such file")
            if sha256 is not None:
                actual = file_sha256(path)
                if actual != sha256:
                    raise HashMismatch(url, sha256, actual)
            return path
        if scheme not in ("http", "https"):
            raise DownloadError(url, f"cannot fetch {scheme!r} URLs")
        if sha256 is not None:
            cached = self.cached(sha256, filename)
            if cached is not None:
                return cached
        return self._download(url, sha256, filename)

    def cached(self, sha256: str, filename: str) -> Path | None:
        """The file already downloaded with this sha256 and name, if it is here."""
        path = self.cache_dir / sha256 / filename
        return path if _SHA256.match(sha256) and path.is_file() else None

    def _download(self, url: str, sha256: str | None, filename: str) -> Path:
        import urllib3  # here: packing with a current lock downloads nothing (80 ms)

        tmp_root = self.cache_dir / ".tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=tmp_root))
        try:
            part = work / filename
            # urllib3 retries connections and 5xx/429 (with Retry-After), not a body cut
            # short: that is retried here, from the start.
            for attempt in range(BODY_ATTEMPTS):
                try:
                    actual = self._attempt(url, part)
                    break
                except (urllib3.exceptions.ProtocolError,
                        urllib3.exceptions.ReadTimeoutError) as exc:
                    part.unlink(missing_ok=True)
                    if attempt == BODY_ATTEMPTS - 1:
                        raise DownloadError(url, f"download failed ({exc})") from exc
                except (urllib3.exceptions.HTTPError, FetchError) as exc:
                    raise DownloadError(url, f"download failed ({exc})") from exc
            if sha256 is not None and actual != sha256:
                raise HashMismatch(url, sha256, actual)
            final = self.cache_dir / actual / filename
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, final)
            return final
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _attempt(self, url: str, part: Path) -> str:
        """Stream `url` into `part`; returns its sha256."""
        digest = hashlib.sha256()
        resp, _ = self._client.get(url, stream=True)
        done = False
        try:
            if resp.status != 200:
                raise DownloadError(url, f"HTTP {resp.status}")
            with part.open("xb") as out:
                for chunk in resp.stream(CHUNK, decode_content=False):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            done = True
        finally:
            if not done:
                resp.close()  # an unread body would break the next request on this connection
            resp.release_conn()
        return digest.hexdigest()
