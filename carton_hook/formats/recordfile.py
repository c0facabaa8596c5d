"""A wheel's RECORD read as installer reads it (`installer.records`): the same rows from
the same text, the same paths, hashes and sizes, the same rows refused; without
importing installer, whose modules bring `dataclasses` (with `inspect`, `ast`, `dis`,
`tokenize`), `email.policy` and `configparser`: ~14 ms of a first run's worker before its
first unpacking (docs/performance.md). The tests hold every answer against installer's.
"""

from __future__ import annotations

import csv
from typing import NamedTuple

from carton_hook.errors import CartonError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO


class RecordError(CartonError, ValueError):
    """A RECORD row that installer's reader refuses too. The wheel's check reports it as
    a WheelError naming the wheel (wheelcheck.py)."""

    kind = "record"


class Digest(NamedTuple):
    """A row's hash: the algorithm's name and the urlsafe base64 digest, unpadded."""

    name: str
    value: str

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class RecordRow(NamedTuple):
    """One row of a RECORD (`installer.records.RecordEntry`'s fields)."""

    path: str
    hash_: Digest | None
    size: int | None

    def validate_stream(self, stream: IO[bytes]) -> bool:
        """Whether `stream`'s bytes, read to their end, have this row's hash and size."""
        import hashlib

        if self.hash_ is None or self.size is None:
            return False
        digest = hashlib.new(self.hash_.name)
        size = 0
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
        return size == self.size and encode_digest(digest.digest()) == self.hash_.value


def encode_digest(digest: bytes) -> str:
    """A digest as RECORD writes it (PEP 376: urlsafe base64, no padding)."""
    import base64

    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def parse_rows(text: str) -> list[tuple[str, str, str]]:
    """The rows of the RECORD `text`, each (path, hash, size) as written, a path's
    backslashes made slashes. A row of other than three fields is refused."""
    rows = []
    reader = csv.reader(text.splitlines(), delimiter=",", quotechar='"', lineterminator="\n")
    for index, fields in enumerate(reader):
        if len(fields) != 3:
            raise RecordError(f"row {index} has {len(fields)} fields, not 3")
        rows.append((fields[0].replace("\\", "/"), fields[1], fields[2]))
    return rows


def record_row(path: str, hash_: str, size: str) -> RecordRow:
    """A row's fields read: a path that is not empty, a hash `name=value` whose
    algorithm this Python has, a size that is an integer (empty hash or size: None)."""
    import hashlib

    if not path:
        raise RecordError("a row has an empty path")
    digest = None
    if hash_:
        name, equals, value = hash_.partition("=")
        if not equals:
            raise RecordError(f"the hash of {path!r} is not name=value")
        if name not in hashlib.algorithms_available:
            raise RecordError(f"the hash of {path!r} uses an unknown algorithm {name!r}")
        digest = Digest(name, value)
    try:
        number = int(size) if size else None
    except ValueError:
        raise RecordError(f"the size of {path!r} is not an integer") from None
    return RecordRow(path, digest, number)
