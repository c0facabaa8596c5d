"""The PEP 517 hooks: a thin edge that turns the frontend's calls into lock, pack, write.

Every hook works on the current directory (the frontend's contract). Expected failures
print one line and exit non-zero instead of a traceback, unless `CARTON_VERBOSE=1`.
`build_sdist` and `build_wheel` both leave the `.carton` beside their output, so
`python -m build` ends with it in `dist/`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from carton_backend.config import ModelConfig, load_config
from carton_backend.lock.locking import lock_is_current, lock_model
from carton_backend.logsetup import setup_logging, verbose_from_env
from carton_backend.packing.modelwheel import write_editable, write_metadata, write_wheel
from carton_backend.packing.pack import write_carton
from carton_backend.packing.sdist import write_sdist
from carton_hook.errors import CartonError, report
from carton_hook.formats.lockfile import Lock

F = TypeVar("F", bound=Callable[..., Any])

# What resolving needs inside an isolated build environment, beyond carton itself.
RESOLVER_REQUIRES = ["pip>=23.0"]


def _edge(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging()
        try:
            return func(*args, **kwargs)
        except CartonError as exc:
            if verbose_from_env():
                raise
            raise SystemExit(report(exc)) from None

    return wrapper  # type: ignore[return-value]


@_edge
def get_requires_for_build_sdist(config_settings: dict[str, Any] | None = None) -> list[str]:
    return [] if lock_is_current(load_config(Path.cwd())) else list(RESOLVER_REQUIRES)


# The same question for both: does building have to resolve?
get_requires_for_build_wheel = get_requires_for_build_sdist


@_edge
def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: dict[str, Any] | None = None) -> str:
    config = load_config(Path.cwd())
    return write_metadata(config, lock_model(config), Path(metadata_directory))


@_edge
def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    return _build_beside_carton(write_sdist, Path(sdist_directory), config_settings)


@_edge
def build_wheel(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                metadata_directory: str | None = None) -> str:
    return _build_beside_carton(write_wheel, Path(wheel_directory), config_settings)


# PEP 660: `pip install -e MODEL_DIR` (pip 21.3+; pip 25 needs these hooks). An editable
# install is for working on the model's code: no `.carton` is written.
get_requires_for_build_editable = get_requires_for_build_sdist
prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


@_edge
def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                   metadata_directory: str | None = None) -> str:
    config = load_config(Path.cwd())
    return write_editable(config, lock_model(config), Path(wheel_directory))


# `-C carton-dir=DIR` (pip: `--config-settings`): where the `.carton` goes instead of
# beside the frontend's artefact, for frontends that keep only the wheel out of a
# temporary folder (`pip wheel`, `pip install`). Relative to the model folder.
CARTON_DIR_SETTING = "carton-dir"
# Set in the environment of the backends pip runs (pip's build tracker), and by no other
# frontend: how the backend knows that its output folder is one pip deletes.
PIP_FRONTEND = "PIP_BUILD_TRACKER"


def _build_beside_carton(writer: Callable[[ModelConfig, Lock, Path], str], out: Path,
                         config_settings: dict[str, Any] | None = None) -> str:
    """Lock, write the frontend's artefact with `writer`, and the `.carton` beside it (or
    where `carton-dir` says)."""
    config = load_config(Path.cwd())
    carton_dir = (config_settings or {}).get(CARTON_DIR_SETTING)
    if carton_dir is not None and (not isinstance(carton_dir, str) or not carton_dir):
        raise CartonError(f"the {CARTON_DIR_SETTING} setting must be one folder, like "
                          f"-C {CARTON_DIR_SETTING}=dist (got {carton_dir!r})")
    lock = lock_model(config)
    name = writer(config, lock, out)
    if carton_dir:
        target = config.root / carton_dir
    elif PIP_FRONTEND in os.environ:
        # pip keeps only the wheel out of its temporary folder, and shows none of this
        # output unless -v: the .carton goes where `python -m build` leaves it.
        target = config.root / "dist"
    else:
        target = out
    write_carton(config, lock, target)
    return name
