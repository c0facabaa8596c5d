"""Which locked wheels a model's own source imports, for the first run's prefetch."""

from __future__ import annotations

from pathlib import Path

from carton_hook.planning.predict import imported_names, predicted_wheels


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_imports_that_always_run_are_followed_into_local_modules(tmp_path: Path) -> None:
    model = write(tmp_path, {
        "model.py": "import numpy\nfrom helpers import tools\n"
                    "def main():\n    import pandas\n    if x:\n        import optional\n"
                    "def other():\n    import never\n",
        "helpers/__init__.py": "",
        "helpers/tools.py": "from google.protobuf import message\n"
                            "try:\n    import maybe\nexcept ImportError:\n    pass\n",
    })
    names = imported_names(str(model), "model:main")
    assert {"numpy", "pandas", "helpers", "helpers.tools", "google.protobuf",
            "google.protobuf.message"} <= names
    assert not names & {"optional", "never", "maybe"}


def test_a_script_entrypoint_counts_its_main_block(tmp_path: Path) -> None:
    model = write(tmp_path, {"run.py": "import six\nif __name__ == '__main__':\n"
                                       "    import yaml\nelse:\n    import nope\n"})
    assert imported_names(str(model), "run.py") == {"six", "yaml"}


def test_unreadable_or_missing_sources_predict_nothing(tmp_path: Path) -> None:
    write(tmp_path, {"model.py": "def main(:\n"})
    assert imported_names(str(tmp_path), "model:main") == set()
    assert imported_names(str(tmp_path), "absent:main") == set()


def test_names_map_to_the_wheels_that_provide_them() -> None:
    plan = {"imports": {"numpy": "a" * 64, "google.protobuf": "b" * 64, "yaml": "c" * 64}}
    names = {"numpy", "numpy.linalg", "google.protobuf.message", "os", "local"}
    assert predicted_wheels(plan, names) == ["b" * 64, "a" * 64]
