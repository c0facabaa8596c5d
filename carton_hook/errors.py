"""carton's exceptions, one tree under `CartonError`, and the one function that reports
them at a command's edge.

Each concrete error also subclasses the builtin a caller would catch (`ValueError` for
bad input, `OSError` for what the system or the network did, `ImportError` inside an
import, `LookupError` for what is not there), and names its `kind`: the word that
carries it from the worker process to the model's (`WorkerError.kind`), where the model's
process decides what to do about it (a missing lock section is packed at load time).
The build half's errors (`carton_backend.errors`) are under `CartonError` too.
"""

from __future__ import annotations


class CartonError(Exception):
    """Base of every error carton raises on purpose; its message is one line."""

    kind = "error"


class LockError(CartonError, ValueError):
    """`.carton/carton.lock` is missing, malformed or of an unknown version."""

    kind = "lock"

    def __init__(self, path: str, message: str, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {message}")


class WheelError(CartonError, ValueError):
    """A wheel file is malformed, unsafe to unpack, or does not match its RECORD."""

    kind = "wheel"

    def __init__(self, wheel: str, message: str) -> None:
        self.wheel = wheel
        super().__init__(f"{wheel}: {message}")


class ArchiveError(CartonError, ValueError):
    """A `.carton` archive is malformed or its MANIFEST does not match its contents."""

    kind = "archive"

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class UnsafeMember(CartonError, ValueError):
    """A zip member (or the set of them) that the members' policy refuses; the message
    says which. Reported as the WheelError or ArchiveError of the file it is in."""

    kind = "unsafe-member"


class CacheError(CartonError, OSError):
    """The cache could not be filled."""

    kind = "cache"


class FetchError(CartonError, OSError):
    """A wheel could not be downloaded, or what arrived is not the locked file."""

    kind = "fetch"


class MirrorError(CartonError, OSError):
    """The mirror could not say where a file is (unreachable, refused, unreadable)."""

    kind = "mirror"


class EntrypointError(CartonError, LookupError):
    """The entrypoint names something that is not there."""

    kind = "entrypoint"


class CartonImportError(CartonError, ImportError):
    """A locked wheel could not be installed during an import; `__cause__` says why.
    An `ImportError`, so that `try: import x / except ImportError:` in the model keeps
    working."""

    kind = "import"


class WorkerError(CartonError):
    """The worker process reported a failure: its message, and the `kind` of the error
    it had ("internal" for an unexpected one, "crash" if it ended without a report)."""

    def __init__(self, message: str, kind: str) -> None:
        self.kind = kind
        super().__init__(message)


# How every error line starts; `report` is the one place that writes it.
ERROR_PREFIX = "carton: error: "


def report(error: BaseException | str, *, verbose: bool = False, where: str = "") -> int:
    """Say why carton failed, on stderr, in one line (`carton: error: ...`, then `where`
    it happened), after the traceback of the exception being handled with `verbose`.
    Returns the exit status of a failure, 1."""
    import sys

    if verbose and not isinstance(error, str):
        import traceback

        traceback.print_exception(type(error), error, error.__traceback__)
    # An exception without a message is named by its type, never an empty line.
    said = str(error) or (type(error).__name__ if not isinstance(error, str) else "")
    print(f"{ERROR_PREFIX}{said}{where}", file=sys.stderr)
    return 1
