"""carton's build half: a PEP 517 backend that locks a model folder and packs a `.carton`.

The PEP 517 hooks live in `carton_backend.buildapi` and are re-exported here, so that
`build-backend = "carton_backend"` works.
"""

from .buildapi import (
    build_sdist,
    build_wheel,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)

__all__ = [
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_wheel",
]
