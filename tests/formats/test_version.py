"""carton_hook/formats/version.py: carton's version, the distribution's own, and the
`created-by` it writes into every lock and archive."""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.version import Version

import carton_hook
from carton_hook.formats.version import CREATED_BY, __version__

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_a_canonical_pep_440_version() -> None:
    assert str(Version(__version__)) == __version__


def test_created_by_names_carton_and_its_version() -> None:
    assert CREATED_BY.split(" ") == ["carton", __version__]


def test_the_distribution_takes_its_version_from_this_module() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "carton_hook.formats.version.__version__"}


def test_the_runtime_package_answers_with_this_modules_values() -> None:
    assert (carton_hook.__version__, carton_hook.CREATED_BY) == (__version__, CREATED_BY)
