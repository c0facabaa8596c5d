"""Turn one resolved distribution into a locked package: a checked wheel, recorded by URL
when the public index has the identical file, bundled into the model otherwise.

Every wheel is fetched once and validated (hash, RECORD, safe names) here, whether it is
recorded or bundled; its import names and the metadata that `importlib.metadata` needs
are taken from it at the same time.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from carton_backend.errors import BuildError
from carton_backend.network.download import Downloader
from carton_backend.network.pypi import PublicIndex
from carton_backend.resolution.environment import Target
from carton_backend.resolution.resolve import Resolved
from carton_backend.wheels.elfdeps import SharedLibraries, may_link_across, scan_wheel
from carton_backend.wheels.loadimports import load_imports
from carton_backend.wheels.wheelbuild import build_wheel
from carton_hook.errors import WheelError
from carton_hook.filesystem.atomic import TEMP_PREFIX, copy_file
from carton_hook.formats.distnames import canonical_name
from carton_hook.formats.hashing import file_sha256
from carton_hook.formats.lockfile import DIST_INFO_DIR, Package, Wheel, bundled_path
from carton_hook.formats.wheelcheck import (
    PTH_DONE_BY_CARTON,
    WheelInfo,
    check_wheel,
    check_wheel_stream,
)

log = logging.getLogger("carton")


@dataclass
class Collector:
    """Locks packages for one target into the model folder at `root`."""

    root: Path
    target: Target
    downloader: Downloader
    index: PublicIndex | None  # None: bundle everything
    work_dir: Path
    # Wheels read by byte ranges (sha256 -> whether they hold libraries other wheels may
    # link to: see `may_link_across`), and the bytes each cost.
    ranged: dict[str, bool] = field(default_factory=dict)
    fetched: dict[str, int] = field(default_factory=dict)
    # What the modules of each wheel read whole import when imported (sha256 -> names;
    # `loadimports`), for the wheels with dependencies whose source could be read.
    imports_on_load: dict[str, frozenset[str]] = field(default_factory=dict)

    def package(self, res: Resolved, dependencies: list[str], *, whole: bool = False) -> Package:
        """Lock `res`: check its wheel (building one if pip chose a source), and record or
        bundle it. A wheel for another platform that the public index serves is read by
        byte ranges (its directory and metadata), unless `whole`."""
        ranged = None if whole else self._by_ranges(res)
        built_from: dict[str, Any] | None = None
        index: str | None
        if ranged is not None:
            info, wheel, index = ranged
            libraries = SharedLibraries()  # see `ranged`: scanned whole where it matters
        else:
            if res.kind == "wheel":
                local = self.downloader.fetch(res.url, res.sha256)
                filename = _filename(res.url)
            else:
                local, built_from = self._build(res)
                filename = local.name
            info = self._checked(res, filename, lambda: check_wheel(local, filename))
            wheel, index = self._record_or_bundle(res, local, filename, built_from is None)
            libraries = scan_wheel(local)
            imported = load_imports(local) if dependencies else None
            if imported is not None:
                self.imports_on_load[wheel.sha256] = imported
        self._keep_metadata(wheel.sha256, info)
        for pth in info.pth_with_code:
            if pth not in PTH_DONE_BY_CARTON and not pth.endswith("-nspkg.pth"):
                log.warning("%s: %s runs code at start-up when pip-installed; carton never "
                            "runs it (its path lines are honoured)", wheel.name, pth)
        return Package(
            name=res.key,
            version=res.version,
            wheel=wheel,
            requested=res.requested,
            dependencies=tuple(dependencies),
            imports=info.imports,
            roots=info.roots,
            libraries=libraries.provides,
            needs_libraries=libraries.needs,
            built_from=built_from,
            index_url=index,
        )

    def _checked(self, res: Resolved, filename: str,
                 check: Callable[[], WheelInfo]) -> WheelInfo:
        try:
            info = check()
        except WheelError as exc:
            raise BuildError(f"{res.name} {res.version} from {_shown(res.url)}: {exc}") from exc
        if canonical_name(info.name) != res.key:
            raise BuildError(f"{res.url}: the wheel is {info.name}, pip asked for {res.name}")
        if res.yanked:
            log.warning("%s %s is yanked on its index; consider another version",
                        res.name, res.version)
        return info

    def _record_or_bundle(self, res: Resolved, local: Path, filename: str,
                          from_index: bool) -> tuple[Wheel, str | None]:
        """The wheel as the lock records it (by URL where the public index serves the
        identical file, else bundled into the model), and that index."""
        sha256 = file_sha256(local)
        size = local.stat().st_size
        index = self.index if from_index else None
        hit = index.find(res.name, filename, sha256) if index is not None else None
        if index is not None and hit is None and filename in index.files(res.name):
            log.warning("%s differs from the file of the same name on %s; bundling it",
                        filename, index.base_url)
        if index is not None and hit is not None:
            if hit.yanked and not res.yanked:
                log.warning("%s is yanked on %s", filename, index.base_url)
            return Wheel(name=filename, sha256=sha256, size=size, url=hit.url), index.base_url
        relpath = bundled_path(sha256, filename)
        self._bundle(local, relpath)
        return Wheel(name=filename, sha256=sha256, size=size, path=relpath), None

    def _by_ranges(self, res: Resolved) -> tuple[WheelInfo, Wheel, str | None] | None:
        """For a section locked for another platform: a wheel the public index serves,
        read by byte ranges, checked but for its members' bytes (left to the runtime,
        which checks each against RECORD as it unpacks), with the index's sha256. None
        where that does not apply, or the server does not answer ranges."""
        if (self.target.platform is None or res.kind != "wheel" or res.sha256 is None
                or self.index is None):
            return None
        filename = _filename(res.url)
        if self.downloader.cached(res.sha256, filename) is not None:
            return None  # here whole already (another section has it): checked whole, free
        hit = self.index.find(res.name, filename, res.sha256)
        if hit is None or urlsplit(hit.url).scheme not in ("http", "https"):
            return None
        from carton_backend.network.rangefile import BLOCK, RangeFile, RangesUnsupported

        try:
            with RangeFile(self.downloader.client, hit.url) as remote:
                stream = io.BufferedReader(remote, buffer_size=BLOCK)
                info = self._checked(res, filename, lambda: check_wheel_stream(
                    stream, remote.size, filename, contents=False))
                size = remote.size
                self.fetched[res.sha256] = remote.fetched
        except RangesUnsupported as exc:
            log.debug("%s: %s; downloading it whole", filename, exc)
            return None
        if hit.yanked and not res.yanked:
            log.warning("%s is yanked on %s", filename, self.index.base_url)
        self.ranged[res.sha256] = may_link_across(info.record)
        return (info, Wheel(name=filename, sha256=res.sha256, size=size, url=hit.url),
                self.index.base_url)

    def _build(self, res: Resolved) -> tuple[Path, dict[str, Any]]:
        out = Path(tempfile.mkdtemp(dir=self.work_dir))
        if res.kind == "sdist":
            sdist = self.downloader.fetch(res.url, res.sha256)
            source = str(sdist)
            built_from: dict[str, Any] = {"sdist": {"name": _filename(res.url),
                                                    **_location(res.url, self.root),
                                                    "hashes": {"sha256": file_sha256(sdist)}}}
        elif res.kind == "directory":
            folder = Path(url2pathname(urlsplit(res.url).path))
            source = str(folder / res.subdirectory if res.subdirectory else folder)
            # PEP 751: `path` is the folder named, `subdirectory` (below) is inside it.
            built_from = {"directory": {"path": _relative(folder, self.root)}}
        else:
            vcs = res.vcs or {}
            commit = vcs.get("commit_id", "")
            kind = vcs.get("vcs", "git")
            repo = res.url.split("#", 1)[0]
            source = f"{kind}+{repo}@{commit}"
            if res.subdirectory:
                source += f"#subdirectory={res.subdirectory}"
            built_from = {"vcs": {"type": kind, **_location(repo, self.root),
                                  "commit-id": commit}}
            if vcs.get("requested_revision"):
                built_from["vcs"]["requested-revision"] = vcs["requested_revision"]
        if res.subdirectory:
            next(iter(built_from.values()))["subdirectory"] = res.subdirectory
        return build_wheel(source, self.target, out, cwd=self.root), built_from

    def _bundle(self, local: Path, relpath: str) -> None:
        dest = self.root / relpath
        if dest.is_file() and dest.stat().st_size == local.stat().st_size:
            return  # content-addressed: the same path always holds the same bytes
        copy_file(local, dest)

    def _keep_metadata(self, sha256: str, info: WheelInfo) -> None:
        """Publish `.carton/dist-info/<sha256>/<name>-<version>.dist-info/` in one rename."""
        parent = self.root / DIST_INFO_DIR
        final = parent / sha256
        if final.is_dir():
            return
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=parent))
        try:
            folder = tmp / info.dist_info
            folder.mkdir()
            for name, data in sorted(info.metadata.items()):
                (folder / name).write_bytes(data)
            tmp.chmod(0o755)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _filename(url: str) -> str:
    from carton_backend.network.download import url_filename

    return url_filename(url)


def _relative(path: Path, root: Path) -> str:
    """A path as the lock records it: relative to the model folder when inside it, so
    that the lock does not depend on where the folder sits."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return path.resolve().as_posix()


def _location(url: str, root: Path) -> dict[str, str]:
    """PEP 751's `url`, or `path` (relative to the model folder) for a local source."""
    if urlsplit(url).scheme == "file":
        return {"path": _relative(Path(url2pathname(urlsplit(url).path)), root)}
    return {"url": url}


def _shown(url: str) -> str:
    return url if len(url) < 120 else url[:117] + "..."
