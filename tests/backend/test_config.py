"""load_config: a valid pyproject.toml, and one clear error per kind of bad input."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from carton_backend.config import ModelConfig, load_config
from carton_backend.errors import BuildError, ConfigError

PROJECT = '[project]\nname = "my-model"\nversion = "0.1.0"\n'
CARTON = '[tool.carton]\nentrypoint = "model:main"\n'


def write(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def config_error(root: Path, key: str, *fragments: str) -> ConfigError:
    """load_config must fail with a ConfigError naming `key` and the pyproject's path."""
    with pytest.raises(ConfigError) as info:
        load_config(root)
    err = info.value
    message = str(err)
    path = str(root / "pyproject.toml")
    assert err.path == path
    assert err.key == key
    assert message.startswith(f"{path}: `{key}` ")
    for fragment in fragments:
        assert fragment in message, message
    return err


def test_valid_pyproject_gets_defaults(tmp_path: Path) -> None:
    root = write(tmp_path / "m", PROJECT + CARTON)
    config = load_config(root)
    assert config == ModelConfig(root=root, name="my-model", version="0.1.0",
                                 entrypoint="model:main")
    assert config.requirements == "requirements.txt"
    assert config.requirements_path == root / "requirements.txt"
    assert config.pyproject == root / "pyproject.toml"
    assert config.python == ()
    assert config.exclude == ()
    assert config.bundle == "non-pypi"
    assert config.only_binary is False
    assert config.requires_python is None
    assert config.dist_name == "my_model"


def test_all_settings_are_read(tmp_path: Path) -> None:
    root = write(tmp_path / "m", """
        [project]
        name = "My.Model_x"
        version = "2.0rc1"
        requires-python = ">=3.10"

        [tool.carton]
        entrypoint = "pkg.sub:run"
        requirements = "reqs/base.txt"
        python = ["3.10", "3.12", "3.10"]
        exclude = ["data/raw/**", "*.tmp"]
        bundle = "all"
        only-binary = true
    """)
    config = load_config(root)
    assert config.name == "My.Model_x"
    assert config.dist_name == "my_model_x"
    assert config.version == "2.0rc1"
    assert config.entrypoint == "pkg.sub:run"
    assert config.requirements_path == root / "reqs" / "base.txt"
    assert config.python == ("3.10", "3.12")  # duplicates dropped, order kept
    assert config.exclude == ("data/raw/**", "*.tmp")
    assert config.bundle == "all"
    assert config.only_binary is True
    assert config.requires_python == ">=3.10"


def test_config_error_is_a_build_error(tmp_path: Path) -> None:
    err = config_error(tmp_path, "pyproject.toml", "not found")
    assert isinstance(err, BuildError)
    assert isinstance(err, ValueError)


def test_no_pyproject(tmp_path: Path) -> None:
    config_error(tmp_path, "pyproject.toml", "not found; is this a model folder?")


def test_invalid_toml(tmp_path: Path) -> None:
    root = write(tmp_path, '[project\nname = "x"\n')
    config_error(root, "pyproject.toml", "is not valid TOML")


def test_missing_project_table(tmp_path: Path) -> None:
    root = write(tmp_path, CARTON)
    config_error(root, "[project]", "table is missing")


def test_project_not_a_table(tmp_path: Path) -> None:
    root = write(tmp_path, 'project = "x"\n' + CARTON)
    config_error(root, "[project]", "must be a table")


