"""Core metadata (PKG-INFO / METADATA) for the model's sdist and wheel.

The model's wheel is a normal wheel of the model code: it requires every package the
model asked for, pinned to the version the lock chose, with the lock section's marker
where versions differ between sections.
"""

from __future__ import annotations

from collections import defaultdict

from carton_backend.config import ModelConfig
from carton_hook.formats.lockfile import Lock
from carton_hook.formats.version import CREATED_BY


def requires_dist(lock: Lock) -> list[str]:
    """`name==version` for each requested package, with markers where sections differ."""
    sections = lock.environments
    pins: dict[tuple[str, str], list[str]] = defaultdict(list)
    for env in sections:
        for package in env.packages:
            if package.requested:
                pins[(package.name, package.version)].append(env.marker)
    lines = []
    for (name, version), markers in sorted(pins.items()):
        if len(markers) == len(sections):
            lines.append(f"{name}=={version}")
        else:
            joined = " or ".join(f"({m})" for m in markers)
            lines.append(f"{name}=={version} ; {joined}")
    return lines


def requires_python(config: ModelConfig, lock: Lock) -> str:
    """The project's own `requires-python`, else the oldest Python the lock serves."""
    if config.requires_python:
        return config.requires_python
    versions = sorted(
        (tuple(int(x) for x in v.split(".")), v)
        for e in lock.environments
        if (v := e.marker_environment.get("python_version", "")).replace(".", "").isdigit()
    )
    return f">={versions[0][1]}" if versions else ""


def core_metadata(config: ModelConfig, lock: Lock) -> bytes:
    """Metadata-Version 2.1 text for the model, with [project]'s static metadata (the
    readme as the body)."""
    fields = dict(config.metadata)
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {config.name}",
        f"Version: {config.version}",
        f"Summary: {fields.get('Summary') or f'{config.name}, packed by {CREATED_BY}'}",
    ]
    # A value over several lines continues on lines indented by 8 spaces (RFC 822).
    lines += [f"{name}: {value.rstrip()}".replace("\n", "\n        ")
              for name, value in config.metadata if name != "Summary"]
    python = requires_python(config, lock)
    if python:
        lines.append(f"Requires-Python: {python}")
    lines += [f"Requires-Dist: {r}" for r in requires_dist(lock)]
    if config.readme is not None:
        lines.append(f"Description-Content-Type: {config.readme[0]}")
        lines += ["", config.readme[1].rstrip("\n")]
    return ("\n".join(lines) + "\n").encode("utf-8")
