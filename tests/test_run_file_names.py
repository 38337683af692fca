"""Only cnnhub/run_folder.py spells the names of a run folder's files; everything else asks
RunFolder / Run (or imports the constant), so a name is changed in one place."""

from __future__ import annotations

import ast
from pathlib import Path

from cnnhub import run_folder

PACKAGE = Path(__file__).resolve().parents[1] / "cnnhub"

# "checkpoint", "evaluations" and "explain" are also ordinary words (a callback, a command):
# only the names that can mean nothing but a run's file are policed.
NAMES = {
    run_folder.RUN_CONFIG,
    run_folder.RUN_INFO,
    run_folder.CLASS_MAPPING,
    run_folder.BEST_WEIGHTS,
    run_folder.ANALYSIS_REPORT,
    run_folder.TRAINING_LOG,
    run_folder.MODEL_LOGS,
    run_folder.FINAL_MODEL,
    run_folder.BEST_MODEL,
    run_folder.ANALYSIS_METRICS_PNG,
    run_folder.SKIPPED_FILES,
    run_folder.SPLIT_CSV,
    run_folder.SUMMARY,
    "tensor_logs",
    "state.json",
    "optimizer.npz",
    "class_mapping.json",
}


def _spelled_names(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals (f-string parts included) that are a run file's name, alone or as a
    path component (``"model_logs/x"``, ``f"{run}/best_weights.json"``, ``"*/summary.json"``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts = node.value.replace("\\", "/").split("/")
            if any(part in NAMES for part in parts):
                found.append((node.lineno, node.value))
    return found


def test_the_names_are_run_folders_constants():
    assert run_folder.RunFolder(Path("r")).run_config == Path("r") / run_folder.RUN_CONFIG
    assert run_folder.RunFolder(Path("r")).skipped_files.name == "skipped_files.csv"
    assert run_folder.RunFolder(Path("r")).state_file.name == "state.json"


def test_finder_sees_literals_and_fstring_parts():
    tree = ast.parse('a = run / "best_weights.json"\nb = f"{run}/model_logs/x"\nc = "a run"')
    assert [line for line, _ in _spelled_names(tree)] == [1, 2]


def test_no_module_but_run_folder_spells_a_run_file_name():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "run_folder.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, text in _spelled_names(tree):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}")
    assert offenders == []
