"""Hash a file in chunks: one helper for both halves (MANIFEST lines, RECORD rows, wheel
sha256s), so that a file is hashed the same way wherever carton checks it."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import _Hash


def file_digest(path: Path, algorithm: str = "sha256") -> _Hash:
    """The hash object of `path`'s bytes (`hashlib.file_digest` is 3.11 and later)."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest


def file_sha256(path: Path) -> str:
    """The hex sha256 of `path`'s bytes."""
    return file_digest(path).hexdigest()
