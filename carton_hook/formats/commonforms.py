"""The common forms of lock markers, versions, wheel filenames and tags, decided without
`packaging`.

A first run's model process chooses its lock section before the model's code runs, and
importing packaging's markers (with its versions, specifiers and tags) was most of that:
~12 ms of a critical path (docs/performance.md). The forms carton writes and PyPI's wheels
use are few and simple; each function here decides those, exactly as packaging does, and
answers None ("not one of these forms") for anything else, which is then left to
packaging. None of them ever says "no" where packaging would have to be asked: a wheel is
either known to install here, or undecided.
"""

from __future__ import annotations

import os
import re
import sys

from carton_hook.errors import CartonError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


class Undecided(CartonError, LookupError):
    """Deciding this needs packaging: it is not one of the forms decided here. Never
    reported: whoever asks for an answer without packaging catches it, and asks it."""

    kind = "undecided"


# The marker variables carton's locks select sections by (env_marker in the build half).
_MARKER_VARIABLES = ("sys_platform", "platform_machine", "implementation_name",
                     "python_version")
_CLAUSE = re.compile(r"([a-z_]+) == '([^'\\]*)'")
# A PEP 440 version compares as one (not as a string) when packaging evaluates a marker
# clause whose value could be a version; these are values no version starts like.
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAJOR_MINOR = re.compile(r"[1-9][0-9]*\.(?:0|[1-9][0-9]*)")

# Versions in PEP 440's normal form, without epoch or local part: each is a valid version,
# and two that are the same string are equal versions.
_NUMBER = r"(?:0|[1-9][0-9]*)"
_VERSION = re.compile(rf"{_NUMBER}(?:\.{_NUMBER})*(?:(?:a|b|rc){_NUMBER})?"
                      rf"(?:\.post{_NUMBER})?(?:\.dev{_NUMBER})?")
# name-version-interpreters-abis-platforms.whl, no build tag, tags in lower case.
_WHEEL = re.compile(r"([A-Za-z0-9._]+)-([^-]+)-([a-z][a-z0-9]*(?:\.[a-z][a-z0-9]*)*)"
                    r"-([a-z0-9_]+(?:\.[a-z0-9_]+)*)-([a-z0-9_]+(?:\.[a-z0-9_]+)*)\.whl")
_MANYLINUX = re.compile(rf"manylinux_2_({_NUMBER})_([a-z0-9_]+)")
_LEGACY_MANYLINUX = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}
# The oldest glibc minor that packaging gives manylinux tags for, per architecture.
_OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}
_SPECIFIER = re.compile(r"\s*(~=|==|!=|<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)*)(\.\*)?\s*")


def marker_clauses(marker: str) -> dict[str, str] | None:
    """The clauses of `marker` if it is `name == 'value'` clauses joined by `and` (the
    form carton writes), each naming one of the variables carton selects by with a value
    that compares as a string (or, for `python_version`, a `MAJOR.MINOR`); else None.
    Such a marker is valid PEP 508."""
    clauses: dict[str, str] = {}
    for clause in marker.split(" and "):
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            return None
        name, value = match.groups()
        if name not in _MARKER_VARIABLES or name in clauses or not _plain(name, value):
            return None
        clauses[name] = value
    return clauses


def _plain(name: str, value: str) -> bool:
    """Whether `value` of the marker variable `name` compares with others of its kind
    as a string: a `MAJOR.MINOR` without leading zeros for `python_version` (PEP 440
    equal only when the same string), else a word that no version starts like ("v1"
    would be one)."""
    if name == "python_version":
        return _MAJOR_MINOR.fullmatch(value) is not None
    return _WORD.fullmatch(value) is not None and not re.match(r"[vV][0-9]", value)


def marker_environment() -> dict[str, str] | None:
    """This interpreter's values of the variables `marker_clauses` knows, as packaging's
    `default_environment()` gives them; None where they are not known here without it
    (carton computes them only on Linux)."""
    if sys.platform != "linux":
        return None
    machine = os.uname().machine  # platform.machine() on Linux
    if machine in ("", "unknown"):
        return None
    return {"sys_platform": sys.platform, "platform_machine": machine,
            "implementation_name": sys.implementation.name,
            "python_version": f"{sys.version_info[0]}.{sys.version_info[1]}"}


def marker_holds(marker: str, environment: Mapping[str, str]) -> bool:
    """Whether `marker` holds in `environment`; raises Undecided if the marker, or a
    value of the environment it compares with, is not of the forms decided here."""
    clauses = marker_clauses(marker)
    if clauses is None:
        raise Undecided(marker)
    for name in clauses:
        if not _plain(name, environment.get(name, "")):
            raise Undecided(f"{name} == {environment.get(name)!r}")
    return all(environment[name] == value for name, value in clauses.items())


def is_version(text: str) -> bool:
    """Whether `text` is a version in the form decided here (then it is valid PEP 440)."""
    return _VERSION.fullmatch(text) is not None


