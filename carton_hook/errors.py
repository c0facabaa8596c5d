"""The runtime's exceptions: one base, concrete errors that also subclass a builtin."""

from __future__ import annotations


class CartonError(Exception):
    """Base of every error carton raises on purpose; its message is one line."""


class LockError(CartonError, ValueError):
    """`.carton/carton.lock` is missing, malformed or of an unknown version."""

    def __init__(self, path: str, message: str, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {message}")


class WheelError(CartonError, ValueError):
    """A wheel file is malformed, unsafe to unpack, or does not match its RECORD."""

    def __init__(self, wheel: str, message: str) -> None:
        self.wheel = wheel
        super().__init__(f"{wheel}: {message}")


class ArchiveError(CartonError, ValueError):
    """A `.carton` archive is malformed or its MANIFEST does not match its contents."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")
