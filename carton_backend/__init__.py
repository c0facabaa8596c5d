"""carton's build half: a PEP 517 backend that locks a model folder and packs a `.carton`.

The PEP 517 hooks (and PEP 660's, for `pip install -e`) live in `carton_backend.buildapi`
and are re-exported here, so that `build-backend = "carton_backend"` works.
"""

from carton_backend.buildapi import (
    build_editable,
    build_sdist,
    build_wheel,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]
