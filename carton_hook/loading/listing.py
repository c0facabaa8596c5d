"""Whether a locked top-level name is a package, before its wheel is installed: what
`pkgutil.iter_modules()` lists and what a deferred spec says, read from the wheel's
pack-time RECORD when it is first asked.

The plan knows the names (planning/select.py) but not this: reading every wheel's RECORD
while the plan is made cost a first run of a 35-package lock ~2.5 ms of its critical
path, for the few names a run asks about (its first imports, a `pkgutil` listing).
"""

from __future__ import annotations

import os

from carton_hook.formats.importnames import install_paths
from carton_hook.formats.metadatapack import read_metadata
from carton_hook.loading import carton_failed

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from carton_hook.planning.planfile import PlanData, WheelPlan


def is_package(plan: PlanData, name: str) -> bool:
    """Whether the top-level `name` that the plan's wheels provide is a package: a folder
    of that name in the installed tree of the wheel that provides it (a namespace shared
    by several wheels is one, and the plan says so already)."""
    listed = plan["listed"]
    known = listed.get(name)
    if known is None:
        sha = plan["imports"].get(name)
        known = sha is not None and name in top_level_folders(plan["wheels"][sha],
                                                              plan.get("metadata_pack"))
        listed[name] = known  # asked once per process
    return known


def top_level_folders(wheel: WheelPlan, pack: str | None) -> set[str]:
    """The top-level folders of a wheel's installed tree (below each import root), from
    its pack-time RECORD; none where it has no metadata, or no readable RECORD."""
    prefixes = [f"{root}/" if root else "" for root in wheel["roots"]]
    found = set()
    for path in installed_paths(wheel, pack):
        for prefix in prefixes:
            if path.startswith(prefix):
                head, sep, _ = path[len(prefix):].partition("/")
                if sep:
                    found.add(head)
    return found


def installed_paths(wheel: WheelPlan, pack: str | None) -> list[str]:
    """Where each member of a wheel lands in its installed tree (`.data/purelib` members
    at the root, ...), from its pack-time RECORD; none where it has no metadata, or no
    readable RECORD."""
    if not wheel["dist_info"]:
        return []
    try:
        text = read_metadata(os.path.join(wheel["dist_info"], "RECORD"), pack).decode("utf-8")
    except UnicodeDecodeError:
        return []
    except OSError as exc:
        if carton_failed(exc):  # a damaged pack: said, not taken for "no files"
            raise
        return []
    if '"' in text:  # a quoted path (it holds a comma or a quote): read as installer does
        from carton_hook.formats.recordfile import RecordError, parse_rows  # imports csv

        try:
            rows = [path for path, _, _ in parse_rows(text)]
        except RecordError:
            return []
    else:  # each row's path is what comes before its first comma (no csv to import)
        rows = [line.partition(",")[0] for line in text.splitlines() if line]
    return install_paths(rows)
