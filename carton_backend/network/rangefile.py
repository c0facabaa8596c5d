"""A file on an HTTP server, read by byte ranges: enough of a wheel for `zipfile` to list
its members and read the few that locking needs (METADATA, RECORD, WHEEL, entry points),
without downloading the rest.

The end of the file (where a zip keeps its directory, and where wheels keep their
`.dist-info`) is fetched first; every later read fetches only the blocks it lacks,
neighbours together. A server that ignores `Range` (answers 200) raises
`RangesUnsupported`, for the caller to download the whole file instead.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from carton_backend.errors import DownloadError

if TYPE_CHECKING:
    from carton_backend.network.httpclient import HttpClient

BLOCK = 64 << 10
TAIL = 64 << 10  # the first request: a small wheel's directory and dist-info
ATTEMPTS = 3


class RangesUnsupported(DownloadError):
    """The server sent the whole file, or no usable `Content-Range`."""


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of the file at `url`."""

    def __init__(self, client: HttpClient, url: str) -> None:
        super().__init__()
        self._client = client
        self.url = url
        self._blocks: dict[int, bytes] = {}
        # The end of a block whose beginning was not fetched (where the first request's
        # bytes began): fetched with the rest of its block, never twice.
        self._suffix: dict[int, bytes] = {}
        self._pos = 0
        self.fetched = 0  # bytes received, for the record of what locking cost
        self.requests = 0
        data, start, self.size = self._get(f"bytes=-{TAIL}")
        self._store(start, data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        end = min(self._pos + len(buffer), self.size)
        if end <= self._pos:
            return 0
        first, last = self._pos // BLOCK, (end - 1) // BLOCK
        self._fill(first, last)
        data = b"".join(self._blocks[i] for i in range(first, last + 1))
        chunk = data[self._pos - first * BLOCK:end - first * BLOCK]
        buffer[:len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def _fill(self, first: int, last: int) -> None:
        """Fetch the blocks first..last that are not here yet, each run of missing
        neighbours in one request."""
        block = first
        while block <= last:
            if block in self._blocks:
                block += 1
                continue
            run_end = block
            while run_end + 1 <= last and run_end + 1 not in self._blocks:
                run_end += 1
            start = block * BLOCK
            suffix = self._suffix.pop(run_end, b"")
            stop = min((run_end + 1) * BLOCK, self.size) - 1 - len(suffix)
            data, got, _ = self._get(f"bytes={start}-{stop}")
            if got != start or len(data) != stop - start + 1:
                raise RangesUnsupported(self.url, f"asked for bytes {start}-{stop}, got "
                                                  f"{len(data)} from {got}")
            self._store(start, data + suffix)
            block = run_end + 1

    def _store(self, start: int, data: bytes) -> None:
        """Keep the whole blocks `data` covers (and a partial last block of the file),
        and the end of the block it begins inside."""
        first = -(-start // BLOCK)  # the first block that starts inside `data`
        if start % BLOCK:
            self._suffix[start // BLOCK] = data[:first * BLOCK - start]
        for index in range(first, (start + len(data)) // BLOCK + 1):
            lo, hi = index * BLOCK, min((index + 1) * BLOCK, self.size)
            if lo >= hi or hi > start + len(data):
                continue
            self._blocks[index] = data[lo - start:hi - start]

    def _get(self, byte_range: str) -> tuple[bytes, int, int]:
        """The bytes of one `Range` request, where they start, and the file's size."""
        import urllib3

        for attempt in range(ATTEMPTS):
            try:
                resp, _ = self._client.get(self.url, {"Range": byte_range,
                                                      "Accept-Encoding": "identity"})
                break
            except urllib3.exceptions.HTTPError as exc:
                if attempt == ATTEMPTS - 1:
                    raise DownloadError(self.url, f"range request failed ({exc})") from exc
        self.requests += 1
        if resp.status == 200:
            raise RangesUnsupported(self.url, "the server does not answer range requests")
        if resp.status != 206:
            raise DownloadError(self.url, f"HTTP {resp.status}")
        content_range = resp.headers.get("Content-Range", "")
        try:
            unit, _, rest = content_range.partition(" ")
            span, _, total = rest.partition("/")
            first, _, _ = span.partition("-")
            start, size = int(first), int(total)
        except ValueError:
            raise RangesUnsupported(self.url, f"unusable Content-Range {content_range!r}") \
                from None
        if unit != "bytes":
            raise RangesUnsupported(self.url, f"unusable Content-Range {content_range!r}")
        data = resp.data
        self.fetched += len(data)
        return data, start, size
