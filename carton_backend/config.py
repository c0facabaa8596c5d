"""Read a model folder's pyproject.toml into a frozen, validated `ModelConfig`."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carton_backend.errors import ConfigError
from carton_hook.formats.archive import entrypoint_problem
from carton_hook.formats.metadatapack import PACK

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

BUNDLE_MODES = ("non-pypi", "all")
# `.env` files hold secrets: never packed unless a `!` pattern names one.
# `/pylock.toml`: what `export-pylock` writes beside the lock by default (its bytes follow
# from the lock, which is packed).
DEFAULT_EXCLUDES = (".carton-tmp-*", "dist/", ".git/", ".venv/", ".nox/", ".tox/",
                    "__pycache__/", "*.pyc", ".ipynb_checkpoints/", ".env", ".env.*",
                    "/pylock.toml", "/pylock.*.toml",
                    f"/{PACK}")  # where the runtime packs an extracted model's metadata
_KNOWN_KEYS = ("entrypoint", "requirements", "python", "platforms", "exclude", "bundle",
               "only-binary", "executable")
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
PYTHON_VERSION = re.compile(r"^3\.\d{1,2}$")  # `python` entries, and `lock --python`


@dataclass(frozen=True)
class ModelConfig:
    """Everything carton needs from a model folder's pyproject.toml."""

    root: Path
    name: str
    version: str
    entrypoint: str
    requirements: str = "requirements.txt"
    python: tuple[str, ...] = ()
    # Other machines to lock for (uv's `--python-platform` names), each with the building
    # Python and every `python` version.
    platforms: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    bundle: str = "non-pypi"
    only_binary: bool = False
    # Carry the runtime, so that `python model.carton` runs on a bare CPython.
    executable: bool = True
    requires_python: str | None = None
    # [project]'s other static metadata, as core metadata fields in order (Summary,
    # License, Author, Project-URL, ...), and the readme (content type, text).
    metadata: tuple[tuple[str, str], ...] = ()
    readme: tuple[str, str] | None = None

    @property
    def pyproject(self) -> Path:
        return self.root / "pyproject.toml"

    @property
    def requirements_path(self) -> Path:
        return self.root / self.requirements

    @property
    def dist_name(self) -> str:
        """The name as it appears in file names (`my-model` -> `my_model`)."""
        return re.sub(r"[-_.]+", "_", self.name).lower()

    @property
    def file_version(self) -> str:
        """The version as it appears in file names: normalised (`1.0-rc1` -> `1.0rc1`)."""
        from packaging.version import Version

        return str(Version(self.version))


