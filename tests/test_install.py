"""`pip install .` and `pip install -e .` give a working `cnnhub` command and `import cnnhub`
from any folder; an editable install keeps using the checkout's config.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import NETGUARD, ROOT

# What a clone holds that installing needs (tests, benchmarks and runs stay behind).
PROJECT = ("cnnhub", "pyproject.toml", "README.md", "config.py", "run_training.py")


def run(args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def copy_project(base: Path) -> Path:
    """A copy of the project whose config.py points at two empty folders beside it."""
    project = base / "project"
    project.mkdir()
    for name in PROJECT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, project / name)
    for split in ("train", "valid"):  # empty: enough to see which folder a run would read
        (project / "data" / "sample" / split).mkdir(parents=True)
    (project / "config.py").write_text(
        'DATA_DIR_TRAIN = "data/sample/train"\nDATA_DIR_VALID = "data/sample/valid"\n'
    )
    return project


def clean_env() -> dict:
    """The environment without the checkout on the path, with the network guard."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(NETGUARD)
    return env


@pytest.fixture(scope="module", params=["regular", "editable"])
def installed(request, tmp_path_factory):
    """A copy of the project pip-installed (no dependencies, offline) into a fresh venv that
    sees this interpreter's packages; yields (kind, venv bin folder, project copy, env)."""
    base = tmp_path_factory.mktemp(f"install-{request.param}")
    project = copy_project(base)
    venv = base / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    env = clean_env()
    python = venv / "bin" / "python"
    editable = ["-e"] if request.param == "editable" else []
    result = run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         *editable, project],
        base, env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    yield request.param, venv / "bin", project, env


def test_cnnhub_command_and_import_work_from_any_folder(installed, tmp_path):
    kind, bin_dir, project, env = installed
    models = run([bin_dir / "cnnhub", "models"], tmp_path, env)
    assert models.returncode == 0, models.stderr
    assert "resnet50" in models.stdout and models.stderr == ""
    bad = run([bin_dir / "cnnhub", "train", "--bogus"], tmp_path, env)
    assert bad.returncode == 2
    assert bad.stderr == "cnnhub train: error: unrecognized arguments: --bogus (see --help)\n"
    code = (
        "import cnnhub, cnnhub.settings as s\n"
        "print(cnnhub.__file__)\n"
        "print(s.resolve([])[0]['DATA_DIR_TRAIN'])\n"
    )
    shown = run([bin_dir / "python", "-c", code], tmp_path, env)
    assert shown.returncode == 0, shown.stderr
    package_file, data_dir = shown.stdout.splitlines()
    if kind == "editable":
        # The checkout's package and config.py, its relative path resolved against its folder.
        assert Path(package_file).parent == project / "cnnhub"
        assert data_dir == str(project / "data" / "sample" / "train")
    else:
        # A copy in the venv, with the packaged defaults only.
        assert "site-packages" in package_file
        assert data_dir == ""


def test_run_training_from_another_folder_finds_config_py_paths(tmp_path):
    project = copy_project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # With no flags, the run reads config.py's folders, resolved against config.py's folder
    # (they are empty here, so the run stops at once, naming the folder it looked in).
    result = run([sys.executable, project / "run_training.py"], elsewhere, clean_env())
    assert result.returncode == 2
    train = project / "data" / "sample" / "train"
    assert result.stderr.startswith(f"run_training.py: error: The image folder `{train}` has no")
    assert result.stderr.count("\n") == 1
