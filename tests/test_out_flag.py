"""``--out`` that cannot be written: one line, exit 2, nothing written, for every command.

The check is training's ``-sl`` check (``cnnhub.run_folder.check_writable``), shared.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from trained_runs import shared_tiny_run, valid_paths

from cnnhub.cli import main

COMMANDS = {
    "predict": ["predict", "{run}", "{image}", "--out", "{out}/p.csv"],
    "export": ["export", "{run}", "--format", "keras", "--out", "{out}/exported"],
    "gradcam": ["gradcam", "{run}", "{image}", "--out", "{out}/cam.png"],
    "featuremaps": ["featuremaps", "{run}", "{image}", "--out", "{out}/maps"],
    "errors": ["errors", "{run}", "--out", "{out}/errors.png"],
}


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody can create files in (root too: chattr +i where chmod is not enough)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.access(folder, os.W_OK):  # root ignores permission bits
        try:
            done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
            immutable = done.returncode == 0
        except OSError:  # no chattr
            pass
        if not immutable:
            folder.chmod(0o755)
            pytest.skip("cannot make a folder read-only here (root without chattr)")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


@pytest.mark.parametrize("bad", ["under_a_file", "read_only"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_unwritable_out_is_one_line_exit_2(
    command, bad, tiny_data, tmp_path_factory, tmp_path, request, capsys
):
    if bad == "under_a_file":
        out = tmp_path / "a_file"
        out.write_text("not a folder", encoding="utf-8")
        why = "is a file, not a folder"
    else:
        out = request.getfixturevalue("read_only")
        why = "Cannot write"
    before = sorted(p.name for p in out.parent.iterdir())
    values = {
        "run": str(shared_tiny_run(tiny_data, tmp_path_factory)),
        "image": valid_paths(tiny_data)[0],
        "out": str(out),
    }
    code = main([arg.format(**values) for arg in COMMANDS[command]])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"cnnhub {command}: error: Cannot write ")
    assert why in lines[0] and "--out" in lines[0] and "Received:" in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert sorted(p.name for p in out.parent.iterdir()) == before
    if out.is_dir():
        assert not list(out.iterdir())


def test_failed_export_leaves_no_folder(tiny_data, tmp_path_factory, tmp_path, capsys, monkeypatch):
    import cnnhub.export as export

    monkeypatch.setattr(export, "check_passes", lambda *args: "forced failure")
    run = shared_tiny_run(tiny_data, tmp_path_factory)
    target = tmp_path / "new" / "nested" / "export"
    code = main(["export", str(run), "--format", "keras", "--out", str(target)])
    assert code == 2
    assert "forced failure" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_failed_featuremaps_leave_no_folder(tiny_data, tmp_path_factory, tmp_path, capsys):
    run = shared_tiny_run(tiny_data, tmp_path_factory)
    target = tmp_path / "maps" / "deep"
    image = valid_paths(tiny_data)[0]
    code = main(["featuremaps", str(run), image, "--layer", "nope", "--out", str(target)])
    assert code == 2 and "`--layer`" in capsys.readouterr().err
    assert not (tmp_path / "maps").exists()


# --out that would replace what the command reads: an input image, or a file of the run itself.
REPLACING = {
    "predict over its input": (["predict", "{run}", "{image}", "--out", "{image}"], "{image}"),
    "predict over run_config.json": (
        ["predict", "{run}", "{image}", "--out", "{run}/run_config.json"], "{run}/run_config.json"
    ),
    "gradcam over its input": (["gradcam", "{run}", "{image}", "--out", "{image}"], "{image}"),
    "errors over a validation image": (
        ["errors", "{run}", "--valid", "{valid}", "--out", "{image}"], "{image}"
    ),
    "errors over the run's metrics plot": (
        ["errors", "{run}", "--out", "{run}/analysis_metrics.png"], "{run}/analysis_metrics.png"
    ),
    "export into the run": (["export", "{run}", "--format", "keras", "--out", "{run}"], None),
    "featuremaps into model_logs": (
        ["featuremaps", "{run}", "{image}", "--out", "{run}/model_logs"], None
    ),
}


def _tree(folder) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(REPLACING))
def test_out_never_replaces_an_input_or_the_runs_files(
    case, tiny_data, tmp_path_factory, tmp_path, capsys
):
    import shutil

    run = shutil.copytree(shared_tiny_run(tiny_data, tmp_path_factory), tmp_path / "run")
    valid = shutil.copytree(tiny_data["valid"], tmp_path / "valid")
    image = next(p for p in sorted(valid.rglob("*.png")))
    values = {"run": str(run), "image": str(image), "valid": str(valid)}
    argv, target = REPLACING[case]
    before = _tree(tmp_path)
    if target is not None:
        assert target.format(**values) in before  # the file the --out names exists
    code = main([arg.format(**values) for arg in argv])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2 and len(lines) == 1, captured.err
    assert "`--out` is " in lines[0] and "Received: out=" in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert _tree(tmp_path) == before  # nothing written, nothing replaced
