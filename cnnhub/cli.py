"""``python -m cnnhub <command>`` / ``cnnhub <command>``: one entry point for every command.

Each command lives in its module of :mod:`cnnhub.commands` (named in ``COMMANDS``) as a
``command(argv) -> int`` function, imported only when it runs, so ``--help`` never loads
TensorFlow. A ``CnnhubError`` from any command becomes one line on stderr and exit status 2.

This module also holds what every command line shares (and imports nothing heavy, so
``cnnhub.settings`` and the commands can use it): :class:`OneLineParser`, whose bad-flag
errors are such a ``CnnhubError``, and :func:`report_error` / :func:`run_command`, which print
one.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable

from cnnhub.display import safe_output
from cnnhub.errors import CnnhubError
from cnnhub.quiet import quiet_tensorflow

# name: (module with a `command(argv) -> int` function, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("cnnhub.commands.train", "Train models (same flags as run_training.py)."),
    "models": ("cnnhub.commands.models", "Print the model registry."),
    "weights": (
        "cnnhub.commands.weights",
        "List or download the ImageNet weights in Keras's cache.",
    ),
    "evaluate": ("cnnhub.commands.evaluate", "Score saved weights on validation or other data."),
    "compare": (
        "cnnhub.commands.compare",
        "Write a leaderboard of the runs in a model repository.",
    ),
    "inspect": (
        "cnnhub.commands.inspect",
        "Check a dataset: counts, sizes, broken files, duplicates.",
    ),
    "predict": (
        "cnnhub.commands.predict",
        "Classify images with a trained run (top-k, threshold, CSV).",
    ),
    "featuremaps": ("cnnhub.commands.featuremaps", "Plot a run's conv feature maps for an image."),
    "gradcam": ("cnnhub.commands.gradcam", "Grad-CAM heatmap of a run's model over an image."),
    "errors": (
        "cnnhub.commands.errors",
        "Gallery of the most confidently wrong validation images.",
    ),
    "augment-preview": (
        "cnnhub.commands.augment_preview",
        "PNG grid of original and augmented training images per class.",
    ),
    "export": (
        "cnnhub.commands.export",
        "Export a run: keras, savedmodel, tflite, tflite-int8, onnx.",
    ),
    "lr_find": (
        "cnnhub.commands.lr_find",
        "Learning-rate finder: sweep, plot and suggest a rate (training flags).",
    ),
    "report": (
        "cnnhub.commands.report",
        "Write a run's report.html and MODEL_CARD.md.",
    ),
    "tune": (
        "cnnhub.commands.tune",
        "Search config keys with Optuna (one run folder per trial).",
    ),
    "studio": (
        "cnnhub.commands.studio",
        "Serve the web app: data, model, train, runs, try, export.",
    ),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors raise :class:`CnnhubError`: one stderr line, exit 2, no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CnnhubError(f"{message} (see --help)")


def add_run_argument(parser: argparse.ArgumentParser) -> None:
    """The positional RUN of every command that reads one run folder."""
    parser.add_argument("run", help="Run folder (<save_loc>/model_repository/<run name>).")


def add_weights_option(parser: argparse.ArgumentParser) -> None:
    """``--weights`` of the commands that use one set of a run's weights (see choose_weights)."""
    parser.add_argument(
        "--weights",
        default="best",
        help="best, last, an epoch number or a weights file. [default: best]",
    )


def add_tta_option(parser: argparse.ArgumentParser) -> None:
    """``--tta`` of the commands that score images (see cnnhub.evaluation.tta)."""
    parser.add_argument(
        "--tta",
        default=None,
        help="Test-time augmentation: none, or views averaged with the original image, "
        "comma-separated: flip, vflip, crop. [default: the run's TTA setting]",
    )


def report_error(prog: str, error: CnnhubError) -> int:
    """Print ``<prog>: error: <message>`` on one stderr line; return exit status 2."""
    message = " ".join(str(error).split())
    sys.stderr.write(f"{prog}: error: {message}\n")
    sys.stderr.flush()
    return 2


def stop_on_ctrl_c() -> None:
    """Make SIGINT (Ctrl-C, the studio's Stop) raise KeyboardInterrupt in a long command even
    when the process inherited it ignored, as commands started with ``&`` from a script or
    under ``nohup ... &`` do: Python then leaves it ignored, and the run could not be stopped
    cleanly. Only the main thread can set a handler; elsewhere this does nothing."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_command(prog: str, body: Callable[[], int]) -> int:
    """Run a command's body; a CnnhubError becomes one stderr line and exit status 2."""
    try:
        return body()
    except CnnhubError as exc:
        return report_error(prog, exc)
    except SystemExit as exc:  # argparse --help
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:
        # The reader went away (`cnnhub models | head`): stop quietly, as other Unix tools do,
        # and point stdout at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _usage() -> str:
    lines = ["usage: cnnhub <command> [options]", "", "commands:"]
    lines += [f"  {name:<12} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run `cnnhub <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a command; returns the process exit code."""

    safe_output()
    stop_on_ctrl_c()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        sys.stderr.write(
            f"cnnhub: error: unknown command `{name}`; choose one of {', '.join(COMMANDS)}. "
            f"Received: {name}\n"
        )
        return 2
    # Before any command module loads: whatever imports TensorFlow first, its start-up log
    # stays hidden (a command with a verbose setting may turn it back on once parsed).
    quiet_tensorflow()
    module = importlib.import_module(COMMANDS[name][0])
    return run_command(f"cnnhub {name}", lambda: module.command(rest))
