"""carton_backend.packing.metadata: the model's core metadata (PKG-INFO / METADATA): pins of the
requested packages with their sections' markers, Requires-Python, [project]'s fields."""

from __future__ import annotations

import hashlib
from pathlib import Path

from packaging.metadata import Metadata

from carton_backend.config import ModelConfig
from carton_backend.packing.metadata import core_metadata, requires_dist, requires_python
from carton_hook.formats.lockfile import Environment, Lock, Package, Wheel
from carton_hook.formats.version import CREATED_BY

LINUX = "sys_platform == 'linux'"
MAC = "sys_platform == 'darwin'"


def package(name: str, version: str, *, requested: bool = True) -> Package:
    filename = f"{name}-{version}-py3-none-any.whl"
    sha = hashlib.sha256(filename.encode()).hexdigest()
    return Package(name, version, Wheel(filename, sha, 10, url=f"https://x.example/{filename}"),
                   requested=requested)


def section(marker: str, *packages: Package, python: str = "3.11") -> Environment:
    return Environment(f"id-{marker}-{python}", marker, {"python_version": python}, packages)


def lock(*sections: Environment) -> Lock:
    return Lock("requirements.txt", "0" * 64, sections)


def config(**fields: object) -> ModelConfig:
    return ModelConfig(root=Path("/models/demo"), name="demo-model", version="0.1.0",
                       entrypoint="model:main", **fields)  # type: ignore[arg-type]


def test_a_pin_every_section_shares_has_no_marker() -> None:
    locked = lock(section(LINUX, package("numpy", "2.0"), package("six", "1.17")),
                  section(MAC, package("six", "1.17"), package("numpy", "2.0")))
    assert requires_dist(locked) == ["numpy==2.0", "six==1.17"]


def test_pins_that_differ_carry_their_sections_markers() -> None:
    locked = lock(section(LINUX, package("torch", "2.3"), package("six", "1.17")),
                  section(MAC, package("torch", "2.2"), package("six", "1.17")))
    assert requires_dist(locked) == [
        "six==1.17",
        f"torch==2.2 ; ({MAC})",
        f"torch==2.3 ; ({LINUX})",
    ]


def test_a_package_requested_in_one_section_only_is_pinned_there_only() -> None:
    locked = lock(section(LINUX, package("alpha", "1.0"), package("uvloop", "0.19")),
                  section(MAC, package("alpha", "1.0")))
    assert requires_dist(locked) == ["alpha==1.0", f"uvloop==0.19 ; ({LINUX})"]


def test_dependencies_nobody_asked_for_are_not_required() -> None:
    locked = lock(section(LINUX, package("alpha", "1.0"), package("beta", "2.0", requested=False)))
    assert requires_dist(locked) == ["alpha==1.0"]


def test_requires_python_is_the_projects_own_when_it_has_one() -> None:
    locked = lock(section(LINUX, python="3.11"))
    assert requires_python(config(requires_python=">=3.9,<4"), locked) == ">=3.9,<4"


def test_requires_python_is_otherwise_the_oldest_python_locked_for() -> None:
    """Compared as numbers: 3.9 is older than 3.10, which a string sort gets wrong."""
    locked = lock(section(LINUX, python="3.10"), section(MAC, python="3.9"),
                  section("os_name == 'nt'", python="3.12"))
    assert requires_python(config(), locked) == ">=3.9"


def test_requires_python_is_empty_when_no_section_says_a_version() -> None:
    assert requires_python(config(), lock()) == ""
    odd = Environment("odd", LINUX, {"python_version": "three"}, ())
    assert requires_python(config(), lock(odd)) == ""


def test_minimal_metadata_names_the_model_and_who_packed_it() -> None:
    text = core_metadata(config(), lock(section(LINUX, package("alpha", "1.0"), python="3.11")))
    assert text == ("Metadata-Version: 2.1\n"
                    "Name: demo-model\n"
                    "Version: 0.1.0\n"
                    f"Summary: demo-model, packed by {CREATED_BY}\n"
                    "Requires-Python: >=3.11\n"
                    "Requires-Dist: alpha==1.0\n").encode()


def test_no_requires_python_line_without_a_version() -> None:
    assert b"Requires-Python" not in core_metadata(config(), lock())


def test_project_fields_in_order_with_folded_lines_and_the_readme_as_body() -> None:
    cfg = config(
        metadata=(("Summary", "A demo model"),
                  ("License", "MIT License\n\nCopyright the authors\n"),
                  ("Author", "Ada"),
                  ("Project-URL", "Homepage, https://example.com")),
        readme=("text/markdown", "# Demo\n\nIt *predicts*.\n\n\n"))
    text = core_metadata(cfg, lock(section(LINUX, package("alpha", "1.0"))))
    assert text.decode().splitlines()[3:9] == [
        "Summary: A demo model",
        "License: MIT License",
        "        ",
        "        Copyright the authors",
        "Author: Ada",
        "Project-URL: Homepage, https://example.com",
    ]
    assert text.endswith(b"Description-Content-Type: text/markdown\n\n# Demo\n\nIt *predicts*.\n")
    meta = Metadata.from_email(text)  # valid core metadata, as packaging reads it
    assert (meta.name, str(meta.version), meta.summary) == ("demo-model", "0.1.0", "A demo model")
    assert meta.description == "# Demo\n\nIt *predicts*.\n"
    assert meta.author == "Ada"
    assert [str(r) for r in meta.requires_dist or []] == ["alpha==1.0"]
    assert str(meta.requires_python) == ">=3.11"


def test_a_marker_pin_survives_packagings_reading() -> None:
    locked = lock(section(LINUX, package("torch", "2.3")), section(MAC, package("torch", "2.2")))
    meta = Metadata.from_email(core_metadata(config(), locked))
    pins = {str(r.specifier): r.marker for r in meta.requires_dist or []}
    assert pins["==2.3"] is not None and pins["==2.3"].evaluate({"sys_platform": "linux"})
    assert pins["==2.2"] is not None and not pins["==2.2"].evaluate({"sys_platform": "linux"})