def test_missing_name(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nversion = "1.0"\n' + CARTON)
    config_error(root, "project.name", "is required")


def test_name_not_a_string(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nname = 3\nversion = "1.0"\n' + CARTON)
    config_error(root, "project.name", "must be a non-empty string")


@pytest.mark.parametrize("name", ["-model", "my model", "model!", "model-"])
def test_invalid_name(tmp_path: Path, name: str) -> None:
    root = write(tmp_path, f'[project]\nname = "{name}"\nversion = "1.0"\n' + CARTON)
    config_error(root, "project.name", f"{name!r} is not a valid project name")


def test_dynamic_version(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nname = "m"\ndynamic = ["version"]\n' + CARTON)
    config_error(root, "project.version", "must be static")


def test_missing_version(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nname = "m"\n' + CARTON)
    config_error(root, "project.version", "is required")


def test_invalid_version(tmp_path: Path) -> None:
    root = write(tmp_path, '[project]\nname = "m"\nversion = "one.two"\n' + CARTON)
    config_error(root, "project.version", "'one.two' is not a valid version (PEP 440)")


def test_requires_python_not_a_string(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + "requires-python = 3\n" + CARTON)
    config_error(root, "project.requires-python", "must be a string")


def test_missing_tool_carton(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + '[tool.other]\nx = 1\n')
    config_error(root, "[tool.carton]", "table is missing")


def test_missing_entrypoint(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + '[tool.carton]\nbundle = "all"\n')
    config_error(root, "tool.carton.entrypoint", "is required")


@pytest.mark.parametrize("entrypoint", ["model:", ":main", "model:main:x", "1model",
                                        "model-x:main", "model main"])
def test_malformed_entrypoint(tmp_path: Path, entrypoint: str) -> None:
    root = write(tmp_path, PROJECT + f'[tool.carton]\nentrypoint = "{entrypoint}"\n')
    config_error(root, "tool.carton.entrypoint", f"{entrypoint!r} is not 'module:function'")


@pytest.mark.parametrize("entrypoint", ["model", "model:main", "pkg.sub", "pkg.sub:obj.run"])
def test_module_entrypoints_accepted(tmp_path: Path, entrypoint: str) -> None:
    root = write(tmp_path, PROJECT + f'[tool.carton]\nentrypoint = "{entrypoint}"\n')
    assert load_config(root).entrypoint == entrypoint


def test_missing_script_entrypoint(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + '[tool.carton]\nentrypoint = "bin/run.py"\n')
    config_error(root, "tool.carton.entrypoint", "names 'bin/run.py', which does not exist")


def test_existing_script_entrypoint(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + '[tool.carton]\nentrypoint = "bin/run.py"\n')
    (root / "bin").mkdir()
    (root / "bin" / "run.py").write_text("print('hi')\n")
    assert load_config(root).entrypoint == "bin/run.py"


@pytest.mark.parametrize("script", ["../outside.py", "/abs/run.py"])
def test_script_entrypoint_outside_folder(tmp_path: Path, script: str) -> None:
    root = write(tmp_path / "m", PROJECT + f'[tool.carton]\nentrypoint = "{script}"\n')
    (tmp_path / "outside.py").write_text("")
    config_error(root, "tool.carton.entrypoint", "must be a relative path inside the model folder")


def test_unknown_key(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + CARTON + 'only_binary = true\n')
    config_error(root, "tool.carton.only_binary", "is not a carton setting",
                 "known keys: entrypoint, requirements, python, platforms, exclude, bundle, "
                 "only-binary")


def test_requirements_absolute_path(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + CARTON + 'requirements = "/etc/requirements.txt"\n')
    config_error(root, "tool.carton.requirements", "must be relative to the model folder")


def test_requirements_not_a_string(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + CARTON + 'requirements = ["a.txt"]\n')
    config_error(root, "tool.carton.requirements", "must be a relative path")


def test_python_not_a_list(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + CARTON + 'python = "3.12"\n')
    config_error(root, "tool.carton.python", 'must be a list like ["3.10", "3.12"]')


def test_python_list_of_numbers(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + CARTON + 'python = [3.12]\n')
    config_error(root, "tool.carton.python", "must be a list")


@pytest.mark.parametrize("value", ["3", "3.12.1", "2.7", "py3.12"])
def test_python_bad_version(tmp_path: Path, value: str) -> None:
    root = write(tmp_path, PROJECT + CARTON + f'python = ["3.12", "{value}"]\n')
    config_error(root, "tool.carton.python", f"{value!r} is not a MAJOR.MINOR version")


@pytest.mark.parametrize("value", ['"data/raw/**"', '["ok", ""]', '[1]'])
def test_exclude_not_a_list_of_patterns(tmp_path: Path, value: str) -> None:
    root = write(tmp_path, PROJECT + CARTON + f"exclude = {value}\n")
    config_error(root, "tool.carton.exclude", "must be a list of patterns")


@pytest.mark.parametrize("value", ['"none"', '"All"', "true"])
def test_bundle_invalid(tmp_path: Path, value: str) -> None:
    root = write(tmp_path, PROJECT + CARTON + f"bundle = {value}\n")
    config_error(root, "tool.carton.bundle", 'must be "non-pypi" or "all"')


@pytest.mark.parametrize("value", ['"true"', "1"])
def test_only_binary_not_a_bool(tmp_path: Path, value: str) -> None:
    root = write(tmp_path, PROJECT + CARTON + f"only-binary = {value}\n")
    config_error(root, "tool.carton.only-binary", "must be true or false")


@pytest.mark.parametrize("value", ['">>3.10"', '"3.10"'])
def test_invalid_requires_python(tmp_path: Path, value: str) -> None:
    root = write(tmp_path / "m", PROJECT + f"requires-python = {value}\n" + CARTON)
    config_error(root, "project.requires-python", "version specifier")


def test_file_version_is_normalised(tmp_path: Path) -> None:
    root = write(tmp_path / "m", PROJECT.replace('"0.1.0"', '"1.0-RC1"') + CARTON)
    config = load_config(root)
    assert (config.version, config.file_version) == ("1.0-RC1", "1.0rc1")


@pytest.mark.parametrize(("text", "key", "listed"), [
    ('dependencies = ["attrs", "numpy>=2"]\n', "project.dependencies", "(attrs, numpy>=2)"),
    ('dynamic = ["dependencies"]\n', "project.dependencies", ""),
    ('[project.optional-dependencies]\ngpu = ["cupy"]\n', "project.optional-dependencies",
     "(gpu)"),
])
def test_project_dependencies_are_refused_with_where_they_belong(
        tmp_path: Path, text: str, key: str, listed: str) -> None:
    root = write(tmp_path, PROJECT + text + CARTON)
    config_error(root, key, f"is not locked by carton{' ' + listed if listed else ''}: put "
                 "the model's requirements in requirements.txt (tool.carton.requirements) "
                 f"and remove {key}")


def test_empty_project_dependencies_are_fine(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + "dependencies = []\n" + CARTON)
    assert load_config(root).name == "my-model"


@pytest.mark.parametrize(("text", "key", "fragment"), [
    ('description = "two\\nlines"\n', "project.description", "must be one line"),
    ('readme = "README"\n', "project.readme", "say its content-type"),
    ('readme = "../README.md"\n', "project.readme", "must be a path inside the model folder"),
    ('readme = "missing.md"\n', "project.readme", "cannot read missing.md"),
    ('authors = [{url = "x"}]\n', "project.authors", "each needs a name or an email"),
    ('authors = "me"\n', "project.authors", "must be a list of tables"),
    ('urls = ["x"]\n', "project.urls", "must be a table"),
    ('license = 3\n', "project.license", "must be a string"),
])
def test_bad_project_metadata_is_one_error(tmp_path: Path, text: str, key: str,
                                           fragment: str) -> None:
    root = write(tmp_path / "m", PROJECT + text + CARTON)
    config_error(root, key, fragment)


def test_project_metadata_is_read(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + 'description = "Demo"\nlicense = {text = "MIT"}\n'
                 'readme = {text = "Hello", content-type = "text/plain"}\n'
                 'authors = [{email = "a@example.com"}]\n' + CARTON)
    config = load_config(root)
    assert config.metadata == (("Summary", "Demo"), ("License", "MIT"),
                               ("Author-email", "a@example.com"))
    assert config.readme == ("text/plain", "Hello")


def test_platforms_are_uv_names(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT + CARTON + 'platforms = ["windows", "aarch64-manylinux_2_28",'
                 ' "windows"]\n')
    assert load_config(root).platforms == ("windows", "aarch64-manylinux_2_28")


@pytest.mark.parametrize(("value", "fragment"), [
    ('"windows"', 'must be a list like ["x86_64-manylinux_2_28", "aarch64-apple-darwin"]'),
    ("[3]", "must be a list like"),
    ('["x86_64-linux"]', "'x86_64-linux' is not a platform carton locks for; use one of linux"),
    ('["x86_64-manylinux_2_5"]', "manylinux levels start at 2_17"),
])
def test_a_wrong_platform_names_the_key(tmp_path: Path, value: str, fragment: str) -> None:
    root = write(tmp_path, PROJECT + CARTON + f"platforms = {value}\n")
    config_error(root, "tool.carton.platforms", fragment)
