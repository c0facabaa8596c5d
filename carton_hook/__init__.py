"""carton's runtime: run a `.carton` model with its locked wheels, imported lazily.

    python -m carton_hook model.carton [ARGS...]
    carton_hook.load("model.carton").entrypoint()()

This package also holds the file formats that both halves of carton read and check the
same way (the lock schema, wheel validation, the archive layout). Importing it must stay
cheap: nothing third-party is imported here, and `load` imports its machinery only when
called.
"""

from __future__ import annotations

TYPE_CHECKING = False  # importing typing costs milliseconds at every start

__version__ = "0.1.0"

CREATED_BY = f"carton {__version__}"

if TYPE_CHECKING:
    from typing import Any

    from .api import Carton


def load(model: Any, *, system_site_packages: bool | None = None) -> Carton:
    """Load a carton into this process; see `carton_hook.api.load`."""
    from .api import load as _load

    return _load(model, system_site_packages=system_site_packages)


def spark_settings(carton: Any, *, home: str | None = None,
                   pack_at_load: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """Spark configuration and driver environment that run `carton` as the executors'
    Python; see `carton_hook.engines.spark_settings`."""
    from .engines import spark_settings as _settings

    return _settings(carton, home=home, pack_at_load=pack_at_load)


def dask_worker_command(carton: Any, scheduler: str, *args: str) -> list[str]:
    """The command that starts a Dask worker with `carton` as its Python; see
    `carton_hook.engines.dask_worker_command`."""
    from .engines import dask_worker_command as _command

    return _command(carton, scheduler, *args)
