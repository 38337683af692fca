"""The command line as a user meets it: one-line errors before TensorFlow loads, and a quiet
start-up (TensorFlow's C++ start-up log only with --verbose)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cnnhub import quiet
from cnnhub.cli import COMMANDS
from conftest import ROOT, cli_env

# Runs one command in a fresh interpreter and reports whether it loaded TensorFlow.
PROBE = (
    "import sys\n"
    "from cnnhub.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('TF_LOADED' if 'tensorflow' in sys.modules else 'TF_NOT_LOADED')\n"
    "sys.exit(code)\n"
)


def probe(*argv: str, cwd=ROOT) -> subprocess.CompletedProcess:
    env = cli_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # the commands must quiet TensorFlow themselves
    return subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", list(COMMANDS))
def test_bad_flag_is_one_line_exit_2_before_tensorflow(command):
    result = probe(command, "--no_such_flag", "x")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"cnnhub {command}: error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "(see --help)" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout.strip() == "TF_NOT_LOADED"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-m", "resnet5O"], "Unknown model `resnet5O`. Did you mean"),
        (["-m", "xception", "-height", "32"], "minimum input size of `xception`, 71x71"),
        (["--momentum", "-5"], "`momentum` must be a number in [0, 1)"),
        (["--deterministic", "perhaps"], "argument --deterministic: expected true/false"),
        # The block grammar is checked with the settings: before any data scan (the data
        # folders here do not even exist) and before TensorFlow.
        (
            ["--layers", "c32-zz", "-dtrain", "no_such_dir", "-dvalid", "no_such_dir"],
            "custom_conv_blocks stage 1: unknown token; allowed tokens: c<filters>",
        ),
    ],
)
def test_bad_training_input_is_refused_before_tensorflow(argv, message, tmp_path):
    result = probe("train", *argv, "-sl", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stdout.strip() == "TF_NOT_LOADED"
    assert list(tmp_path.iterdir()) == []


def test_tensorflow_start_up_log_is_hidden(tmp_path):
    # The C++ start-up lines (oneDNN, absl) come from import; nothing else may reach stderr.
    code = (
        "from cnnhub.quiet import quiet_tensorflow\n"
        "quiet_tensorflow()\n"
        "import keras\n"
        "import tensorflow as tf\n"
        "print(int(tf.reduce_sum(tf.ones(3))))\n"
    )
    env = cli_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "3\n"
    assert result.stderr == ""


def test_verbose_undoes_the_quieting(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(quiet, "_set_log_level", False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # as in a fresh process
    quiet.quiet_tensorflow()
    quiet.quiet_tensorflow()  # idempotent
    finders = [f for f in sys.meta_path if isinstance(f, quiet._QuietImportFinder)]
    assert len(finders) == 1 and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    quiet.quiet_tensorflow(verbose=True)
    assert not [f for f in sys.meta_path if isinstance(f, quiet._QuietImportFinder)]
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ


def test_a_log_level_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(quiet, "_set_log_level", False)
    quiet.quiet_tensorflow()
    quiet.quiet_tensorflow(verbose=True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


def test_hidden_output_is_shown_when_the_import_fails(capfd):
    with quiet.hidden_stderr_fd():
        os.write(2, b"hidden\n")
    assert capfd.readouterr().err == ""
    with pytest.raises(ImportError), quiet.hidden_stderr_fd():
        os.write(2, b"why it failed\n")
        raise ImportError("broken")
    assert capfd.readouterr().err == "why it failed\n"


@pytest.mark.parametrize(
    "argv",
    [["-m", "cnnhub", "models"], [str(ROOT / "run_training.py"), "--list_models"]],
    ids=["cnnhub-models", "run_training"],
)
def test_output_into_a_closed_pipe_ends_quietly(argv):
    # `cnnhub models | head -1`: the reader leaves before the table is written.
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as closed:
        done = subprocess.run(
            [sys.executable, *argv],
            cwd=ROOT,
            env=cli_env(),
            stdout=closed,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert done.stderr == ""
    assert done.returncode == 141  # 128 + SIGPIPE, as a shell reports a tool stopped by it