def wheel_parts(filename: str) -> tuple[str, str, list[tuple[str, str, str]]] | None:
    """The distribution's name part, the version and the tags of a wheel filename in the
    forms decided here (which packaging's `parse_wheel_filename` accepts), or None."""
    match = _WHEEL.fullmatch(filename)
    if match is None:
        return None
    name, version, interpreters, abis, platforms = match.groups()
    if "__" in name or not is_version(version):
        return None
    tags = [(i, a, p) for i in interpreters.split(".") for a in abis.split(".")
            for p in platforms.split(".")]
    return name, version, tags


def installs_here(tags: list[tuple[str, str, str]],
                  here: Interpreter | None = None) -> bool | None:
    """True if one of `tags` is among those packaging's `sys_tags()` gives this
    interpreter; None where that is not decided here. Decided: a 64-bit CPython without
    debug or free-threading ABI flags on glibc Linux for x86_64 or aarch64, and pure or
    manylinux tags (not musllinux). `here`: `interpreter()`, for a caller that asks about
    many wheels."""
    here = interpreter() if here is None else here
    if not here:
        return None
    for tag in tags:
        if _supported(tag, *here):
            return True
    return None


# (Python's minor version, machine, glibc's minor version, whether a `_manylinux` module
# may veto manylinux tags), or () where `installs_here` decides nothing.
Interpreter = tuple[()] | tuple[int, str, int, bool]


def interpreter() -> Interpreter:
    """What `installs_here` needs to know of this interpreter."""
    if (sys.implementation.name != "cpython" or sys.platform != "linux"
            or sys.version_info[0] != 3 or sys.maxsize <= 2**32
            or sys.abiflags or hasattr(sys, "gettotalrefcount")
            or "_PYTHON_HOST_PLATFORM" in os.environ):
        return ()
    machine = os.uname().machine
    if machine not in _OLDEST_GLIBC_MINOR:
        return ()
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return ()
    parts = glibc.split()
    match = re.match(r"2\.([0-9]+)", parts[1]) if len(parts) == 2 else None
    if match is None:
        return ()
    # A `_manylinux` module may veto manylinux tags (packaging imports it to ask).
    from importlib.machinery import PathFinder

    vetoed = "_manylinux" in sys.modules or PathFinder.find_spec("_manylinux") is not None
    return sys.version_info[1], machine, int(match[1]), vetoed


def _supported(tag: tuple[str, str, str], minor: int, machine: str, glibc_minor: int,
               vetoed: bool) -> bool:
    """Whether `tag` is among this interpreter's `sys_tags()` (cpython_tags, then
    compatible_tags, in packaging's terms)."""
    interpreter, abi, platform = tag
    cp = f"cp3{minor}"
    py = interpreter.startswith("py") and (interpreter == "py3" or any(
        interpreter == f"py3{m}" for m in range(minor + 1)))
    if platform == "any":
        return abi == "none" and (interpreter == cp or py)
    if platform != f"linux_{machine}":
        if vetoed:
            return False
        match = _MANYLINUX.fullmatch(platform)
        if match is not None and match[2] == machine:
            needs = int(match[1])  # glibc 2.needs or newer
        elif platform.endswith(f"_{machine}"):
            needs = _LEGACY_MANYLINUX.get(platform.removesuffix(f"_{machine}"), -1)
        else:
            return False
        if not _OLDEST_GLIBC_MINOR[machine] <= needs <= glibc_minor:
            return False
    if interpreter == cp:
        return abi in (cp, "abi3", "none")
    if abi == "abi3":
        return any(interpreter == f"cp3{m}" for m in range(2, minor))
    return abi == "none" and py


def requires_python_allows(specifiers: str) -> bool | None:
    """True if this (final release of) Python is in `specifiers` (a requires-python of
    release-only versions: `>=3.10`, `>=3.9,<4`, `~=3.11`, `==3.*`); None otherwise, or
    where it is not decided here (a pre-release Python, wildcards past `==`/`!=`)."""
    if sys.version_info.releaselevel != "final":
        return None
    here = tuple(sys.version_info[:3])
    for clause in specifiers.split(","):
        match = _SPECIFIER.fullmatch(clause)
        if match is None:
            return None
        op, text, wildcard = match.groups()
        release = tuple(int(n) for n in text.split("."))
        if wildcard and op not in ("==", "!="):
            return None
        if op == "~=" and len(release) < 2:
            return None
        if not _release_holds(here, op, release, bool(wildcard)):
            return None
    return True


def _release_holds(here: tuple[int, ...], op: str, release: tuple[int, ...],
                   wildcard: bool) -> bool:
    """PEP 440's comparison of the final release `here` with a release-only specifier."""
    if wildcard:
        prefix = (here + (0,) * len(release))[:len(release)]
        return (prefix == release) == (op == "==")
    width = max(len(here), len(release))
    a, b = here + (0,) * (width - len(here)), release + (0,) * (width - len(release))
    if op == "~=":
        return a >= b and (here + (0,) * len(release))[:len(release) - 1] == release[:-1]
    return {"==": a == b, "!=": a != b, "<=": a <= b, ">=": a >= b, "<": a < b,
            ">": a > b}[op]