def load_config(root: Path) -> ModelConfig:
    """Read and validate `root/pyproject.toml`; each problem is one `ConfigError`."""
    path = root / "pyproject.toml"
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(where, "pyproject.toml", "not found; is this a model folder?") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(where, "pyproject.toml", f"cannot be read ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(where, "pyproject.toml", f"is not valid TOML ({exc})") from exc

    project = _table(data, "project", where)
    tool = _table(_table(data, "tool", where, required=False), "carton", where,
                  label="tool.carton")
    unknown = sorted(set(tool) - set(_KNOWN_KEYS))
    if unknown:
        raise ConfigError(where, f"tool.carton.{unknown[0]}",
                          f"is not a carton setting; known keys: {', '.join(_KNOWN_KEYS)}")

    name = _string(project, "name", "project", where)
    if not _NAME.match(name):
        raise ConfigError(where, "project.name", f"{name!r} is not a valid project name")
    if "version" in project.get("dynamic", []):
        raise ConfigError(where, "project.version", "must be static; carton does not compute "
                                                     "dynamic versions")
    version = _string(project, "version", "project", where)
    _check_version(version, where)

    requires_python = project.get("requires-python")
    if requires_python is not None:
        _check_specifier(requires_python, where)
    _refuse_project_dependencies(project, tool, where)

    entrypoint = _string(tool, "entrypoint", "tool.carton", where)
    _check_entrypoint(entrypoint, root, where)

    requirements = tool.get("requirements", "requirements.txt")
    if not isinstance(requirements, str) or not requirements:
        raise ConfigError(where, "tool.carton.requirements", "must be a relative path")
    if Path(requirements).is_absolute():
        raise ConfigError(where, "tool.carton.requirements",
                          "must be relative to the model folder")

    python = tool.get("python", [])
    if not isinstance(python, list) or not all(isinstance(v, str) for v in python):
        raise ConfigError(where, "tool.carton.python", 'must be a list like ["3.10", "3.12"]')
    for value in python:
        if not PYTHON_VERSION.match(value):
            raise ConfigError(where, "tool.carton.python",
                              f'{value!r} is not a MAJOR.MINOR version like "3.12"')

    platforms = tool.get("platforms", [])
    if not isinstance(platforms, list) or not all(isinstance(v, str) for v in platforms):
        raise ConfigError(where, "tool.carton.platforms",
                          'must be a list like ["x86_64-manylinux_2_28", "aarch64-apple-darwin"]')
    for value in platforms:
        from carton_backend.resolution.platforms import PlatformError, parse_platform

        try:
            parse_platform(value)
        except PlatformError as exc:
            raise ConfigError(where, "tool.carton.platforms", str(exc)) from None

    exclude = tool.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(v, str) and v for v in exclude):
        raise ConfigError(where, "tool.carton.exclude", 'must be a list of patterns like '
                                                         '["data/raw/**"]')

    bundle = tool.get("bundle", "non-pypi")
    if bundle not in BUNDLE_MODES:
        raise ConfigError(where, "tool.carton.bundle",
                          f'must be "non-pypi" or "all", not {bundle!r}')

    only_binary = tool.get("only-binary", False)
    if not isinstance(only_binary, bool):
        raise ConfigError(where, "tool.carton.only-binary", "must be true or false")
    executable = tool.get("executable", True)
    if not isinstance(executable, bool):
        raise ConfigError(where, "tool.carton.executable", "must be true or false")

    return ModelConfig(
        root=root,
        name=name,
        version=version,
        entrypoint=entrypoint,
        requirements=requirements,
        python=tuple(dict.fromkeys(python)),
        platforms=tuple(dict.fromkeys(platforms)),
        exclude=tuple(exclude),
        bundle=bundle,
        only_binary=only_binary,
        executable=executable,
        requires_python=requires_python,
        metadata=_project_metadata(project, root, where),
        readme=_readme(project.get("readme"), root, where),
    )


