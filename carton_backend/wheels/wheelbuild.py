"""Build one wheel from an sdist, a local folder or a VCS checkout, reproducibly.

`pip wheel --no-deps` drives the project's own build backend in an isolated
environment. `SOURCE_DATE_EPOCH` fixes the timestamps inside the wheel, and pip's wheel
cache is bypassed so that a wheel built earlier without it is never reused.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from carton_backend.detzip import source_date_epoch
from carton_backend.errors import WheelBuildError
from carton_backend.resolution.environment import Target
from carton_backend.resolution.resolve import pip_error

log = logging.getLogger("carton")

def build_wheel(source: str, target: Target, out_dir: Path, *, cwd: Path) -> Path:
    """Build `source` (a path to an sdist or folder, or a `git+...@commit` URL) into a
    wheel for `target`, written below `out_dir`; returns the wheel's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wheel-", dir=out_dir) as tmp:
        cmd = [sys.executable, "-m", "pip"]
        if not target.building:
            cmd += ["--python", str(target.executable)]
        cmd += ["wheel", "--no-deps", "--no-cache-dir", "--quiet", "--no-input",
                "--disable-pip-version-check", "--wheel-dir", tmp, source]
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(source_date_epoch()), "PIP_NO_INPUT": "1"}
        log.info("building a wheel from %s for %s", source, target.label)
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise WheelBuildError(f"cannot build a wheel from {source} for {target.label}: "
                                  f"{pip_error(proc.stdout + proc.stderr)}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise WheelBuildError(f"building {source} gave {len(wheels)} wheels, expected 1")
        final = out_dir / wheels[0].name
        os.replace(wheels[0], final)
        return final
