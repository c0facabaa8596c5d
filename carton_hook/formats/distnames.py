"""Distribution names as indexes and installers compare them (PEP 503).

A module of its own so that what only compares names (checking a wheel against its
RECORD and METADATA, finding a project's page on a mirror) does not import the lock
schema, whose import (its records were dataclasses then) cost a first run's worker ~2 ms
before its first wheel was in.
"""

from __future__ import annotations

import re

_RUNS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """PEP 503 normalisation (packaging.utils.canonicalize_name's rule): `Foo_Bar` and
    `foo-bar` are one distribution."""
    return _RUNS.sub("-", name).lower()