def _project_metadata(project: dict[str, Any], root: Path,
                      where: str) -> tuple[tuple[str, str], ...]:
    """PEP 621's static fields as core metadata fields (Metadata-Version 2.1 names)."""
    fields: list[tuple[str, str]] = []

    def text(key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise ConfigError(where, f"project.{key}", "must be a string")
        return value

    description = project.get("description")
    if description is not None:
        if "\n" in text("description", description):
            raise ConfigError(where, "project.description", "must be one line (the summary)")
        fields.append(("Summary", description))
    license_ = project.get("license")
    if isinstance(license_, dict) and "text" in license_:
        fields.append(("License", text("license.text", license_["text"])))
    elif isinstance(license_, dict) and "file" in license_:
        fields.append(("License", _read_text(root, text("license.file", license_["file"]),
                                             "project.license.file", where)))
    elif license_ is not None:
        fields.append(("License", text("license", license_)))
    for key, field in (("authors", "Author"), ("maintainers", "Maintainer")):
        people = project.get(key, [])
        if not isinstance(people, list) or not all(isinstance(p, dict) for p in people):
            raise ConfigError(where, f"project.{key}",
                              'must be a list of tables like {name = "...", email = "..."}')
        if any("name" not in p and "email" not in p for p in people):
            raise ConfigError(where, f"project.{key}", "each needs a name or an email")
        names = [text(f"{key}.name", p["name"]) for p in people if "email" not in p]
        emails = [f"{text(f'{key}.name', p['name'])} <{text(f'{key}.email', p['email'])}>"
                  if "name" in p else text(f"{key}.email", p["email"])
                  for p in people if "email" in p]
        if names:
            fields.append((field, ", ".join(names)))
        if emails:
            fields.append((f"{field}-email", ", ".join(emails)))
    keywords = project.get("keywords", [])
    if not isinstance(keywords, list):
        raise ConfigError(where, "project.keywords", "must be a list of strings")
    if keywords:
        fields.append(("Keywords", ",".join(text("keywords", k) for k in keywords)))
    classifiers = project.get("classifiers", [])
    if not isinstance(classifiers, list):
        raise ConfigError(where, "project.classifiers", "must be a list of strings")
    fields += [("Classifier", text("classifiers", c)) for c in classifiers]
    urls = project.get("urls", {})
    if not isinstance(urls, dict):
        raise ConfigError(where, "project.urls", 'must be a table like {Homepage = "..."}')
    fields += [("Project-URL", f"{label}, {text(f'urls.{label}', url)}")
               for label, url in urls.items()]
    return tuple(fields)


_README_TYPES = {".md": "text/markdown", ".rst": "text/x-rst", ".txt": "text/plain"}


def _readme(value: Any, root: Path, where: str) -> tuple[str, str] | None:
    """`project.readme` (a path, or a table with `file` or `text` and `content-type`)."""
    if value is None:
        return None
    if isinstance(value, str):
        kind = _README_TYPES.get(Path(value).suffix.lower())
        if kind is None:
            raise ConfigError(where, "project.readme", f"{value!r}: say its content-type "
                              '(readme = {file = "...", content-type = "text/markdown"})')
        return kind, _read_text(root, value, "project.readme", where)
    if not isinstance(value, dict) or not isinstance(value.get("content-type"), str):
        raise ConfigError(where, "project.readme", "must be a path, or a table with file or "
                          "text and content-type")
    if isinstance(value.get("text"), str):
        return value["content-type"], value["text"]
    if isinstance(value.get("file"), str):
        return value["content-type"], _read_text(root, value["file"], "project.readme", where)
    raise ConfigError(where, "project.readme", "must have file or text")


def _read_text(root: Path, relpath: str, key: str, where: str) -> str:
    path = root / relpath
    if Path(relpath).is_absolute() or ".." in Path(relpath).parts:
        raise ConfigError(where, key, f"{relpath!r} must be a path inside the model folder")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(where, key, f"cannot read {relpath} ({exc})") from None


def _refuse_project_dependencies(project: dict[str, Any], tool: dict[str, Any],
                                 where: str) -> None:
    """carton locks the requirements file; dependencies declared in [project] would be
    silently neither locked nor packed, so they are refused, saying where they belong."""
    requirements = tool.get("requirements", "requirements.txt")
    for key in ("dependencies", "optional-dependencies"):
        value = project.get(key)
        if key in project.get("dynamic", []) or value:
            listed = ", ".join(map(str, value)) if isinstance(value, (list, dict)) else ""
            what = f" ({listed})" if listed else ""
            raise ConfigError(where, f"project.{key}",
                              f"is not locked by carton{what}: put the model's requirements "
                              f"in {requirements} (tool.carton.requirements) and remove "
                              f"project.{key}")


def _table(data: dict[str, Any], key: str, where: str, *, required: bool = True,
           label: str | None = None) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        if required:
            raise ConfigError(where, f"[{label or key}]", "table is missing")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(where, f"[{label or key}]", "must be a table")
    return value


def _string(table: dict[str, Any], key: str, section: str, where: str) -> str:
    value = table.get(key)
    if value is None:
        raise ConfigError(where, f"{section}.{key}", "is required")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(where, f"{section}.{key}", "must be a non-empty string")
    return value


def _check_version(version: str, where: str) -> None:
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion:
        raise ConfigError(where, "project.version",
                          f"{version!r} is not a valid version (PEP 440)") from None


def _check_specifier(value: Any, where: str) -> None:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if not isinstance(value, str):
        raise ConfigError(where, "project.requires-python", "must be a string")
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        raise ConfigError(where, "project.requires-python",
                          f"{value!r} is not a version specifier like \">=3.10\"") from None


def _check_entrypoint(entrypoint: str, root: Path, where: str) -> None:
    key = "tool.carton.entrypoint"
    problem = entrypoint_problem(entrypoint)
    if problem:
        raise ConfigError(where, key, problem)
    if entrypoint.endswith(".py") and not (root / entrypoint).is_file():
        raise ConfigError(where, key, f"names {entrypoint!r}, which does not exist")
