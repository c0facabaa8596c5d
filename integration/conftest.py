"""Integration tests use the real package index, through pip's own configuration.

They are not hermetic on purpose: they check what users get from PyPI. Run them with
`nox -s integration`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tests whose subject does not change with the Python version (an example's own
# behaviour, pip's and uv's reading of a pylock): once per CI run, on the active Python,
# to keep CI within its time.
once = pytest.mark.skipif(sys.version_info[:2] != (3, 11),
                          reason="runs once per CI, on CPython 3.11 (the active one)")

# The rows of test_suites.py's table: other projects' suites under carton and in a venv.
# Each test hands its row over as the user property SUITE_ROW (its place in the table and
# the row), which reaches this process also from pytest-xdist's workers.
SUITE_ROW = "suite_row"
SUITE_REPORT: list[tuple[int, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        SUITE_REPORT.extend(tuple(value) for name, value in report.user_properties
                            if name == SUITE_ROW)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUITE_REPORT:
        terminalreporter.section("other projects' suites: carton against a plain venv")
        terminalreporter.write_line("| suite | exercises | Python | run as | outcomes (venv) | "
                                    "tests that ended differently |")
        terminalreporter.write_line("|---|---|---|---|---|---|")
        for _, row in sorted(SUITE_REPORT):
            terminalreporter.write_line(row)


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding carton-backend's own wheel, for frontends' find-links."""
    given = os.environ.get("CARTON_TEST_WHEELHOUSE")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True)
    return out


@pytest.fixture
def real_env(tmp_path: Path) -> dict[str, str]:
    """The machine's environment (its pip configuration included), with a private cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTON_")}
    env["CARTON_HOME"] = str(tmp_path / "carton-home")
    return env


def carton(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carton_backend", *map(str, args)], env=env,
                          capture_output=True, text=True, check=False)
