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
