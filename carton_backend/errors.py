"""The build half's exceptions, all under `BuildError` (itself a `CartonError`)."""

from __future__ import annotations

from carton_hook.errors import CartonError


class BuildError(CartonError):
    """Base of every expected failure while locking or packing a model."""

    kind = "build"


class ConfigError(BuildError, ValueError):
    """A key of pyproject.toml is missing or wrong."""

    def __init__(self, path: str, key: str, message: str) -> None:
        self.path = path
        self.key = key
        super().__init__(f"{path}: `{key}` {message}")


class RequirementsError(BuildError, ValueError):
    """A requirements file is missing, unreadable or includes something it cannot."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class ResolveError(BuildError, RuntimeError):
    """pip could not resolve the requirements."""


class DownloadError(BuildError, OSError):
    """A file could not be fetched."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(f"{url}: {message}")


class HashMismatch(DownloadError):
    """A file's sha256 is not the one expected."""

    def __init__(self, url: str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(url, f"sha256 is {actual}, expected {expected}; "
                              "the file changed or was tampered with")


class IndexLookupError(BuildError, OSError):
    """The public index could not be asked whether a file is on it."""


class WheelBuildError(BuildError, RuntimeError):
    """A wheel could not be built from an sdist, a folder or a VCS checkout."""
