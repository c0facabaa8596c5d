"""Against the real index: what carton says of a locked top-level name before its wheel
is installed (a package or a module: `pkgutil.iter_modules()`, a deferred spec), read from
the wheel's RECORD (carton_hook/loading/listing.py), is what pkgutil says of the name once
pip installed the wheel."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import zipfile
from pathlib import Path

from carton_hook.formats.importnames import import_names
from carton_hook.formats.wheelcheck import check_wheel
from carton_hook.loading.listing import is_package

from .conftest import once

# Packages, single modules, extension modules beside their package (pyyaml's `_yaml`),
# several top-level names in one wheel (attrs, setuptools), and wheels that provide only
# namespace-qualified names (protobuf, googleapis-common-protos: `google` is the plan's
# namespace, a package without asking).
PROJECTS = ["attrs", "protobuf", "googleapis-common-protos", "typing-extensions", "six",
            "setuptools<81", "pyyaml", "python-dateutil", "pygments", "docutils",
            "markupsafe", "msgpack"]


@once
def test_a_name_is_a_package_before_its_install_where_pip_s_install_makes_it_one(
        tmp_path: Path, real_env: dict[str, str]) -> None:
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "-q"]
    proc = subprocess.run([*pip, "download", "--no-deps", "--only-binary", ":all:", "-d",
                           str(wheels), *PROJECTS], env=real_env, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    found = sorted(wheels.glob("*.whl"))
    proc = subprocess.run([*pip, "install", "--no-deps", "--no-compile", "--target", str(site),
                           *map(str, found)], env=real_env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    listed = {m.name: m.ispkg for m in pkgutil.iter_modules([str(site)])}
    compared: list[str] = []
    for wheel in found:
        info = check_wheel(wheel)
        dist_info = tmp_path / "recorded" / wheel.name / info.dist_info
        dist_info.mkdir(parents=True)
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in import_names(zf.namelist()) if "." not in n]
            (dist_info / "RECORD").write_bytes(zf.read(f"{info.dist_info}/RECORD"))
        plan: dict[str, object] = {
            "listed": dict.fromkeys(names), "imports": dict.fromkeys(names, "sha"),
            "wheels": {"sha": {"dist_info": str(dist_info), "roots": [""]}},
            "metadata_pack": None}
        for name in names:
            answer = is_package(plan, name)  # type: ignore[arg-type]
            assert answer == listed.get(name), (wheel.name, name, answer)
            compared.append(name)
    assert len(compared) >= 14, compared
    assert {"_yaml", "yaml", "six", "typing_extensions", "attr", "attrs"} <= set(compared)
