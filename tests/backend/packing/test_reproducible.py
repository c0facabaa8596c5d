"""`python -m carton_backend check-reproducible`: two builds from two copies, compared."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from carton_backend import detzip
from carton_backend.config import load_config
from carton_backend.packing.reproducible import check_reproducible

from ...conftest import run_cli
from ...factory import make_wheel, write_model
from ...indexserver import PackageIndex


def test_a_model_packs_to_the_same_bytes_twice(tmp_path: Path, pypi: PackageIndex,
                                               private: PackageIndex,
                                               hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    private.add(make_wheel(tmp_path / "w", "secret", "2.0"))  # bundled
    folder = write_model(tmp_path / "m", "alpha\nsecret\n",
                         files={"data/weights.bin": "w" * 1000, "tool.sh": "#!/bin/sh\n"})
    (folder / "tool.sh").chmod(0o755)
    proc = run_cli(hermetic_env, "check-reproducible", folder)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"reproducible: two builds of {folder} have sha256 ")
    assert (folder / ".carton" / "carton.lock").is_file()  # locked in place first
    assert not (folder / "dist").exists()  # the builds went to temporary folders


def test_builds_that_differ_are_reported_with_the_member(
        tmp_path: Path, pypi: PackageIndex, use_hermetic_env: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    folder = write_model(tmp_path / "m", "alpha\n")
    # A packer that stamps the time of day: what reproducibility must rule out.
    clock = itertools.count()
    monkeypatch.setattr(detzip, "zip_timestamp",
                        lambda: time.gmtime(946684800 + 7200 * next(clock))[:6])
    outcome = check_reproducible(load_config(folder))
    assert not outcome.reproducible and outcome.first != outcome.second
    assert outcome.difference is not None
    assert outcome.difference.endswith("(its time, mode or compression)")
