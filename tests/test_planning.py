"""Selection and the plan, from a lock written here: which section applies on this
interpreter, what the plan says about it, and when a plan file is read back or made
again. No worker, no archive, no index."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from carton_hook.errors import CartonError
from carton_hook.formats.lockfile import Environment, Lock, Package, Wheel, dump_lock
from carton_hook.planning.models import open_model
from carton_hook.planning.planfile import (
    PLAN_FORMAT,
    closure,
    dump_plan,
    file_key,
    file_signature,
    read_plan,
)
from carton_hook.planning.select import NoEnvironmentError, make_plan

HERE = f"sys_platform == '{sys.platform}'"
ELSEWHERE = "sys_platform == 'plan9'"


def package(name: str, imports: tuple[str, ...], deps: tuple[str, ...] = (),
            tag: str = "py3-none-any") -> Package:
    sha = (name * 64)[:64].encode().hex()[:64]
    return Package(name, "1.0", Wheel(f"{name}-1.0-{tag}.whl", sha, 100,
                                      url=f"https://files.example/{name}-1.0-{tag}.whl"),
                   requested=True, dependencies=deps, imports=imports)


def model_folder(tmp_path: Path, *sections: Environment) -> Path:
    folder = tmp_path / "model"
    (folder / ".carton").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "m"\nversion = "1.0"\n[tool.carton]\nentrypoint = "model:main"\n')
    (folder / "model.py").write_text("def main():\n    pass\n")
    lock = Lock("requirements.txt", "0" * 64, tuple(sections), created_by="test")
    (folder / ".carton" / "carton.lock").write_bytes(dump_lock(lock))
    return folder


def section(env_id: str, marker: str, *packages: Package) -> Environment:
    return Environment(env_id, marker, {"sys_platform": sys.platform}, tuple(packages))


ALPHA = package("alpha", ("alpha",), deps=("beta",))
BETA = package("beta", ("beta",))
GOOGLE_A = package("gapi", ("google.api",))
GOOGLE_B = package("gproto", ("google.protobuf",))


def test_the_first_section_that_holds_here_is_chosen_and_planned(tmp_path: Path) -> None:
    folder = model_folder(tmp_path,
                          section("elsewhere", ELSEWHERE, package("other", ("other",))),
                          section("here", HERE, ALPHA, BETA, GOOGLE_A, GOOGLE_B))
    plan = make_plan(open_model(folder, tmp_path / "home"))
    assert (plan["section"], plan["format"], plan["model"]) == ("here", PLAN_FORMAT,
                                                                str(folder))
    a, b = ALPHA.wheel.sha256, BETA.wheel.sha256
    assert plan["imports"] == {"alpha": a, "beta": b, "google.api": GOOGLE_A.wheel.sha256,
                               "google.protobuf": GOOGLE_B.wheel.sha256}
    assert plan["namespaces"] == {"google": sorted([GOOGLE_A.wheel.sha256,
                                                    GOOGLE_B.wheel.sha256])}
    assert plan["wheels"][a]["deps"] == [b] and plan["wheels"][b]["deps"] == []
    assert plan["wheels"][a]["url"] == ALPHA.wheel.url
    assert sorted(closure(plan, [a])) == sorted([a, b])
    assert closure(plan, [b]) == [b]


def test_a_section_whose_wheels_do_not_install_here_is_passed_over(tmp_path: Path) -> None:
    """Markers cannot tell ABIs apart; the wheels' tags can."""
    foreign = package("alpha", ("alpha",), tag="cp27-cp27mu-manylinux1_x86_64")
    folder = model_folder(tmp_path, section("old-abi", HERE, foreign),
                          section("pure", HERE, ALPHA, BETA))
    assert make_plan(open_model(folder, tmp_path / "home"))["section"] == "pure"


@pytest.mark.parametrize("switch", [None, "CARTON_NO_PACK"])
def test_no_section_here_says_so_and_whether_carton_can_add_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, switch: str | None) -> None:
    if switch:
        monkeypatch.setenv(switch, "1")
    folder = model_folder(tmp_path, section("elsewhere", ELSEWHERE, ALPHA))
    with pytest.raises(NoEnvironmentError) as caught:
        make_plan(open_model(folder, tmp_path / "home"))
    assert "no lock section for" in str(caught.value) and "elsewhere" in str(caught.value)
    # Packing at load time is possible here (pip and carton_backend are installed) unless
    # switched off; then the error is one the model's process can only report.
    assert caught.value.kind == ("error" if switch else "no-environment")
    assert isinstance(caught.value, CartonError) and isinstance(caught.value, LookupError)


def test_a_plan_file_is_read_back_only_while_it_still_describes_the_model(
        tmp_path: Path) -> None:
    folder = model_folder(tmp_path, section("here", HERE, ALPHA, BETA))
    plan = make_plan(open_model(folder, tmp_path / "home"))
    requirements = folder / "requirements.txt"
    requirements.write_text("alpha\n")
    plan["identity"] = "who"
    plan["watch"] = [[str(requirements), file_signature(str(requirements))]]
    path = tmp_path / "plans" / "x.plan"
    path.parent.mkdir()
    path.write_bytes(dump_plan(plan))
    assert read_plan(str(path), "who") == plan
    assert read_plan(str(path), "someone else") is None  # another model or interpreter
    requirements.write_text("alpha\nbeta\n")  # an edited requirements file
    os.utime(requirements, ns=(1, 1))
    assert read_plan(str(path), "who") is None
    path.write_bytes(dump_plan({**plan, "watch": [], "format": PLAN_FORMAT - 1}))
    assert read_plan(str(path)) is None  # another plan format
    path.write_bytes(b"not marshal")
    assert read_plan(str(path)) is None


def test_the_plan_key_covers_the_identity_and_the_format() -> None:
    assert file_key("a") == file_key("a") != file_key("b")
    assert len(file_key("a")) == 16 and int(file_key("a"), 16) >= 0
