"""carton_hook/formats/hashing.py: a file's digest, read in chunks, equal to hashing its
bytes at once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from carton_hook.formats.hashing import CHUNK, file_digest, file_sha256


def _noise(size: int) -> bytes:
    """`size` bytes that differ from chunk to chunk."""
    block = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(2048))
    return (block * (size // len(block) + 1))[:size]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + CHUNK // 2])
def test_the_sha256_is_that_of_the_whole_file(tmp_path: Path, size: int) -> None:
    data = _noise(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_an_empty_file_has_the_sha256_of_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512", "md5", "blake2b"])
def test_another_algorithm_gives_its_hash_object(tmp_path: Path, algorithm: str) -> None:
    data = _noise(CHUNK + 7)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    digest = file_digest(path, algorithm)
    assert digest.name == algorithm
    assert digest.digest() == hashlib.new(algorithm, data).digest()


def test_the_default_algorithm_is_sha256(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"carton")
    digest = file_digest(tmp_path / "f")
    assert (digest.name, digest.hexdigest()) == ("sha256", hashlib.sha256(b"carton").hexdigest())


def test_an_unknown_algorithm_is_a_value_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError, match="sha3000"):
        file_digest(tmp_path / "f", "sha3000")


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "missing.whl")
