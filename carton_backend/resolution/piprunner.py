"""Run pip with another machine's marker environment.

    python -m carton_backend.resolution.piprunner MARKER-ENVIRONMENT-JSON PIP-ARGUMENTS...

pip's `--platform`, `--python-version`, `--implementation` and `--abi` choose wheels for
another machine, but pip still evaluates dependency markers against the interpreter it
runs in: click's `colorama; platform_system == "Windows"` is dropped when locking for
Windows on Linux. Here the marker environment pip's vendored `packaging` reports is
replaced before pip's own modules import it, so that every marker pip evaluates (the
requirements' lines, each dependency's, and the report's `environment`) is the
target's.
"""

from __future__ import annotations

import json
import sys
from typing import Any, cast


def main(argv: list[str]) -> int:
    environment = json.loads(argv[0])
    if not isinstance(environment, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in environment.items()):
        from carton_hook.errors import report

        report("the marker environment must be a JSON object of strings")
        return 2
    import pip._vendor.packaging.markers as markers

    def target_environment() -> dict[str, str]:
        return dict(environment)

    # Any: pip's vendored packaging types it as its own TypedDict in newer pips.
    markers.default_environment = cast(Any, target_environment)
    from pip._internal.cli.main import main as pip_main

    return int(pip_main(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
