"""Resolve requirements with pip's installation report (`pip install --dry-run --report`)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carton_backend.errors import ResolveError
from carton_backend.resolution.environment import Target
from carton_hook.formats.distnames import canonical_name

log = logging.getLogger("carton")


@dataclass(frozen=True)
class Resolved:
    """One distribution from pip's report, and where pip would get it from."""

    name: str
    version: str
    url: str
    kind: str  # "wheel", "sdist", "directory" or "vcs"
    sha256: str | None
    requested: bool
    requires_dist: tuple[str, ...]
    requested_extras: tuple[str, ...]
    vcs: Mapping[str, str] | None = None
    yanked: bool = False
    subdirectory: str | None = None

    @property
    def key(self) -> str:
        return canonical_name(self.name)

    @property
    def filename(self) -> str:
        return self.url.split("#", 1)[0].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Resolution:
    """What pip chose for one interpreter."""

    marker_environment: Mapping[str, str]
    packages: tuple[Resolved, ...]


def resolve(root: Path, requirements: str, target: Target, *, constraints: Mapping[str, str],
            only_binary: bool) -> Resolution:
    """Run pip's resolver from the model folder and parse its report.

    `constraints` pins names to versions (the previous lock's choices, kept on purpose).
    """
    with tempfile.TemporaryDirectory(prefix="carton-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        if target.platform is not None:
            cmd = foreign_pip(target, Path(tmp) / "target")
        else:
            cmd = [sys.executable, "-m", "pip"]
            if not target.building:
                cmd += ["--python", str(target.executable)]
            cmd.append("install")
        cmd += ["--dry-run", "--ignore-installed", "--quiet", "--no-input",
                "--disable-pip-version-check", "--report", str(report), "-r", requirements]
        if constraints:
            cfile = Path(tmp) / "constraints.txt"
            cfile.write_text("".join(f"{n}=={v}\n" for n, v in sorted(constraints.items())),
                             encoding="utf-8")
            cmd += ["-c", str(cfile)]
        if only_binary or target.platform is not None:  # no build code for another machine
            cmd += ["--only-binary", ":all:"]
        log.debug("running %s", " ".join(cmd))
        # A dry run installs nothing, so a pip configured to insist on a virtualenv may
        # still resolve from anywhere.
        env = {**os.environ, "PIP_NO_INPUT": "1", "PIP_REQUIRE_VIRTUALENV": "0"}
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            said = pip_error(proc.stdout + proc.stderr)
            missing = _NO_MATCH.search(said) if target.platform is not None else None
            if missing:
                raise ResolveError(f"{missing.group(1)} has no wheel for {target.label} (only "
                                   "wheels are locked for another platform): " + said)
            raise ResolveError(f"pip could not resolve {root / requirements} for "
                               f"{target.label}: {said}")
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ResolveError(f"pip wrote no readable report for {target.label} ({exc}); "
                               "carton needs pip 23.0 or newer") from exc
    resolution = parse_report(data)
    if target.platform is not None:
        check_foreign(resolution, target)
    return resolution


_NO_MATCH = re.compile(r"No matching distribution found for ([^\s|;]+)")


def foreign_pip(target: Target, scratch: Path) -> list[str]:
    """pip's `install` for another machine (piprunner.py): its marker environment, and
    the platforms and ABIs of the wheels CPython `target.python_version` installs there.
    `--target` only because pip asks for it beside `--platform`; a dry run writes
    nothing there."""
    assert target.platform is not None
    version = target.python_version
    environment = target.platform.marker_environment(version)
    cmd = [sys.executable, "-m", "carton_backend.resolution.piprunner", json.dumps(environment),
           "install", "--target", str(scratch), "--python-version", version,
           "--implementation", "cp"]
    for abi in (f"cp{version.replace('.', '')}", "abi3", "none"):
        cmd += ["--abi", abi]
    for platform in target.platform.platform_tags():
        cmd += ["--platform", platform]
    return cmd


def check_foreign(resolution: Resolution, target: Target) -> None:
    """Every package of a foreign resolution is a wheel the target installs, and the
    marker environment is the target's (the pip that ran took it)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    assert target.platform is not None
    if dict(resolution.marker_environment) != target.platform.marker_environment(
            target.python_version):
        raise ResolveError(f"pip did not resolve in the marker environment of {target.label}; "
                           "carton needs a pip whose vendored packaging it can set it in")
    supported = set(target.platform.tags(target.python_version))
    for res in resolution.packages:
        try:
            tags = parse_wheel_filename(res.filename)[3] if res.kind == "wheel" else frozenset()
        except InvalidWheelFilename:
            tags = frozenset()
        if supported.isdisjoint(tags):
            raise ResolveError(f"{res.name} {res.version}: {res.filename} does not install "
                               f"on {target.label} (only wheels for it can be locked there)")


def pip_error(output: str) -> str:
    """The lines of pip's output that say what went wrong, folded into one line: each
    `ERROR:` line with the indented details pip prints under it (which package, which
    hashes)."""
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    errors: list[str] = []
    details = 0
    for line in lines:
        if line.startswith("ERROR:"):
            errors.append(line.removeprefix("ERROR:").strip())
            details = 0
        elif errors and line[:1].isspace() and details < 6:
            errors[-1] += " " + line.strip()
            details += 1
    lines = [line.strip() for line in lines]
    if "No module named pip" in output:
        errors.insert(0, f"pip is not installed in {sys.executable}")
    return " | ".join(errors or lines[-3:] or ["no output"])


def parse_report(data: Any) -> Resolution:
    """Read pip's installation report (version 1), tolerating the fields pip may omit."""
    if not isinstance(data, dict) or str(data.get("version", "")).split(".")[0] != "1":
        version = data.get("version") if isinstance(data, dict) else None
        raise ResolveError(f"pip's report has version {version!r}; carton reads version 1")
    menv = data.get("environment")
    if not isinstance(menv, dict):
        raise ResolveError("pip's report has no marker environment")
    packages = tuple(_resolved(item) for item in data.get("install", []))
    return Resolution(marker_environment={k: str(v) for k, v in menv.items()},
                      packages=packages)


def _resolved(item: Mapping[str, Any]) -> Resolved:
    meta = item.get("metadata") or {}
    info = item.get("download_info") or {}
    url = str(info.get("url", ""))
    name, version = str(meta.get("name", "")), str(meta.get("version", ""))
    if not (name and version and url):
        raise ResolveError(f"pip's report lacks the name, version or URL of {item!r:.200}")
    sha256 = None
    vcs = None
    if "vcs_info" in info:
        kind = "vcs"
        vcs = {k: str(v) for k, v in info["vcs_info"].items()}
    elif "dir_info" in info:
        kind = "directory"
    else:
        archive = info.get("archive_info") or {}
        hashes = archive.get("hashes") or {}
        sha256 = hashes.get("sha256")
        legacy = str(archive.get("hash", ""))
        if sha256 is None and legacy.startswith("sha256="):
            sha256 = legacy.split("=", 1)[1]
        path = url.split("#", 1)[0].split("?", 1)[0]
        kind = "wheel" if path.endswith(".whl") else "sdist"
    return Resolved(
        name=name,
        version=version,
        url=url,
        kind=kind,
        sha256=sha256.lower() if sha256 else None,
        requested=bool(item.get("requested", False)),
        requires_dist=tuple(meta.get("requires_dist") or ()),
        requested_extras=tuple(item.get("requested_extras") or ()),
        vcs=vcs,
        yanked=bool(item.get("is_yanked", False)),
        subdirectory=info.get("subdirectory"),
    )


def dependency_graph(resolution: Resolution) -> dict[str, list[str]]:
    """For each resolved package, the resolved packages it depends on in this environment.

    Extras are followed: `requests[socks]` pulls PySocks in only where some package asks
    for that extra, so the active extras grow until nothing changes.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    by_key = {p.key: p for p in resolution.packages}
    extras: dict[str, set[str]] = {k: set(map(canonical_name, p.requested_extras))
                                   for k, p in by_key.items()}
    parsed: dict[str, list[Requirement]] = {}
    for key, pkg in by_key.items():
        reqs = []
        for line in pkg.requires_dist:
            try:
                reqs.append(Requirement(line))
            except InvalidRequirement:
                log.warning("%s %s: ignoring unparsable dependency %r", pkg.name, pkg.version, line)
        parsed[key] = reqs
    graph: dict[str, set[str]] = {k: set() for k in by_key}
    changed = True
    while changed:
        changed = False
        for key, reqs in parsed.items():
            for req in reqs:
                dep = canonical_name(req.name)
                if dep not in by_key or not _applies(req, resolution.marker_environment,
                                                     extras[key]):
                    continue
                if dep not in graph[key]:
                    graph[key].add(dep)
                    changed = True
                new = set(map(canonical_name, req.extras)) - extras[dep]
                if new:
                    extras[dep] |= new
                    changed = True
    return {k: sorted(v) for k, v in graph.items()}


def _applies(req: Any, menv: Mapping[str, str], extras: Iterable[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**menv, "extra": e}) for e in ("", *extras))
