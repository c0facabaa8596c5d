"""Turn one resolved distribution into a locked package: a checked wheel, recorded by URL
when the public index has the identical file, bundled into the model otherwise.

Every wheel is fetched once and validated (hash, RECORD, safe names) here, whether it is
recorded or bundled; its import names and the metadata that `importlib.metadata` needs
are taken from it at the same time.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from carton_hook.errors import WheelError
from carton_hook.filesystem.atomic import TEMP_PREFIX, copy_file
from carton_hook.formats.hashing import file_sha256
from carton_hook.formats.lockfile import DIST_INFO_DIR, Package, Wheel, bundled_path, canonical_name
from carton_hook.formats.wheelcheck import WheelInfo, check_wheel

from .download import Downloader
from .elfdeps import scan_wheel
from .environment import Target
from .errors import BuildError
from .pypi import PublicIndex
from .resolve import Resolved
from .wheelbuild import build_wheel

log = logging.getLogger("carton")


@dataclass
class Collector:
    """Locks packages for one target into the model folder at `root`."""

    root: Path
    target: Target
    downloader: Downloader
    index: PublicIndex | None  # None: bundle everything
    work_dir: Path

    def package(self, res: Resolved, dependencies: list[str]) -> Package:
        """Lock `res`: check its wheel (building one if pip chose a source), and record or
        bundle it."""
        built_from: dict[str, Any] | None = None
        if res.kind == "wheel":
            local = self.downloader.fetch(res.url, res.sha256)
            filename = _filename(res.url)
        else:
            local, built_from = self._build(res)
            filename = local.name
        try:
            info = check_wheel(local, filename)
        except WheelError as exc:
            raise BuildError(f"{res.name} {res.version} from {_shown(res.url)}: {exc}") from exc
        if canonical_name(info.name) != res.key:
            raise BuildError(f"{res.url}: the wheel is {info.name}, pip asked for {res.name}")
        sha256 = file_sha256(local)
        size = local.stat().st_size
        if res.yanked:
            log.warning("%s %s is yanked on its index; consider another version",
                        res.name, res.version)
        index = self.index if built_from is None else None
        hit = index.find(res.name, filename, sha256) if index is not None else None
        if index is not None and hit is None and filename in index.files(res.name):
            log.warning("%s differs from the file of the same name on %s; bundling it",
                        filename, index.base_url)
        if index is not None and hit is not None:
            wheel = Wheel(name=filename, sha256=sha256, size=size, url=hit.url)
            if hit.yanked and not res.yanked:
                log.warning("%s is yanked on %s", filename, index.base_url)
        else:
            relpath = bundled_path(sha256, filename)
            wheel = Wheel(name=filename, sha256=sha256, size=size, path=relpath)
            self._bundle(local, relpath)
        self._keep_metadata(sha256, info)
        libraries = scan_wheel(local)
        for pth in info.pth_with_code:
            if pth != "distutils-precedence.pth" and not pth.endswith("-nspkg.pth"):
                log.warning("%s: %s runs code at start-up when pip-installed; carton never "
                            "runs it (its path lines are honoured)", filename, pth)
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
            index=index.base_url if index is not None and hit is not None else None,
        )

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
    from .download import url_filename

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
