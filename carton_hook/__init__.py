"""carton's runtime: run a `.carton` model with its locked wheels, imported lazily.

    python -m carton_hook model.carton [ARGS...]
    carton_hook.load("model.carton").entrypoint()()

Its rooms (docs/architecture.md): `formats/`, the files both halves of carton read and
check the same way; `cache/`; `planning/`; `installing/`, the worker's jobs; `loading/`,
a model run in this process; `commands/`. Importing it must stay cheap: nothing
third-party is imported here, and `load` imports its machinery only when called.
"""

from __future__ import annotations

TYPE_CHECKING = False  # importing typing costs milliseconds at every start


def __getattr__(name: str) -> str:
    # `carton_hook.__version__` without importing carton_hook.formats at every start.
    if name in ("__version__", "CREATED_BY"):
        from carton_hook.formats import version

        return str(getattr(version, name))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

if TYPE_CHECKING:
    from typing import Any

    from carton_hook.loading.api import Carton


def load(model: Any, *, system_site_packages: bool | None = None) -> Carton:
    """Load a carton into this process; see `carton_hook.loading.api.load`."""
    from carton_hook.loading.api import load as _load

    return _load(model, system_site_packages=system_site_packages)


def spark_settings(carton: Any, *, home: str | None = None,
                   pack_at_load: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """Spark configuration and driver environment that run `carton` as the executors'
    Python; see `carton_hook.loading.engines.spark_settings`."""
    from carton_hook.loading.engines import spark_settings as _settings

    return _settings(carton, home=home, pack_at_load=pack_at_load)


def dask_worker_command(carton: Any, scheduler: str, *args: str) -> list[str]:
    """The command that starts a Dask worker with `carton` as its Python; see
    `carton_hook.loading.engines.dask_worker_command`."""
    from carton_hook.loading.engines import dask_worker_command as _command

    return _command(carton, scheduler, *args)
