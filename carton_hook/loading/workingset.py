"""pkg_resources' working set, told about the locked distributions.

pkg_resources builds its working set from `sys.path`, which shows none of them (they
live in the cache, found by the finder). Once the locked pkg_resources has run, each
locked distribution is added to its working set: located at its cache entry, where its
files are (as a venv's are in site-packages), with its metadata read from what the
pack recorded (formats/metadatapack.py), so that `get_distribution`, `require` and
`iter_entry_points` see it without anything being installed.

Imported only when pkg_resources is.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Any

from carton_hook.formats.metadatapack import list_metadata, metadata_kind, read_metadata

if TYPE_CHECKING:
    from carton_hook.planning.planfile import PlanData


def add_locked(module: ModuleType, plan: PlanData, cache_root: str) -> None:
    """Add the locked distributions of `plan` to the working set of `module` (an
    executed pkg_resources), where it has none of that name yet."""
    working_set = getattr(module, "working_set", None)
    if working_set is None:
        return
    metadata_class = _metadata_class(module)
    pack = plan.get("metadata_pack")
    for sha, wheel in sorted(plan["wheels"].items(), key=lambda item: item[1]["dist"]):
        if not wheel["dist_info"]:
            continue
        location = os.path.join(cache_root, sha)
        dist = module.Distribution.from_location(
            location, os.path.basename(wheel["dist_info"]),
            metadata_class(location, wheel["dist_info"], pack),
            precedence=module.DEVELOP_DIST)  # as pkg_resources makes one of a .dist-info
        working_set.add(dist)  # not over one that sys.path shows


def _metadata_class(module: ModuleType) -> Any:
    """A `PathMetadata` of the locked pkg_resources (resources from the cache entry,
    as a venv's from site-packages) whose metadata methods read the pack-time metadata
    through `read_metadata`, packed or not: its public metadata provider interface."""

    class LockedMetadata(module.PathMetadata):  # type: ignore[misc,name-defined]
        def __init__(self, location: str, dist_info: str, pack: str | None) -> None:
            super().__init__(location, dist_info)  # module_path, egg_info
            self._pack = pack

        def _path(self, name: str) -> str:
            return os.path.join(self.egg_info, *name.split("/"))

        def has_metadata(self, name: str) -> bool:
            return metadata_kind(self._path(name), self._pack) == "file"

        def get_metadata(self, name: str) -> str:
            return read_metadata(self._path(name), self._pack).decode("utf-8")

        def get_metadata_lines(self, name: str) -> list[str]:
            lines = (line.strip() for line in self.get_metadata(name).splitlines())
            return [line for line in lines if line and not line.startswith("#")]

        def metadata_isdir(self, name: str) -> bool:
            return metadata_kind(self._path(name), self._pack) == "folder"

        def metadata_listdir(self, name: str) -> list[str]:
            return list_metadata(self._path(name), self._pack)

    return LockedMetadata
