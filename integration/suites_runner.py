"""The entrypoint of a suite model: runs pytest over another project's own tests and
writes how each test ended, as JSON, to the file named by its first argument.

The same file runs in a plain venv (`python suites_runner.py OUT`) and inside a carton
(entrypoint `suites_runner:main`), so the two outcomes can be compared test by test.
It reads `suite.json` beside it: the pytest arguments, and environment variables whose
values may name files of the suite folder (`{here}`).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any


class Outcomes:
    """A pytest plugin: each test's outcome, keyed by its module's import name and the
    rest of its node id, so that a test of a package in site-packages and the same test
    in a carton's cache get the same key whatever the rootdir is."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        self.outcomes: dict[str, str] = {}

    def pytest_itemcollected(self, item: Any) -> None:
        module = getattr(getattr(item, "module", None), "__name__", None)
        rest = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else item.nodeid
        self.keys[item.nodeid] = f"{module}::{rest}" if module else item.nodeid

    def pytest_runtest_logreport(self, report: Any) -> None:
        key = self.keys.get(report.nodeid, report.nodeid)
        before = self.outcomes.get(key)
        if report.when == "setup":
            outcome = {"failed": "error", "skipped": "skipped"}.get(report.outcome)
        elif report.when == "call":
            outcome = report.outcome
        else:  # teardown: only a failure changes the outcome
            outcome = "error" if report.failed else None
        if outcome == "skipped" and hasattr(report, "wasxfail"):
            outcome = "xfailed"
        elif outcome == "passed" and hasattr(report, "wasxfail"):
            outcome = "xpassed"
        if outcome is not None and before not in ("error", "failed"):
            self.outcomes[key] = outcome

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:  # a module that cannot be imported: one "error" for it
            # Under --pyargs its node id is a path to site-packages or to the cache entry.
            where = re.sub(r"^.*?(site-packages|/[0-9a-f]{64})/", "", report.nodeid)
            self.outcomes[f"{where} (collection)"] = "error"


def main() -> int:
    import pytest

    out = Path(sys.argv[1])
    here = Path(__file__).resolve().parent / "suite"
    config = json.loads((here / "suite.json").read_text())
    for name, value in config.get("env", {}).items():
        os.environ[name] = value.replace("{here}", str(here))
    os.chdir(here)
    plugin = Outcomes()
    # The suite's own configuration, and nothing found above it (a checkout's
    # pyproject.toml with --strict-markers, say, when the work folder is inside one).
    code = pytest.main(["-p", "no:cacheprovider", "-c", config["inifile"], "--rootdir", ".",
                        *config["args"]], plugins=[plugin])
    out.write_text(json.dumps({"exit": int(code), "outcomes": plugin.outcomes}, indent=0,
                              sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
