"""Run a model in this process: its plan, the import finder, isolation, subprocesses, the
entrypoint."""

import sys

# The interpreter that has carton's own dependencies, which runs the worker: captured
# when loading is first imported, before a loaded carton points sys.executable at its
# prefix (whose interpreter sees only the model's packages). A subprocess of a loaded
# carton is told it by its boot.
WORKER_PYTHON = sys.executable

# Whether a first run's worker may be forked from this process (forkedworker.py): set by
# carton's own command line while it loads a model, before any of the model's code runs.
MAY_FORK = False


def carton_failed(exc: BaseException) -> bool:
    """Whether `exc` is carton's own failure (a CartonError), not the model's. The error
    classes are imported here, when something failed, not at every start."""
    from carton_hook.errors import CartonError

    return isinstance(exc, CartonError)


def import_error(message: str, name: str) -> ImportError:
    """carton's ImportError for the locked module `name` (its class imported only when
    one is raised)."""
    from carton_hook.errors import CartonImportError

    return CartonImportError(message, name=name)
