"""`importlib.metadata` for locked distributions, answered from the metadata recorded at
pack time: `version`, `requires`, `entry_points` and `files` work without downloading.

Imported only when something asks for metadata (importlib.metadata is not cheap).
"""

from __future__ import annotations

import os
from importlib.metadata import Distribution, FileHash, PackagePath
from pathlib import Path
from typing import TYPE_CHECKING

from carton_hook.cache.layout import SCHEME_FOLDERS
from carton_hook.formats.metadatapack import read_metadata

if TYPE_CHECKING:
    from carton_hook.planning.planfile import PlanData


class CartonDistribution(Distribution):
    """A locked distribution: metadata from the carton, files in the cache entry."""

    def __init__(self, dist_info: Path, entry: Path, top_level: list[str],
                 dist: str, pack: str | None = None) -> None:
        self._dist_info = dist_info
        self._entry = entry
        self._top_level = top_level
        self._dist = dist  # the name normalized (PEP 503), as the plan has it
        self._pack = pack  # where the model's metadata is packed (metadatapack.py)

    def read_text(self, filename: str) -> str | None:
        try:
            raw = read_metadata(os.path.join(self._dist_info, filename), self._pack)
            # As Path.read_text reads it: UTF-8, any newline read as \n.
            text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
            return installed_record(text, self._dist_info.name) if filename == "RECORD" else text
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            if filename == "top_level.txt" and self._top_level:
                # Most wheels lack it; the import names carton computed at pack time say
                # the same, and packages_distributions() on 3.10 reads nothing else.
                return "".join(f"{name}\n" for name in self._top_level)
            return None

    read_text.__doc__ = Distribution.read_text.__doc__

    def locate_file(self, path: str | os.PathLike[str]) -> Path:
        return self._entry / path

    @property
    def files(self) -> list[PackagePath] | None:
        """Every file of the installed wheel, from its RECORD, whether or not the wheel
        is installed yet (answering downloads nothing; each path is where its file is
        once it is), on every Python: 3.12 leaves out files that do not exist, which
        listed nothing of a wheel not imported yet."""
        text = self.read_text("RECORD")
        if text is None:
            return None
        import csv

        found = []
        for row in csv.reader(text.splitlines()):
            if not row:
                continue
            path = PackagePath(row[0])
            path.hash = FileHash(row[1]) if len(row) > 1 and row[1] else None
            path.size = int(row[2]) if len(row) > 2 and row[2].isdigit() else None
            path.dist = self
            found.append(path)
        return found

    @property
    def _normalized_name(self) -> str:
        """What `importlib.metadata` tells distributions apart by (it asks each one, for
        every `version()` or `distributions()`): from the plan's name, not by parsing
        METADATA, which cost ~0.5 ms a distribution on each such call."""
        import re

        return re.sub(r"[-_.]+", "_", self._dist).lower()

    def __repr__(self) -> str:
        return f"<CartonDistribution {self._dist_info.name} in {self._entry}>"


def installed_record(record: str, dist_info: str) -> str:
    """The wheel's `record` (its RECORD's text) with the paths the installed entry has:
    a member of `<name>.data/<scheme>/` is where unpacking put it (SCHEME_FOLDERS), so
    that `files()` locates it, as the RECORD pip installs names where pip put it."""
    data = dist_info[: -len(".dist-info")] + ".data/"
    if data not in record:
        return record
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(record)):
        if row and row[0].startswith(data):
            scheme, _, rest = row[0][len(data):].partition("/")
            folder = SCHEME_FOLDERS.get(scheme)  # the schemes were checked at pack time
            if folder is not None and rest:
                row = [folder + rest, *row[1:]]
        writer.writerow(row)
    return out.getvalue()


def distributions(plan: PlanData, root: str, name: str | None) -> list[Distribution]:
    """The locked distributions (one named `name`, or all), each exactly once."""
    import re

    wanted = re.sub(r"[-_.]+", "-", name).lower() if name else None
    found: list[Distribution] = []
    for sha, wheel in plan["wheels"].items():
        if wheel["dist_info"] is None:
            continue
        if wanted is None or wanted == wheel["dist"]:
            found.append(CartonDistribution(Path(wheel["dist_info"]), Path(root, sha),
                                            wheel["top_level"], wheel["dist"],
                                            plan.get("metadata_pack")))
    return found
