"""Target platforms a lock section is made for without running there.

Named as uv's `--python-platform` names them (`x86_64-manylinux_2_28`,
`aarch64-apple-darwin`, `x86_64-pc-windows-msvc`, ...), so that one name means the same
machine to both. A platform gives, for a CPython version, the marker environment that
dependency markers are evaluated in and the wheel tags it installs, most specific first:
what pip would compute there, worked out here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from carton_backend.errors import BuildError

if TYPE_CHECKING:
    from packaging.tags import Tag

# The oldest glibc each architecture's manylinux wheels go down to, and the legacy
# names PEP 600 keeps as aliases of three glibc levels.
_OLDEST_GLIBC = {"x86_64": 5, "i686": 5, "aarch64": 17}
_LEGACY_MANYLINUX = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}
# uv's defaults where a name gives no level: glibc 2.17 for the `-unknown-linux-gnu`
# names, musl 1.2, macOS 13.0 (the oldest macOS still supported by Apple).
_DEFAULT_GLIBC = 17
_DEFAULT_MUSL = 2
_DEFAULT_MACOS = (13, 0)

_MACHINE = {  # platform_machine as each OS reports it
    ("windows", "x86_64"): "AMD64", ("windows", "aarch64"): "ARM64", ("windows", "i686"): "x86",
    ("macos", "aarch64"): "arm64", ("macos", "x86_64"): "x86_64",
}
_SYSTEM = {"manylinux": ("linux", "Linux", "posix"), "musllinux": ("linux", "Linux", "posix"),
           "macos": ("darwin", "Darwin", "posix"), "windows": ("win32", "Windows", "nt")}
_WINDOWS_TAG = {"x86_64": "win_amd64", "aarch64": "win_arm64", "i686": "win32"}

_MANYLINUX = re.compile(r"^(x86_64|aarch64)-manylinux(?:2014|_2_(\d+))$")
_ALIASES = {"linux": "x86_64-unknown-linux-gnu", "windows": "x86_64-pc-windows-msvc",
            "macos": "aarch64-apple-darwin"}


class PlatformError(BuildError, ValueError):
    """A platform name carton does not know; the message lists the ones it does."""


@dataclass(frozen=True)
class Platform:
    """One target: an OS flavour (`manylinux`, `musllinux`, `macos`, `windows`), an
    architecture (`x86_64`, `aarch64`, `i686`) and, for the first three, the libc or
    macOS version it guarantees."""

    name: str
    os: str
    arch: str
    version: tuple[int, int] = (0, 0)

    def marker_environment(self, python_version: str) -> dict[str, str]:
        """PEP 508's marker environment for CPython `python_version` (`3.12`) here:
        the patch level is taken to be 0, as uv's `--python-version` does."""
        sys_platform, system, os_name = _SYSTEM[self.os]
        full = f"{python_version}.0"
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": os_name,
            "platform_machine": _MACHINE.get((self.os, self.arch), self.arch),
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": system,
            "platform_version": "",
            "python_full_version": full,
            "python_version": python_version,
            "sys_platform": sys_platform,
        }

    def platform_tags(self) -> list[str]:
        """The platform parts of the wheel tags this platform installs, best first."""
        if self.os == "windows":
            return [_WINDOWS_TAG[self.arch]]
        if self.os == "macos":
            from packaging.tags import mac_platforms

            return list(mac_platforms(self.version, "arm64" if self.arch == "aarch64"
                                      else self.arch))
        major, newest = self.version
        oldest = 0 if self.os == "musllinux" else _OLDEST_GLIBC[self.arch]
        tags: list[str] = []
        for minor in range(newest, oldest - 1, -1):
            tags.append(f"{self.os}_{major}_{minor}_{self.arch}")
            legacy = _LEGACY_MANYLINUX.get(minor) if self.os == "manylinux" else None
            if legacy is not None and (legacy != "manylinux1" or self.arch != "aarch64"):
                tags.append(f"{legacy}_{self.arch}")
        return tags

    def tags(self, python_version: str) -> list[Tag]:
        """Every wheel tag CPython `python_version` installs here, best first (the order
        `packaging.tags.sys_tags` gives on the machine itself)."""
        from packaging.tags import compatible_tags, cpython_tags

        version = tuple(int(part) for part in python_version.split("."))
        interpreter = f"cp{version[0]}{version[1]}"
        platforms = self.platform_tags()
        return [*cpython_tags(version, [interpreter], platforms),
                *compatible_tags(version, interpreter, platforms)]


def parse_platform(name: str) -> Platform:
    """The platform a uv `--python-platform` name stands for."""
    canonical = _ALIASES.get(name, name)
    manylinux = _MANYLINUX.match(canonical)
    if manylinux:
        arch, minor = manylinux.group(1), int(manylinux.group(2) or 17)
        if minor < 17:
            raise PlatformError(f"{name!r}: manylinux levels start at 2_17 for {arch}")
        return Platform(name, "manylinux", arch, (2, minor))
    fixed = {
        "x86_64-unknown-linux-gnu": ("manylinux", "x86_64", (2, _DEFAULT_GLIBC)),
        "aarch64-unknown-linux-gnu": ("manylinux", "aarch64", (2, _DEFAULT_GLIBC)),
        "x86_64-unknown-linux-musl": ("musllinux", "x86_64", (1, _DEFAULT_MUSL)),
        "aarch64-unknown-linux-musl": ("musllinux", "aarch64", (1, _DEFAULT_MUSL)),
        "x86_64-apple-darwin": ("macos", "x86_64", _DEFAULT_MACOS),
        "aarch64-apple-darwin": ("macos", "aarch64", _DEFAULT_MACOS),
        "x86_64-pc-windows-msvc": ("windows", "x86_64", (0, 0)),
        "aarch64-pc-windows-msvc": ("windows", "aarch64", (0, 0)),
        "i686-pc-windows-msvc": ("windows", "i686", (0, 0)),
    }.get(canonical)
    if fixed is None:
        raise PlatformError(f"{name!r} is not a platform carton locks for; use one of "
                            f"{', '.join(known_names())}")
    return Platform(name, *fixed)


def known_names() -> list[str]:
    """The names `parse_platform` takes (manylinux levels as a range)."""
    return ["linux", "windows", "macos", "x86_64-unknown-linux-gnu",
            "aarch64-unknown-linux-gnu", "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-musl", "x86_64-apple-darwin", "aarch64-apple-darwin",
            "x86_64-pc-windows-msvc", "aarch64-pc-windows-msvc", "i686-pc-windows-msvc",
            "x86_64-manylinux2014", "aarch64-manylinux2014", "x86_64-manylinux_2_N",
            "aarch64-manylinux_2_N (N >= 17)"]
