"""Workload 5, run inside a loaded carton: the finder alone. Prints JSON: the cost of a
miss (a name no locked wheel provides), and fresh standard library imports with and
without carton's finder on `sys.meta_path`, alternating rounds in one process.

    python bench/finder_micro.py MODEL.carton
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys
import time

import carton_hook
from carton_hook.loading.finder import CartonFinder

# Pure modules that import nothing unusual and can be executed again.
MODULES = ("colorsys", "fnmatch", "shlex", "textwrap", "string", "keyword", "bisect", "heapq",
           "numbers", "glob", "difflib", "pprint", "reprlib", "netrc", "quopri", "sched",
           "stringprep", "tabnanny", "this", "graphlib")
ROUNDS = 50  # 20 modules x 50 rounds = 1000 fresh imports per side


def fresh_imports() -> float:
    """Seconds for one round of fresh imports of MODULES."""
    started = time.perf_counter()
    for name in MODULES:
        sys.modules.pop(name, None)
        importlib.import_module(name)
    return time.perf_counter() - started


def main() -> None:
    carton_hook.load(sys.argv[1])
    finder = next(f for f in sys.meta_path if isinstance(f, CartonFinder))
    with contextlib.redirect_stdout(io.StringIO()):  # `this` prints the Zen once per import
        fresh_imports()
        n = 1_000_000
        started = time.perf_counter()
        for _ in range(n):
            finder.find_spec("no_such_module_anywhere", None)
        miss = (time.perf_counter() - started) / n
        with_finder = without = 0.0
        position = sys.meta_path.index(finder)
        for i in range(ROUNDS):
            # Which side goes first alternates (A B B A ...): the first import of a round
            # after the other side's round is not the same work as the second.
            if i % 2:
                sys.meta_path.remove(finder)
                without += fresh_imports()
                sys.meta_path.insert(position, finder)
                with_finder += fresh_imports()
            else:
                with_finder += fresh_imports()
                sys.meta_path.remove(finder)
                without += fresh_imports()
                sys.meta_path.insert(position, finder)
    count = ROUNDS * len(MODULES)
    print(json.dumps({"miss_ns": miss * 1e9, "imports": count,
                      "with_finder_us": with_finder / count * 1e6,
                      "without_finder_us": without / count * 1e6}))


if __name__ == "__main__":
    main()
